#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Time spent waiting for locks in this process, for metrics.
public enum LockWaits {
    private static let totals = Mutex<(count: UInt64, microseconds: UInt64)>((0, 0))

    /// Locks taken and microseconds spent waiting for them, since the process started.
    public static var snapshot: (count: UInt64, microseconds: UInt64) { totals.withLock { $0 } }

    static func record(microseconds: UInt64) {
        totals.withLock { $0 = ($0.count + 1, $0.microseconds + microseconds) }
    }
}

/// Exclusive `flock` locks, shared by threads and processes (and by nodes on a
/// filesystem that honours flock). Waits are bounded: past the timeout the caller gets
/// `StorageError.lockTimeout` instead of a deadlock.
enum FileLock {
    static let defaultTimeoutSeconds = 30.0

    /// Runs `body` holding an exclusive lock on `path` (created if needed).
    static func withExclusiveLock<T>(
        path: String, timeoutSeconds: Double = defaultTimeoutSeconds, _ body: () throws(StorageError) -> T
    ) throws(StorageError) -> T {
        try FileSystem.makeDirectories(FileSystem.parent(of: path))
        let fd = try FileSystem.open(path, O_RDWR | O_CREAT, mode: 0o644)
        defer { close(fd) }
        try acquire(fd, path: path, timeoutSeconds: timeoutSeconds)
        return try body()
    }

    /// Locks an already open descriptor; the lock goes when the caller closes it.
    static func acquire(_ fd: Int32, path: String, timeoutSeconds: Double = defaultTimeoutSeconds) throws(StorageError) {
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
