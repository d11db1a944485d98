#if canImport(Glibc)
import Glibc
#endif
import Storage

extension RegistryError {
    /// The one table from storage failures to wire errors. Total: every case has an
    /// answer, and only failures of the registry itself become a 5xx.
    public init(_ error: StorageError) {
        switch error {
        case .repositoryUnknown(let name):
            self.init(.nameUnknown, "repository \(name) is not known to this registry")
        case .blobUnknown(let digest):
            self.init(.blobUnknown, "blob \(digest) is not in this repository")
        case .manifestUnknown(let reference):
            self.init(.manifestUnknown, "manifest \(reference) is not in this repository")
        case .uploadUnknown(let id):
            self.init(.blobUploadUnknown, "upload \(id) is not in progress in this repository")
        case .uploadRangeMismatch(let size):
            self.init(.uploadRangeMismatch, "the chunk must start at byte \(size), where the upload ends",
                      headers: [("Range", RangeHeader.value(forSize: size))])
        case .sizeMismatch(let expected, let received):
            self.init(.sizeInvalid, "the body has \(received) bytes but \(expected) were announced")
        case .digestMismatch(let expected, let computed):
            self.init(.digestInvalid, "the content hashes to \(computed), not \(expected)")
        case .algorithmMismatch(let session, let digest):
            self.init(.digestInvalid, "the upload was opened with digest-algorithm=\(session.rawValue), but completed with \(digest)")
        case .manifestInvalid(let reason):
            self.init(.manifestInvalid, reason)
        case .manifestBlobUnknown(let digest):
            self.init(.manifestBlobUnknown, "the manifest references \(digest), which is not in this repository",
                      detail: digest.description)
        case .nameCollision(let name, let reason):
            self.init(.nameInvalid, "repository name \(name) cannot be used here: \(reason)")
        case .unsupported(let reason):
            self.init(.unsupported, reason)
        case .tagImmutable(let tag, let repository, let rule):
            self.init(.denied, "tag \(tag) of \(repository) is write-once (immutable_tags = \(rule)): it cannot be moved or deleted")
        case .quotaExceeded(let rule, let used, let adding, let limit):
            // 403 DENIED, as Harbor answers a quota refusal: clients do not retry it.
            let figures = "used \(ByteSize.human(used)) (\(used) bytes) of \(ByteSize.human(limit)) (\(limit) bytes)"
            let message = adding == 0
                ? "quota \(rule) is full: \(figures)"
                : "quota \(rule) exceeded: storing \(ByteSize.human(adding)) (\(adding) bytes) more would pass the limit; \(figures)"
            self.init(.denied, message, detail: "rule=\(rule) used=\(used) adding=\(adding) limit=\(limit)")
        case .tooManyUploads(let limit):
            self.init(.tooManyRequests, "this repository already has \(limit) open upload sessions; finish or cancel some",
                      headers: [("Retry-After", "60")])
        case .bodyInterrupted:
            self.init(.blobUploadInvalid, "the request body ended before it was complete")
        case .lockTimeout(let path):
            self.init(.tooManyRequests, "the repository is busy, retry shortly", headers: [("Retry-After", "1")],
                      cause: Cause(operation: "lock", path: path, reason: "not granted within the bounded wait"))
        case .mirrored(let name):
            self.init(.denied, "repository \(name) is a pull-through mirror: pushes, mounts and deletes are refused")
        case .upstreamUnavailable(let namespace, let reason):
            self.init(.unavailable, "the upstream of mirror \(namespace) cannot answer and nothing is cached: \(reason)",
                      headers: [("Retry-After", "10")])
        case .io(let operation, let path, let code) where code == ESTALE:
            // Retried already (FileSystem): another node keeps replacing the file.
            self.init(.unavailable, "the shared store kept answering \"stale file handle\" (ESTALE) for a file "
                      + "another node is replacing; retry shortly", headers: [("Retry-After", "1")],
                      cause: Cause(operation: operation, path: path, errno: code))
        case .io(let operation, let path, let code) where code == ENOTCONN:
            self.init(.unavailable, "the store's filesystem is not connected on this node (its mount lost the server); "
                      + "retry, another node may answer", headers: [("Retry-After", "1")],
                      cause: Cause(operation: operation, path: path, errno: code))
        case .io(let operation, let path, let code):
            let full = code == ENOSPC || code == EDQUOT
            self.init(full ? .storageFull : .unknown,
                      "storage failure (\(operation)): \(String(cString: strerror(code)))",
                      cause: Cause(operation: operation, path: path, errno: code))
        case .corrupt(let path, let reason):
            self.init(.unknown, "stored data is damaged; the operator has the details in the log",
                      cause: Cause(operation: "read", path: path, reason: reason))
        }
    }
}

/// Runs a storage call; a failure becomes its entry of the table above.
func storage<T>(_ body: () throws(StorageError) -> T) throws(RegistryError) -> T {
    do {
        return try body()
    } catch {
        throw RegistryError(error)
    }
}

/// The `Range` header of upload answers: `0-<last byte>`, and `0-0` when empty.
enum RangeHeader {
    static func value(forSize size: UInt64) -> String { "0-\(size == 0 ? 0 : size - 1)" }
}
