/// One `webhook = URL`: where every event goes, and the id its deliveries are recorded
/// under in a batch (`EventBatch.delivered`): the first 16 hex digits of the URL's SHA-256,
/// so no URL (which may hold a token) reaches the outbox or the log.
public struct Webhook: Sendable, Hashable {
    public let url: String
    public let id: String

    /// Nil unless `url` is `http://` or `https://` with a host, and has no spaces or
    /// control characters.
    public init?(_ url: String) {
        let lower = url.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://"),
              let rest = url.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false).dropFirst(2).first,
              !rest.isEmpty, url.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7f }) else { return nil }
        self.url = url
        id = String(ContentHasher.digest(of: Array(url.utf8)).hex.prefix(16))
    }
}
