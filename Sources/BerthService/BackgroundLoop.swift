#if canImport(Glibc)
import Glibc
#endif

/// Runs a job every few seconds on a thread of its own for the life of the worker
/// (saving metrics, emptying the trash). The thread blocks every signal: SIGTERM and
/// SIGINT belong to the server's `sigwait`.
enum BackgroundLoop {
    static func start(every interval: UInt32, _ job: @escaping @Sendable () -> Void) {
        var all = sigset_t()
        var previous = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        let context = Unmanaged.passRetained(Job(interval: interval, run: job)).toOpaque()
        var thread = pthread_t()
        guard pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            let job = Unmanaged<Job>.fromOpaque(raw).takeRetainedValue()
            while true {
                sleep(job.interval)
                job.run()
            }
        }, context) == 0 else {
            Unmanaged<Job>.fromOpaque(context).release()
            return
        }
        pthread_detach(thread)
    }

    private final class Job: Sendable {
        let interval: UInt32
        let run: @Sendable () -> Void

        init(interval: UInt32, run: @escaping @Sendable () -> Void) {
            self.interval = interval
            self.run = run
        }
    }
}
