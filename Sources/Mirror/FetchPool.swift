#if canImport(Glibc)
import Glibc
#endif
import Locks

/// Threads that carry blob fetches from upstreams to their end, apart from the requests
/// that started them: a fetch runs at the upstream's pace, whatever its clients do.
///
/// At most `limit` threads at once (started when needed, each ending when the queue is
/// empty); a fetch beyond that waits for the first free one. The threads block every
/// signal: SIGTERM and SIGINT belong to the server's `sigwait`.
final class FetchPool: Sendable {
    typealias Job = @Sendable () -> Void

    let limit: Int
    private let state = Locked(State())

    private struct State {
        var running = 0
        var queued: [Job] = []
    }

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Runs `job` on a pool thread, now or when one is free. If no thread can be started
    /// and none runs, `job` runs here.
    func run(_ job: @escaping Job) {
        let startsThread = state.withLock { state -> Bool in
            guard state.running < limit else {
                state.queued.append(job)
                return false
            }
            state.running += 1
            return true
        }
        guard startsThread else { return }
        if startThread(job) { return }
        let alone = state.withLock { state -> Bool in
            state.running -= 1
            guard state.running == 0 else {
                state.queued.append(job)
                return false
            }
            return true
        }
        if alone { job() }
    }

    /// Fetches running or waiting for a thread.
    var pending: Int { state.withLock { $0.running + $0.queued.count } }

    private func startThread(_ first: @escaping Job) -> Bool {
        var all = sigset_t()
        var previous = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        let context = Unmanaged.passRetained(Start(pool: self, job: first)).toOpaque()
        var thread = pthread_t()
        guard pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            let start = Unmanaged<Start>.fromOpaque(raw).takeRetainedValue()
            start.pool.work(from: start.job)
            return nil
        }, context) == 0 else {
            Unmanaged<Start>.fromOpaque(context).release()
            return false
        }
        pthread_detach(thread)
        return true
    }

    /// Runs `first`, then queued jobs until none is left.
    private func work(from first: @escaping Job) {
        var next: Job? = first
        while let job = next {
            job()
            next = state.withLock { state -> Job? in
                guard !state.queued.isEmpty else {
                    state.running -= 1
                    return nil
                }
                return state.queued.removeFirst()
            }
        }
    }

    private final class Start: Sendable {
        let pool: FetchPool
        let job: Job

        init(pool: FetchPool, job: @escaping Job) {
            self.pool = pool
            self.job = job
        }
    }
}
