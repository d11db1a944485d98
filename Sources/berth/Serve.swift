#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import FastCGI
import Registry
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
        do {
            settings = try Settings.load(file: config, environment: ProcessInfo.environment)
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

    @Option(help: "Requests served at once (threads; default 32). A long upload holds one for its duration.")
    var threads: Int?

    @Flag(help: "Let POST ?mount=<digest> without from= link a blob found anywhere in the store.")
    var automaticCrossMount = false

    @Option(help: "Open upload sessions allowed per repository (default 1000; then 429 TOOMANYREQUESTS).")
    var maxUploadSessions: Int?

    @Option(help: "Access policy file (user, repository pattern, read/write/delete per line). Default: no checks.")
    var policy: String?

    /// The settings with this command's flags applied.
    func settings() throws -> Settings {
        var settings = try common.load()
        let flags: [(String, String?)] = [
            ("socket", socket), ("socket_mode", socketMode), ("threads", threads.map(String.init)),
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
        var options = Registry.Options()
        options.automaticCrossMount = settings.automaticCrossMount
        options.maximumUploadSessions = settings.maxUploadSessions
        if let policy = settings.policy { options.policy = try PolicyFile.load(policy) }
        let layout = StoreLayout(root: root)
        let registry = Registry(layout: layout, options: options)
        let metrics = WorkerMetrics(layout: layout)
        let log = AccessLog(level: settings.logLevel)
        log.event("started", ["store": root, "socket": settings.socket ?? "fd 0", "threads": String(settings.threads)])
        let server = FastCGIServer(listenFD: listenFD, threads: settings.threads) { exchange in
            let started = Clock.monotonicMicroseconds()
            let (request, body) = RequestAdapter.request(from: exchange)
            var response: RegistryResponse
            if request.path == "/metrics" {
                // nginx lets only localhost reach this location.
                response = RegistryResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4")],
                                            body: Array(metrics.exposition().utf8))
                response.route = "metrics"
            } else {
                response = registry.handle(request)
            }
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

extension String {
    var replacingUnderscores: String { split(separator: "_").joined(separator: "-") }
}

enum ProcessInfo {
    /// The process environment as a dictionary.
    static var environment: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}

enum TextFile {
    /// The whole file as UTF-8 text; nil (errno set) when it cannot be read.
    static func read(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count == 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

enum PolicyFile {
    static func load(_ path: String) throws -> AccessPolicy {
        guard let text = TextFile.read(path) else {
            throw ValidationError("cannot read policy \(path): \(String(cString: strerror(errno)))")
        }
        do { return try AccessPolicy(text: text) } catch {
            throw ValidationError("\(path): \(error)")
        }
    }
}

/// Makes the storage root absolute and creates its bookkeeping folders.
enum StoreRoot {
    static func prepare(_ path: String) throws -> String {
        for directory in [path, "\(path)/_berth", "\(path)/_berth/tmp", "\(path)/_berth/uploads", "\(path)/_berth/locks"] {
            if mkdir(directory, 0o755) != 0, errno != EEXIST {
                throw ValidationError("cannot create \(directory): \(String(cString: strerror(errno)))")
            }
        }
        guard let resolved = realpath(path, nil) else {
            throw ValidationError("cannot resolve \(path): \(String(cString: strerror(errno)))")
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

enum Clock {
    static func monotonicMicroseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
    }
}
