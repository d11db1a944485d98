#if canImport(Glibc)
import Glibc
#endif

/// How the store locks, the one place to change it: an exclusive `flock` on a lock file
/// (one per repository, one for repository creation) or on an upload's data file,
/// shared by threads and processes (and by nodes on a filesystem that honours flock).
/// Waits are bounded: past the timeout the caller gets `StorageError.lockTimeout`
/// instead of a deadlock.
public struct LockPolicy: Sendable {
    public var timeoutSeconds: Double

    public init(timeoutSeconds: Double = Defaults.lockTimeoutSeconds) { self.timeoutSeconds = timeoutSeconds }

    /// Runs `body` holding an exclusive lock on `path` (created if needed).
    func withExclusiveLock<T>(path: String, _ body: () throws(StorageError) -> T) throws(StorageError) -> T {
        try FileSystem.makeDirectories(FileSystem.parent(of: path))
        let fd = try FileSystem.open(path, O_RDWR | O_CREAT, mode: 0o644)
        defer { close(fd) }
        try acquire(fd, path: path)
        return try body()
    }

    /// Locks an already open descriptor; the lock goes when the caller closes it.
    func acquire(_ fd: Int32, path: String) throws(StorageError) {
        var waitedMicroseconds = 0.0
        var pause: UInt32 = 200
        defer { LockWaits.record(microseconds: UInt64(waitedMicroseconds)) }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else { throw FileSystem.fail("flock", path) }
            if waitedMicroseconds >= timeoutSeconds * 1_000_000 { throw .lockTimeout(path: path) }
            usleep(pause)
            waitedMicroseconds += Double(pause)
            pause = min(pause * 2, 20_000)
        }
    }
}
