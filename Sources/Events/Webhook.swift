import COpenSSL
import Storage

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

/// The signature header of a webhook request: `X-Berth-Signature-256: sha256=<hex>`, the
/// HMAC-SHA256 of the exact body under the shared secret (as GitHub's webhooks sign). A
/// receiver recomputes it over the body it got and compares in constant time.
public enum WebhookSignature {
    public static let headerName = "X-Berth-Signature-256"

    public static func header(body: [UInt8], secret: [UInt8]) -> String {
        "\(headerName): sha256=\(Hex.encode(hmacSHA256(key: secret, body)))"
    }

    static func hmacSHA256(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var mac = [UInt8](repeating: 0, count: 32)
        _ = key.withUnsafeBufferPointer { k in
            data.withUnsafeBufferPointer { d in
                mac.withUnsafeMutableBufferPointer { out in
                    berth_hmac_sha256(k.baseAddress, k.count, d.baseAddress, d.count, out.baseAddress)
                }
            }
        }
        return mac
    }
}
