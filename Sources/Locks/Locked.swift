#if canImport(Glibc)
import Glibc
#endif

/// A value behind a POSIX mutex: the lock for every piece of state that several threads
/// of one process change.
///
/// Why not the standard library's `Synchronization.Mutex`: on Linux it locks with atomics
/// and futex calls inside the prebuilt standard library, where ThreadSanitizer cannot see
/// them, so `scripts/tsan` reported every contended `Mutex` as a data race (a Mutex-only
/// program with four threads reproduces it). ThreadSanitizer intercepts `pthread_mutex_*`,
/// so with this lock a report from `scripts/tsan` means a real race.
public final class Locked<Value>: @unchecked Sendable {
    // @unchecked: `value` is only touched with `mutex` held.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ value: sending Value) {
        self.value = value
        mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the value, holding the lock; what `body` returns or throws passes through.
    public func withLock<Result, Failure: Error>(
        _ body: (inout sending Value) throws(Failure) -> sending Result
    ) throws(Failure) -> sending Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
