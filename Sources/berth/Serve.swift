#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import FastCGI
import Registry
import Storage
import Synchronization

/// `--config`, shared by every command, and the settings it leads to.
struct SettingsOptions: ParsableArguments {
    @Option(help: "Config file (key = value lines; BERTH_<KEY> environment variables override it).")
    var config: String?

    @Option(help: "Storage root: one OCI image layout per repository.")
    var store: String?

    /// File and environment settings, with `--store` on top, checked.
    func load() throws -> Settings {
        var settings: Settings
        do {
            settings = try Settings.load(file: config, environment: Environment.variables)
            if let store { try settings.set("store", store, source: "--store") }
        } catch let problem as Settings.Problem {
            throw ValidationError(problem.description)
        }
        guard settings.store != nil else { throw ValidationError("no store: give --store, store = in --config, or BERTH_STORE") }
        return settings
    }
}

/// `berth serve`: the FastCGI worker nginx passes `/v2/` requests to.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Answer registry requests over FastCGI.",
        discussion: """
            Listens on --socket, or, without it, on the listening socket inherited as fd 0 \
            (systemd socket activation with StandardInput=socket, or spawn-fcgi).
            """)

    @OptionGroup var common: SettingsOptions

    @Option(help: "Unix socket path to listen on (default: the inherited fd 0).")
    var socket: String?

    @Option(help: "Octal permissions of the socket created by --socket (default 660).")
    var socketMode: String?

    @Option(help: "Threads for uploads, pushes and deletes (default \(Defaults.threads)): one each while it lasts.")
    var threads: Int?

    @Option(help: "Threads that accept connections and answer pulls (GET/HEAD) themselves (default 0: one per core).")
    var pullThreads: Int?

    @Flag(help: "Let POST ?mount=<digest> without from= link a blob found anywhere in the store.")
    var automaticCrossMount = false

    @Option(help: "Open upload sessions allowed per repository (default \(Defaults.maximumUploadSessions); then 429 TOOMANYREQUESTS).")
    var maxUploadSessions: Int?

    @Option(help: "Access policy file (user, repository pattern, read/write/delete per line). Default: no checks.")
    var policy: String?

    /// The settings with this command's flags applied.
    func settings() throws -> Settings {
        var settings = try common.load()
        let flags: [(String, String?)] = [
            ("socket", socket), ("socket_mode", socketMode), ("threads", threads.map(String.init)), ("pull_threads", pullThreads.map(String.init)),
            ("max_upload_sessions", maxUploadSessions.map(String.init)), ("policy", policy),
            ("automatic_cross_mount", automaticCrossMount ? "true" : nil),
        ]
        do {
            for case let (key, value?) in flags { try settings.set(key, value, source: "--\(key.replacingUnderscores)") }
        } catch {
            throw ValidationError(error.description)
        }
        return settings
    }

    func run() throws {
        let settings = try settings()
        let root = try StoreRoot.prepare(settings.store ?? ".")
        let listenFD: Int32
        if let socket = settings.socket {
            listenFD = try FastCGIServer.listenUnix(path: socket, mode: mode_t(settings.socketMode))
        } else {
            guard FastCGIServer.isListeningSocket(0) else {
                throw ValidationError("no socket configured and fd 0 is not a listening socket")
            }
            listenFD = 0
        }
        // The composition root: one store (its caches, trash and locks) for the process.
        var storeOptions = Store.Options()
        storeOptions.maximumUploadSessions = settings.maxUploadSessions
        let store = Store(layout: StoreLayout(root: root), options: storeOptions)
        let metrics = WorkerMetrics(files: store.metricsFiles)
        var options = Registry.Options()
        options.automaticCrossMount = settings.automaticCrossMount
        if let policy = settings.policy { options.policy = try PolicyFile.load(policy) }
        // nginx lets only localhost reach /metrics.
        options.metricsExposition = { Array(metrics.exposition().utf8) }
        let registry = Registry(store: store, options: options)
        let log = AccessLog(level: settings.logLevel)
        // Counters to disk and set-aside files freed, each second, off the request path.
        // A failure that repeats every second is logged once, until it changes or clears.
        let trash = store.trash
        let lastTrashFailure = Mutex<String?>(nil)
        BackgroundLoop.start(every: 1) {
            metrics.saveIfChanged()
            var failure: String?
            do { try trash.empty() } catch { failure = "\(error)" }
            if lastTrashFailure.withLock({ last in defer { last = failure }; return last != failure }), let failure {
                log.event("trash_failed", ["error": failure])
            }
        }
        let pullThreads = settings.pullThreads > 0 ? settings.pullThreads : FastCGIServer.defaultAcceptThreads
        log.event("started", ["store": root, "socket": settings.socket ?? "fd 0", "threads": String(settings.threads),
                              "pull_threads": String(pullThreads)])
        let server = FastCGIServer(listenFD: listenFD, acceptThreads: pullThreads, requestThreads: settings.threads) { exchange in
            let started = Clock.monotonicMicroseconds()
            let (request, body) = RequestAdapter.request(from: exchange)
            let response = registry.handle(request)
            exchange.respond(status: response.status, headers: response.headers, body: response.body)
            let elapsed = Clock.monotonicMicroseconds() - started
            metrics.observe(route: response.route, status: response.status, microseconds: elapsed, bytesReceived: body.bytesRead)
            log.request(request, response, bytesReceived: body.bytesRead, microseconds: elapsed)
        }
        let signal = server.run()
        metrics.save()
        log.event("stopped", ["signal": String(signal)])
        if let socket = settings.socket { unlink(socket) }
    }
}
