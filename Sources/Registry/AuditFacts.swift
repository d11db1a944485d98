/// What an answer did that the audit log keeps: a change (a manifest push, a tag moved by
/// it, a delete), an authentication (a login at `/v2/` or `/token`, or a failed one), or
/// a refusal (403 DENIED: the access policy, a write-once tag, a byte quota). Set by `Registry.handle`
/// and the handlers of changes; the service writes them with who asked, from where and
/// the request id. Reads are never audited.
public struct AuditFacts: Sendable, Equatable {
    public enum Action: String, Sendable {
        case push
        case tagMove = "tag.move"
        case delete
        case login
        case loginFailed = "login.failed"
        case denied
    }

    public var action: Action
    public var digest: String?
    /// The tag or digest the URL named (deletes, refusals).
    public var reference: String?
    /// The tags a push set.
    public var tags: [String]?
    /// The manifest a moved tag named before.
    public var previousDigest: String?
    /// Why a refusal was made (the error's message), or what a delete removed (`manifest`, `blob`).
    public var detail: String?

    public init(_ action: Action, digest: String? = nil, reference: String? = nil, tags: [String]? = nil,
                previousDigest: String? = nil, detail: String? = nil) {
        self.action = action
        self.digest = digest
        self.reference = reference
        self.tags = tags
        self.previousDigest = previousDigest
        self.detail = detail
    }
}

extension Registry {
    /// The authentication and refusal facts of an answer (changes are set by their handlers).
    static func auditFacts(of route: Route, _ request: RegistryRequest, _ response: RegistryResponse,
                           error: RegistryError?) -> [AuditFacts] {
        if let error, error.code == .denied { return [AuditFacts(.denied, reference: route.referenceText, detail: error.message)] }
        switch route {
        case .base, .token:
            if response.status == 200, response.user != nil { return [AuditFacts(.login)] }
            let presented = request.headers["authorization"] != nil || (route == .token && request.method == "POST")
            if response.status == 401, presented { return [AuditFacts(.loginFailed, detail: error?.message)] }
            return []
        default:
            return []
        }
    }
}

extension Route {
    /// The manifest or blob reference of the route, as sent.
    var referenceText: String? {
        switch self {
        case .manifest(_, let reference): reference.description
        case .blob(_, let digest): digest.description
        default: nil
        }
    }
}
