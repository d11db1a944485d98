#if canImport(Glibc)
import Glibc
#endif

/// A value many threads read at once and few replace, behind a POSIX read-write lock.
///
/// On the pull path every worker thread reads the same index cache; with a mutex they
/// queued behind each other (a spinning mutex was a tenth of the worker's CPU under
/// 32 connections), while readers of an rwlock only share it.
public final class ReadWriteLock<Value>: @unchecked Sendable {
    // @unchecked: `value` is only touched with `lock` held (shared to read, exclusive to write).
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    public func read<T>(_ body: (borrowing Value) -> T) -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return body(value)
    }

    public func write<T>(_ body: (inout Value) -> T) -> T {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return body(&value)
    }
}
