#if canImport(Glibc)
import Glibc
#endif
import FastCGI
import Logging
import Registry
import Storage

/// `berth serve` with `workers` ≥ 1: holds the listening socket, keeps that many worker
/// processes answering on it, and starts a worker again when one dies (php-fpm's model).
///
/// The supervisor stays single-threaded: it only starts workers, waits for signals and
/// reaps children, so nothing a worker does can take it down. A worker that dies is
/// replaced at once; one that keeps dying within a second of its start is replaced after
/// 0.5 s, then 1 s, 2 s, … at most 10 s, so a crash loop never spins. Each death is
/// logged (`worker_died`: pid, signal or exit status, and the requests that were in
/// flight on it, by request id and route, read from the shared in-flight table) and
/// counted in `berth_worker_restarts_total`.
///
/// SIGTERM or SIGINT: forwarded to every worker, which answers its requests in flight and
/// exits; the supervisor exits once all have. A socket it created is shut down first (no
/// new connections); an inherited one (systemd) is left open for the next start.
public final class Supervisor {
    private struct Slot {
        var pid: pid_t?
        /// CLOCK_MONOTONIC microseconds of the last start.
        var started: Int64 = 0
        /// Deaths in a row, each within `quickDeath` of its start.
        var quickDeaths = 0
        /// When to start it (again); nil while it runs or when nothing is due.
        var startAt: Int64? = 0
        var hasStarted = false
    }

    /// A worker dying sooner than this after its start counts towards the backoff.
    static let quickDeath: Int64 = 1_000_000
    static let longestBackoff: Int64 = 10_000_000

    private let settings: Settings
    private let arguments: [String]
    private let log: AccessLog
    private var slots: [Slot]
    private var stopping = false
    private var restarts: UInt64 = 0

    public init(settings: Settings, arguments: [String]) {
        self.settings = settings
        self.arguments = arguments
        log = AccessLog(level: settings.logLevel)
        slots = Array(repeating: Slot(), count: max(1, settings.workers))
    }

    /// The delay before starting a worker again after `quickDeaths` quick deaths in a row.
    static func backoff(afterQuickDeaths quickDeaths: Int) -> Int64 {
        guard quickDeaths > 1 else { return 0 }
        return min(longestBackoff, 500_000 << min(quickDeaths - 2, 16))
    }

    public func run() throws {
        let root = try StoreRoot.prepare(settings.store ?? ".")
        try StoreStartupCheck.run(root: root, log: log)
        // What would make every worker fail at start fails here, once, instead.
        if let policy = settings.policy { _ = try PolicyFile.load(policy) }
        _ = try EventDelivery.secret(settings)
        _ = try AuditLog.open(settings)
        let layout = StoreLayout(root: root)
        // The supervisor's own files only: it serves nothing.
        let metricsFiles = Store(layout: layout).metricsFiles
        let listening = try ListeningSocket.open(settings)
        let listenFD = listening.descriptor
        let ownSocket = listening.ownPath
        // Workers get the socket as fd 0: when it already is, it must survive exec.
        if listenFD == 0 { _ = fcntl(0, F_SETFD, 0) }
        let pullThreads = settings.pullThreads > 0 ? settings.pullThreads : FastCGIServer.defaultAcceptThreads
        let memory = try InFlightMemory(workers: slots.count, records: max(1, pullThreads) + settings.threads,
                                        fallbackDirectory: layout.temporaryDirectory)
        let spawner = WorkerSpawner(arguments: arguments, listenFD: listenFD, inFlightDescriptor: memory.descriptor)

        signal(SIGCHLD, SIG_DFL)  // an inherited SIG_IGN would reap children behind our back
        var waited = sigset_t()
        sigemptyset(&waited)
        for signal in [SIGCHLD, SIGTERM, SIGINT] { sigaddset(&waited, signal) }
        sigprocmask(SIG_BLOCK, &waited, nil)

        log.event("supervisor_started", ["store": root, "socket": settings.socket ?? "fd 0", "workers": String(slots.count),
                                         "pid": String(getpid())])
        while true {
            reapChildren(memory)
            if stopping {
                if slots.allSatisfy({ $0.pid == nil }) { break }
            } else {
                let now = Clock.monotonicMicroseconds()
                for index in slots.indices where slots[index].startAt.map({ $0 <= now }) == true {
                    start(index, spawner: spawner, memory: memory, metricsFiles: metricsFiles)
                }
            }
            var timeout = timespec(tv_sec: 1, tv_nsec: 0)
            if !stopping, let due = slots.compactMap(\.startAt).min() {
                let wait = max(1000, min(1_000_000, due - Clock.monotonicMicroseconds()))
                timeout = timespec(tv_sec: Int(wait / 1_000_000), tv_nsec: Int(wait % 1_000_000) * 1000)
            }
            let received = sigtimedwait(&waited, nil, &timeout)
            if received == SIGTERM || received == SIGINT { stop(signal: received, listenFD: ownSocket != nil ? listenFD : nil) }
        }
        WorkerMetrics.saveWorkerRestarts(restarts, files: metricsFiles)
        if let ownSocket { unlink(ownSocket) }
        log.event("supervisor_stopped", ["pid": String(getpid()), "restarts": String(restarts)])
    }

    /// Starts worker `index` on a cleared in-flight region.
    private func start(_ index: Int, spawner: WorkerSpawner, memory: InFlightMemory, metricsFiles: MetricsFiles) {
        slots[index].startAt = nil
        memory.clear(index)
        switch spawner.spawn(index: index) {
        case .success(let pid):
            slots[index].pid = pid
            slots[index].started = Clock.monotonicMicroseconds()
            if slots[index].hasStarted {
                restarts += 1
                WorkerMetrics.saveWorkerRestarts(restarts, files: metricsFiles)
                log.event("worker_restarted", ["worker": String(index), "pid": String(pid), "restarts": String(restarts)])
            }
            slots[index].hasStarted = true
        case .failure(let error):
            slots[index].quickDeaths += 1
            let delay = Self.backoff(afterQuickDeaths: slots[index].quickDeaths)
            slots[index].startAt = Clock.monotonicMicroseconds() + delay
            log.event("worker_spawn_failed", ["worker": String(index), "error": error.description, "retry_in_ms": String(delay / 1000)],
                      level: .error)
        }
    }

    private func stop(signal: Int32, listenFD: Int32?) {
        if !stopping {
            stopping = true
            log.event("supervisor_stopping", ["signal": ChildExit.name(ofSignal: signal), "pid": String(getpid())])
            for index in slots.indices { slots[index].startAt = nil }
            // A socket of our own: refuse new connections at once. Never an inherited one:
            // systemd keeps it, with its queued connections, for the next start.
            if let listenFD { shutdown(listenFD, Int32(SHUT_RDWR)) }
        }
        for slot in slots { if let pid = slot.pid { kill(pid, SIGTERM) } }
    }

    private func reapChildren(_ memory: InFlightMemory) {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            guard pid > 0 else { return }
            guard let index = slots.firstIndex(where: { $0.pid == pid }) else { continue }
            exited(index, ChildExit(status: status), memory: memory)
        }
    }

    /// Logs how worker `index` ended and what it was answering; schedules its replacement.
    private func exited(_ index: Int, _ exit: ChildExit, memory: InFlightMemory) {
        let now = Clock.monotonicMicroseconds()
        let lived = now - slots[index].started
        let lost = memory.entries(index)
        memory.clear(index)
        var metadata: Logger.Metadata = [
            "worker": .string(String(index)),
            "pid": .string(String(slots[index].pid ?? 0)),
            "uptime_ms": .string(String(lived / 1000)),
            "in_flight": .array(lost.map { Self.describe($0, now: now) }),
        ]
        if let signal = exit.signal {
            metadata["signal"] = .string(ChildExit.name(ofSignal: signal))
            if exit.dumpedCore { metadata["core_dumped"] = "true" }
        } else {
            metadata["exit_status"] = .string(String(exit.exitStatus ?? -1))
        }
        slots[index].pid = nil
        if stopping {
            // A worker told to stop before it could catch SIGTERM dies of it: a stop all the same.
            let stopped = exit.isClean || exit.signal == SIGTERM || exit.signal == SIGINT
            let event = stopped && lost.isEmpty ? "worker_stopped" : "worker_died"
            log.event(event, metadata: metadata, level: event == "worker_stopped" ? .info : .error)
            return
        }
        slots[index].quickDeaths = lived < Self.quickDeath ? slots[index].quickDeaths + 1 : 0
        let delay = Self.backoff(afterQuickDeaths: slots[index].quickDeaths)
        slots[index].startAt = now + delay
        metadata["restart_in_ms"] = .string(String(delay / 1000))
        if delay > 0 { metadata["quick_deaths"] = .string(String(slots[index].quickDeaths)) }
        // A clean exit outside a shutdown: someone sent that worker alone a SIGTERM.
        log.event(exit.isClean ? "worker_exited" : "worker_died", metadata: metadata, level: exit.isClean ? .warning : .error)
    }

    /// A lost request as the log shows it: id, method, route (and repository), how long it
    /// had run. Never a header, a query or a body (the table holds none).
    static func describe(_ entry: InFlightTable.Entry, now: Int64) -> Logger.MetadataValue {
        var fields: Logger.Metadata = [
            "request_id": .string(entry.requestID),
            "method": .string(entry.method),
            "running_ms": .string(String(max(0, now - entry.startedMicroseconds) / 1000)),
        ]
        if entry.path == "/metrics" {
            fields["route"] = "metrics"
        } else if let route = try? Route.parse(Substring(entry.path)) {
            fields["route"] = .string(route.name)
            if let repository = route.repository { fields["repository"] = .string(repository.value) }
        } else {
            fields["route"] = "unknown"
        }
        if entry.incomplete { fields["incomplete"] = "true" }
        return .dictionary(fields)
    }
}
