#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import BerthService
import Storage

/// `--config`, shared by every command, and the settings it leads to.
struct SettingsOptions: ParsableArguments {
    @Option(help: "Config file (key = value lines; BERTH_<KEY> environment variables override it).")
    var config: String?

    @Option(help: "Storage root: one OCI image layout per repository.")
    var store: String?

    /// File and environment settings, with `--store` on top, checked.
    func load() throws -> Settings {
        var settings: Settings
        do throws(Settings.Problem) {
            settings = try Settings.load(file: config, environment: Environment.variables)
            if let store { try settings.set("store", store, source: "--store") }
        } catch {
            throw ValidationError(error.description)
        }
        guard settings.store != nil else { throw ValidationError("no store: give --store, store = in --config, or BERTH_STORE") }
        return settings
    }
}

/// `berth serve`: a supervisor and its FastCGI worker processes, which nginx passes
/// `/v2/` requests to (with `workers = 0`: this process serves alone).
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Answer registry requests over FastCGI.",
        discussion: """
            Listens on --socket, or, without it, on the listening socket inherited as fd 0 \
            (systemd socket activation with StandardInput=socket, or spawn-fcgi). This process \
            supervises --workers worker processes on that socket and starts a worker again \
            when one dies; --workers 0 serves in this process alone, unsupervised.
            """)

    @OptionGroup var common: SettingsOptions

    @Option(help: "Unix socket path to listen on (default: the inherited fd 0).")
    var socket: String?

    @Option(help: "Octal permissions of the socket created by --socket (default 660).")
    var socketMode: String?

    @Option(help: "Worker processes to keep running (default \(Defaults.workers)); 0: serve in this process, unsupervised.")
    var workers: Int?

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

    /// Set by the supervisor on the workers it starts: its pid (see `WorkerSpawner`).
    @Option(help: .private)
    var workerOfSupervisor: Int32?

    /// Set by the supervisor: the worker's slot (its in-flight region).
    @Option(help: .private)
    var workerIndex: Int = 0

    /// The settings with this command's flags applied.
    func settings() throws -> Settings {
        var settings = try common.load()
        let flags: [(String, String?)] = [
            ("socket", socket), ("socket_mode", socketMode), ("workers", workers.map(String.init)),
            ("threads", threads.map(String.init)), ("pull_threads", pullThreads.map(String.init)),
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
        if let supervisor = workerOfSupervisor {
            try WorkerProcess(settings: settings, role: .supervised(by: supervisor, index: workerIndex)).run()
        } else if settings.workers == 0 {
            try WorkerProcess(settings: settings, role: .alone).run()
        } else {
            try Supervisor(settings: settings, arguments: CommandLine.arguments).run()
        }
    }
}
