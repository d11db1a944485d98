#if canImport(Glibc)
import Glibc
#endif
import Storage

/// One fetch of a blob into a mirrored repository at a time, across threads and processes:
/// an flock on the blob's fetch lock file. The holder writes there the upload session
/// the bytes go to and their length (`<upload id> <size>`, `-` for a length the upstream
/// did not announce), so that others read the bytes from the session's data file as they
/// grow instead of asking the upstream again.
/// A crashed holder's lock goes with its process; the next holder overwrites what it wrote.
final class FetchLock: @unchecked Sendable {
    // @unchecked: used by one thread at a time (the request that took it, then the fetch
    // it was handed to).
    private var fd: Int32
    private let path: String

    /// What taking the lock gave.
    enum Outcome {
        /// This request fetches; the lock is held until `release()` (or deinit).
        case leading(FetchLock)
        /// Another fetch is under way into `session` with `size` bytes (nil: not announced);
        /// `watch` tells when it ends.
        case following(session: UploadID, size: UInt64?, watch: FetchWatch)
    }

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { release() }

    /// Takes the lock, or finds the fetch holding it. Waits while the holder has not said
    /// where its bytes go (it is still asking the upstream); gives up after `patience` seconds.
    static func take(_ layout: StoreLayout, _ repository: RepositoryName, _ digest: Digest,
                     patience: Int = 900) throws(StorageError) -> Outcome {
        let path = layout.fetchLockFile(repository, digest)
        try makeDirectories(layout.fetchLocksDirectory(repository))
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        let deadline = UpstreamRegistry.monotonicSeconds() + Int64(patience)
        while true {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 {
                ftruncate(fd, 0)
                return .leading(FetchLock(fd: fd, path: path))
            }
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let code = errno
                close(fd)
                throw .io(operation: "flock", path: path, errno: code)
            }
            if let (session, size) = announcement(fd) {
                return .following(session: session, size: size, watch: FetchWatch(fd: fd))
            }
            if UpstreamRegistry.monotonicSeconds() > deadline {
                close(fd)
                throw .lockTimeout(path: path)
            }
            usleep(10_000)
        }
    }

    /// Tells others where the bytes go.
    func announce(session: UploadID, size: UInt64?) {
        let text = Array("\(session.value) \(size.map(String.init) ?? "-")\n".utf8)
        ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    /// A view of this fetch for a request that follows it (its holder's own included):
    /// a second descriptor of the lock file, whose flock conflicts with the holder's.
    func watch() throws(StorageError) -> FetchWatch {
        let watching = open(path, O_RDWR | O_CLOEXEC)
        guard watching >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        return FetchWatch(fd: watching)
    }

    /// Ends the fetch: the announcement is cleared before the lock goes. Idempotent.
    func release() {
        guard fd >= 0 else { return }
        ftruncate(fd, 0)
        close(fd)  // drops the flock
        fd = -1
    }

    private static func announcement(_ fd: Int32) -> (UploadID, UInt64?)? {
        var buffer = [UInt8](repeating: 0, count: 128)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[0..<count], as: UTF8.self)
        guard text.hasSuffix("\n") else { return nil }  // still being written
        let parts = text.dropLast().split(separator: " ")
        guard parts.count == 2, let session = UploadID(String(parts[0])) else { return nil }
        if parts[1] == "-" { return (session, nil) }
        guard let size = UInt64(parts[1]) else { return nil }
        return (session, size)
    }

    private static func makeDirectories(_ path: String) throws(StorageError) {
        var prefix = ""
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o755) != 0, errno != EEXIST {
                throw .io(operation: "mkdir", path: prefix, errno: errno)
            }
        }
    }
}

/// Another request's view of a fetch it follows: whether the fetch has ended.
final class FetchWatch: @unchecked Sendable {
    // @unchecked: used by the one thread answering the request that follows.
    private let fd: Int32

    init(fd: Int32) { self.fd = fd }

    deinit { close(fd) }

    /// True once the fetching request let go of the lock (done, failed or crashed).
    var fetchEnded: Bool {
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return false }
        flock(fd, LOCK_UN)
        return true
    }
}
