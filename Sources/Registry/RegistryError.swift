#if canImport(Glibc)
import Glibc
#endif
import Storage

/// An error answer: an entry of the `ErrorCode` table, a message for the client, extra
/// headers, and, for operators only, the internal cause. It renders itself as the OCI
/// error body `{"errors":[{"code","message","detail"}]}`; the cause never reaches the wire.
public struct RegistryError: Error, Sendable {
    public let code: ErrorCode
    public let message: String
    public let detail: String?
    public var headers: [(name: String, value: String)]
    /// What failed inside (operation, path, errno): for the access log, never the client.
    public let cause: Cause?

    public var status: Int { code.status }

    public init(_ code: ErrorCode, _ message: String, detail: String? = nil,
                headers: [(name: String, value: String)] = [], cause: Cause? = nil) {
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = headers
        self.cause = cause
        // Every 429 tells the client when to come back.
        if code.status == 429, !headers.contains(where: { $0.name.lowercased() == "retry-after" }) {
            self.headers.append(("Retry-After", "1"))
        }
    }

    /// The failure behind a 5xx (or a lock timeout), as an operator needs it.
    public struct Cause: Sendable, Equatable, CustomStringConvertible {
        public let operation: String
        public let path: String?
        public let errno: Int32?
        /// Anything more the failing layer said (a parser's reason).
        public let reason: String?

        public init(operation: String, path: String? = nil, errno: Int32? = nil, reason: String? = nil) {
            self.operation = operation
            self.path = path
            self.errno = errno
            self.reason = reason
        }

        public var description: String {
            var text = operation
            if let path { text += " \(path)" }
            if let errno { text += ": \(String(cString: strerror(errno))) (errno \(errno))" }
            if let reason { text += ": \(reason)" }
            return text
        }
    }

    public var response: RegistryResponse {
        var body: [UInt8] = []
        body.reserveCapacity(96 + message.utf8.count)
        body.append(contentsOf: "{\"errors\":[{\"code\":".utf8)
        JSONText.appendString(code.wireCode, to: &body)
        if let detail {
            body.append(contentsOf: ",\"detail\":".utf8)
            JSONText.appendString(detail, to: &body)
        }
        body.append(contentsOf: ",\"message\":".utf8)
        JSONText.appendString(message, to: &body)
        body.append(contentsOf: "}]}".utf8)
        var response = RegistryResponse(status: status, headers: [("Content-Type", "application/json")] + headers, body: body)
        response.cause = cause?.description
        return response
    }
}
