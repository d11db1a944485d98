#if canImport(Glibc)
import Glibc
#endif
import Auth
import FastCGI
import Mirror
import Registry
import Storage
import Locks
import Synchronization

/// One process answering registry requests on the listening socket until SIGTERM or
/// SIGINT, after answering the requests in flight.
///
/// Either one of a supervisor's workers (the socket on fd 0, the in-flight table on fd 3,
/// its slot index) or, with `workers = 0`, a process serving alone (on `--socket`, which
/// it creates, or on the inherited fd 0).
public struct WorkerProcess {
    public enum Role: Sendable {
        case alone
        case supervised(by: pid_t, index: Int)
    }

    let settings: Settings
    let role: Role

    public init(settings: Settings, role: Role) {
        self.settings = settings
        self.role = role
    }

    public func run() throws {
        let root = try StoreRoot.prepare(settings.store ?? ".")
        let log = AccessLog(level: settings.logLevel)
        // A supervisor checked the store before it started this worker.
        if case .alone = role { try StoreStartupCheck.run(root: root, log: log) }
        let listening = switch role {
        case .supervised: try ListeningSocket.inherited(or: "supervised worker: fd 0 is not a listening socket")
        case .alone: try ListeningSocket.open(settings)
        }
        let listenFD = listening.descriptor
        let ownSocket = listening.ownPath
        // The composition root: one store (its caches, trash and locks) for the process.
        let webhookSecret = try EventDelivery.secret(settings)
        let store = Store(layout: StoreLayout(root: root), options: settings.storeOptions)
        let metrics = WorkerMetrics(files: store.metricsFiles, quotas: store.quotas, outbox: store.events)
        var options = Registry.Options()
        options.automaticCrossMount = settings.automaticCrossMount
        if let policy = settings.policy { options.policy = try PolicyFile.load(policy) }
        if let auth = try Self.authService(settings, store: store) {
            options.authenticator = auth
            options.tokenIssuer = auth
            options.challenge = settings.auth == .basic ? .basic : .bearer(realm: nil)
            if options.policy == nil { options.policy = AccessPolicy.authenticatedUsers }
        }
        // nginx lets only localhost reach /metrics.
        options.metricsExposition = { Array(metrics.exposition().utf8) }
        var capabilities = store.capabilities
        if !settings.mirrors.isEmpty {
            let mirrors = settings.mirrors.keys.sorted().compactMap { settings.mirrors[$0] }
            let mirror = try PullThroughMirror(decorating: capabilities, mirrors: mirrors, defaultNamespace: settings.mirrorDefault,
                                               fetchThreads: settings.mirrorThreads,
                                               onEvent: { name, details in Self.mirrorEvent(name, details, metrics: metrics, log: log) })
            capabilities = mirror.capabilities
        }
        if settings.recordPulls { capabilities = capabilities.recordingPulls(into: store.pullRecorder) }
        let registry = Registry(capabilities: capabilities, options: options)
        let audit = try AuditLog.open(settings)
        let auditFailed = Locked(false)
        let inFlight: InFlightRecords?
        var details = ["store": root, "pid": String(getpid())]
        switch role {
        case .alone:
            inFlight = nil
            details["socket"] = settings.socket ?? "fd 0"
        case .supervised(let supervisor, let index):
            inFlight = InFlightRecords(descriptor: InFlightTable.workerDescriptor, index: index)
            details["worker"] = String(index)
            details["supervisor"] = String(supervisor)
        }
        startBackgroundLoop(store: store, metrics: metrics, log: log)
        EventDelivery.start(store: store, settings: settings, secret: webhookSecret, log: log)

        let pullThreads = settings.pullThreads > 0 ? settings.pullThreads : FastCGIServer.defaultAcceptThreads
        let waitingThreads = settings.mirrors.isEmpty ? 0 : settings.mirrorThreads
        if waitingThreads > 0 { details["mirror_threads"] = String(waitingThreads) }
        details["threads"] = String(settings.threads)
        details["pull_threads"] = String(pullThreads)
        log.event("started", details)
        let server = FastCGIServer(listenFD: listenFD, acceptThreads: pullThreads, requestThreads: settings.threads,
                                   waitingThreads: waitingThreads, ownsListeningSocket: ownSocket != nil) { exchange in
            let started = Clock.monotonicMicroseconds()
            var (request, body) = RequestAdapter.request(from: exchange)
            request.mayWait = exchange.mayWait
            inFlight?.begin(thread: exchange.threadIndex, method: request.method, requestID: request.headers["x-request-id"],
                            uri: request.uri)
            defer { inFlight?.end(thread: exchange.threadIndex) }
            var response = registry.handle(request)
            if response.needsWaitingThread, !exchange.mayWait { return .moveToWaitingThread }
            // Before the answer: an acknowledged change is in the audit log.
            if let audit, !audit.record(request, response) {
                let code = errno
                let first = auditFailed.withLock { failed in
                    defer { failed = true }
                    return !failed
                }
                if first { log.event("audit_write_failed", ["file": audit.path, "error": String(cString: strerror(code))], level: .error) }
            }
            if let stream = response.stream {
                exchange.respondHead(status: response.status, headers: response.headers)
                if let failure = stream(ExchangeBodySink(exchange: exchange)) { response.cause = failure }
            } else {
                exchange.respond(status: response.status, headers: response.headers, body: response.body)
            }
            let elapsed = Clock.monotonicMicroseconds() - started
            metrics.observe(route: response.route, status: response.status, microseconds: elapsed, bytesReceived: body.bytesRead)
            log.request(request, response, bytesReceived: body.bytesRead, microseconds: elapsed)
            return .answered
        }
        let signal = server.run()
        metrics.save()
        if settings.recordPulls { try? store.pullRecorder.flush() }
        log.event("stopped", ["signal": String(signal), "pid": String(getpid())])
        if let ownSocket { unlink(ownSocket) }
    }

    /// Logs a mirror's event (trouble as a warning) and counts it per mirror.
    private static func mirrorEvent(_ name: String, _ details: [String: String], metrics: WorkerMetrics, log: AccessLog) {
        let mirror = details["mirror"] ?? "unknown"
        switch name {
        case "mirror_hit":
            // One per cached pull: counted, not logged (the access log has the request).
            metrics.countMirror(mirror, "hits")
            return
        case "mirror_fetch": metrics.countMirror(mirror, "misses")
        case "mirror_follow": metrics.countMirror(mirror, "follows")
        case "mirror_stored": metrics.countMirror(mirror, "fetched_bytes", by: details["size"].flatMap { UInt64($0) } ?? 0)
        case "mirror_stale": metrics.countMirror(mirror, "stale_serves")
        case "mirror_upstream_error": metrics.countMirror(mirror, "upstream_errors")
        case "mirror_fetch_failed": metrics.countMirror(mirror, "failed_fetches")
        case "mirror_event_failed": metrics.countMirror(mirror, "failed_events")
        default: break
        }
        let quiet = ["mirror_fetch", "mirror_follow", "mirror_stored"].contains(name)
        log.event(name, details, level: quiet ? .info : .warning)
    }

    /// The authenticator and token issuer, when the worker authenticates (`htpasswd` or `auth` set).
    static func authService(_ settings: Settings, store: Store) throws -> AuthService? {
        guard settings.authenticates else { return nil }
        var options = AuthService.Options()
        options.htpasswd = settings.htpasswd
        options.tokenKey = settings.tokenKey
        options.tokenTTL = settings.tokenTTL
        options.service = settings.service
        options.issuers = settings.issuers.keys.sorted().compactMap { settings.issuers[$0] }
        return try AuthService(files: AuthFiles(layout: store.layout, clock: store.clock), options: options)
    }

    /// Each second, off the request path: this process's counters to disk; every
    /// `pull_record_interval` seconds, what it saw pulled (`PullRecorder`); the trash
    /// emptied (store-wide work, so only by the first of a supervisor's workers); and, for
    /// a supervised worker, a check that its supervisor still lives (if not, it stops as
    /// on SIGTERM: a new supervisor's workers take over the socket).
    /// A failure that repeats every second is logged once, until it changes or clears.
    private func startBackgroundLoop(store: Store, metrics: WorkerMetrics, log: AccessLog) {
        let trash: Trash?
        let supervisor: pid_t?
        switch role {
        case .alone:
            trash = store.trash
            supervisor = nil
        case .supervised(let parent, let index):
            trash = index == 0 ? store.trash : nil
            supervisor = parent
        }
        let lastTrashFailure = Locked<String?>(nil)
        let lastPullRecordFailure = Locked<String?>(nil)
        let orphaned = Atomic<Bool>(false)
        let seconds = Atomic<Int>(0)
        let pullRecordInterval = settings.recordPulls ? settings.pullRecordInterval : 0
        BackgroundLoop.start(every: 1) {
            metrics.saveIfChanged()
            if pullRecordInterval > 0, (seconds.add(1, ordering: .relaxed).newValue) % pullRecordInterval == 0 {
                var failure: String?
                do { try store.pullRecorder.flush() } catch { failure = "\(error)" }
                if lastPullRecordFailure.withLock({ last in defer { last = failure }; return last != failure }), let failure {
                    log.event("pull_records_failed", ["error": failure])
                }
            }
            if let supervisor, getppid() != supervisor, !orphaned.exchange(true, ordering: .relaxed) {
                log.event("supervisor_gone", ["supervisor": String(supervisor), "pid": String(getpid())], level: .warning)
                kill(getpid(), SIGTERM)
            }
            guard let trash else { return }
            var failure: String?
            do { try trash.empty() } catch { failure = "\(error)" }
            if lastTrashFailure.withLock({ last in defer { last = failure }; return last != failure }), let failure {
                log.event("trash_failed", ["error": failure])
            }
        }
    }
}

/// A streamed answer's body going down the request's FastCGI connection; file ranges go
/// by `sendfile`.
struct ExchangeBodySink: BodySink {
    let exchange: FastCGIExchange

    func write(_ bytes: UnsafeRawBufferPointer) -> Bool { exchange.write(bytes) }

    func send(file fd: Int32, offset: UInt64, count: Int) -> FileSendOutcome {
        switch exchange.send(file: fd, offset: offset, count: count) {
        case .sent: .sent
        case .connectionFailed: .clientGone
        case .fileFailed(let code): .unreadable(errno: code)
        }
    }
}
