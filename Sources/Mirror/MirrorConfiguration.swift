import Storage

/// One upstream registry that a namespace of the store mirrors (`mirror.<name>.<field>`
/// settings). Holds the path of the password file, never the password.
public struct MirrorConfiguration: Sendable, Equatable {
    /// The namespace: repositories `<name>/…` are filled from the upstream, and `?ns=<name>`
    /// (or `?ns=<the upstream's host>`) routes to it. A valid repository name component.
    public var name: String
    /// `https://host[:port]` (or `http://`), without a path.
    public var upstream: String?
    public var username: String?
    public var passwordFile: String?
    /// PEM CAs for the upstream's certificate; nil: the system's.
    public var caFile: String?
    /// Seconds a tag is served from the store before it is revalidated upstream.
    public var tagTTL = Defaults.mirrorTagTTL
    /// `berth gc` removes what was not pulled within this many seconds; nil: no age limit.
    public var maxAge: Int?
    /// `berth gc` trims the mirror's repositories to this many bytes, least recently
    /// pulled first; nil: no size limit.
    public var maxBytes: UInt64?
    /// A stored tag the upstream answers 404 for: kept and served (true), or dropped from
    /// the mirror so that pulls of it get 404 like upstream (false; `berth gc` then evicts
    /// its manifest like any other the mirror no longer tags).
    public var keepMissingTags = true

    /// The fields of a `mirror.<name>.` section.
    public static let fields = ["upstream", "username", "password_file", "ca_file", "tag_ttl", "max_age", "max_bytes", "keep_missing_tags"]

    public init(name: String) {
        self.name = name
    }

    /// The upstream's `host[:port]`, as containerd sends it in `?ns=`.
    public var upstreamHost: String? {
        guard let upstream else { return nil }
        let rest = upstream.drop { $0 != "/" }.dropFirst(2)
        return String(rest.prefix { $0 != "/" })
    }

    /// Nil when `text` is an upstream URL this client can use (scheme, host, no path, query or credentials).
    public static func problem(withUpstream text: String) -> String? {
        let scheme = text.hasPrefix("https://") ? "https://" : text.hasPrefix("http://") ? "http://" : nil
        guard let scheme else { return "\"\(text)\" is not an http:// or https:// URL" }
        var rest = text.dropFirst(scheme.count)
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("?"), !rest.contains("#"), !rest.contains("@"),
              !rest.contains(" ") else {
            return "\"\(text)\" must be scheme://host[:port] alone (credentials go in username and password_file)"
        }
        return nil
    }

    /// The URL without trailing slashes.
    var base: String {
        var text = upstream ?? ""
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }
}
