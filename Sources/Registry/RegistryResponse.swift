import Storage

/// An answer to write back: status, headers in order, and a small body. Large content
/// never travels here: blobs and manifests are answered with `X-Accel-Redirect`, except
/// a mirrored blob on its way from the upstream, whose body is a `stream`.
public struct RegistryResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// Which endpoint answered (`Route.name`), for metrics and logs.
    public var route = "unknown"
    /// The repository the request was about, if any (for logs).
    public var repository: String?
    /// The authenticated user, if any (for logs).
    public var user: String?
    /// The internal cause of an error answer (operation, path, errno), for the access
    /// log only: never sent.
    public var cause: String?
    /// A body produced after the headers: called once with where its bytes go; returns
    /// why it ended early, or nil.
    public var stream: (@Sendable (_ sink: any BodySink) -> String?)?
    /// Nothing was done: the request must be handled again where it may wait
    /// (`RegistryRequest.mayWait`).
    public private(set) var needsWaitingThread = false

    /// The answer of a request that has to wait on an upstream, on a thread that may not.
    public static var moveToWaitingThread: RegistryResponse {
        var response = RegistryResponse(status: 503)
        response.needsWaitingThread = true
        return response
    }
    /// What the audit log keeps of this answer (empty for reads).
    public var audit: [AuditFacts] = []

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }
}
