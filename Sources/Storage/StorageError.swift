/// Everything the store can refuse or fail at, with the cause. The registry maps each
/// case to one wire error; the store itself knows nothing of HTTP.
public enum StorageError: Error, Equatable, Sendable {
    case repositoryUnknown(RepositoryName)
    case blobUnknown(Digest)
    case manifestUnknown(Reference)
    case uploadUnknown(String)
    /// A chunk did not start where the upload currently ends.
    case uploadRangeMismatch(currentSize: UInt64)
    /// The body ended before (or ran past) the length it announced.
    case sizeMismatch(expected: UInt64, received: UInt64)
    case digestMismatch(expected: Digest, computed: Digest)
    /// The session was opened for one digest algorithm and completed with a digest of another.
    case algorithmMismatch(session: Digest.Algorithm, digest: Digest)
    case manifestInvalid(String)
    case manifestBlobUnknown(Digest)
    /// The name would turn an existing repository's entry into another repository, or the reverse.
    case nameCollision(RepositoryName, reason: String)
    case unsupported(String)
    /// The change would move or delete `tag`, which `rule` (an `immutable_tags` value) makes write-once.
    case tagImmutable(Tag, repository: RepositoryName, rule: String)
    /// Storing `adding` more bytes would take the usage of quota `rule` (a `quota` value)
    /// from `used` past `limit`; `adding` 0: the quota is full.
    case quotaExceeded(rule: String, used: UInt64, adding: UInt64, limit: UInt64)
    /// The repository already has as many open upload sessions as allowed.
    case tooManyUploads(limit: Int)
    /// The client's body stream broke off before its end.
    case bodyInterrupted
    /// A lock was not granted within the bounded wait.
    case lockTimeout(path: String)
    /// The repository is filled from an upstream: pushes, mounts and deletes are refused.
    case mirrored(RepositoryName)
    /// The upstream of a mirrored namespace could not answer (down, timing out, 429, 5xx,
    /// refusing the credentials), and nothing usable is stored.
    case upstreamUnavailable(namespace: String, reason: String)
    /// A system call failed: operation, path and errno.
    case io(operation: String, path: String, errno: Int32)
    /// A file in the store does not have the shape Berth wrote.
    case corrupt(path: String, reason: String)
}
