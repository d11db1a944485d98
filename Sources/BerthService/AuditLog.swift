#if canImport(Glibc)
import Glibc
#endif
import Registry
import Storage

/// The audit log (`audit_log = FILE`): one JSON object per line, appended, of who changed
/// what or was refused: pushes, tag moves, deletes, logins and failed logins, robot
/// token creation and revocation, policy refusals (403 DENIED), each with the time, the
/// user, the client address, the repository, the digest and the request id.
///
/// Every process (workers, `berth token`) opens the file with `O_APPEND` and writes each
/// line with one `write`, so lines from several processes never interleave; each line is
/// `fdatasync`ed (audited answers are rare: never reads). Credentials never appear in it.
/// A write that fails is reported once to the caller's log and never fails the request.
public final class AuditLog: Sendable {
    /// One line of the log; absent fields are omitted.
    struct Entry: Encodable {
        let time: String
        let action: String
        var user: String?
        var client: String?
        var repository: String?
        var digest: String?
        var reference: String?
        var tags: [String]?
        var previousDigest: String?
        var detail: String?
        var requestID: String?
        var status: Int?

        enum CodingKeys: String, CodingKey {
            case time, action, user, client, repository, digest, reference, tags, detail, status
            case previousDigest = "previous_digest"
            case requestID = "request_id"
        }
    }

    private let descriptor: Int32
    public let path: String

    /// Opens (creating, mode 640) `path` for appending.
    public init(path: String) throws {
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw ServiceError("cannot open audit_log \(path): \(String(cString: strerror(errno)))") }
        descriptor = fd
        self.path = path
    }

    deinit { close(descriptor) }

    /// The log of `settings`, or nil when `audit_log` is not set.
    public static func open(_ settings: Settings) throws -> AuditLog? {
        try settings.auditLog.map { try AuditLog(path: $0) }
    }

    /// Appends what `response` did for `request`; false when the write failed.
    @discardableResult
    func record(_ request: RegistryRequest, _ response: RegistryResponse) -> Bool {
        guard !response.audit.isEmpty else { return true }
        let time = RFC3339.now()
        var ok = true
        for facts in response.audit {
            var entry = Entry(time: time, action: facts.action.rawValue)
            entry.user = response.user
            entry.client = request.headers["remote-addr"]
            entry.repository = response.repository
            entry.digest = facts.digest
            entry.reference = facts.reference
            entry.tags = facts.tags
            entry.previousDigest = facts.previousDigest
            entry.detail = facts.detail
            entry.requestID = request.headers["x-request-id"]
            entry.status = response.status
            ok = append(entry) && ok
        }
        return ok
    }

    /// Appends an action taken on this machine by a command (`berth token`): the user is
    /// the account that ran it, the client `local`.
    @discardableResult
    public func recordCommand(_ action: String, subject: String, detail: String? = nil) -> Bool {
        var entry = Entry(time: RFC3339.now(), action: action)
        entry.user = Self.localUser
        entry.client = "local"
        entry.reference = subject
        entry.detail = detail
        return append(entry)
    }

    /// Appends a change a maintenance command made to a repository (`berth retention`):
    /// user the account that ran it, client `local`.
    @discardableResult
    public func recordCommand(_ action: String, repository: String, digest: String, tags: [String], detail: String) -> Bool {
        var entry = Entry(time: RFC3339.now(), action: action)
        entry.user = Self.localUser
        entry.client = "local"
        entry.repository = repository
        entry.digest = digest
        entry.reference = digest
        entry.tags = tags.isEmpty ? nil : tags
        entry.detail = detail
        return append(entry)
    }

    private func append(_ entry: Entry) -> Bool {
        var line = JSONText.encode(entry)
        line.append(10)
        let written = line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        return written == line.count && fdatasync(descriptor) == 0
    }

    /// `uid:<n>` with the login name when there is one (`root`, `uid:0` otherwise).
    static var localUser: String {
        let uid = getuid()
        if let entry = getpwuid(uid), let name = entry.pointee.pw_name { return String(cString: name) }
        return "uid:\(uid)"
    }
}
