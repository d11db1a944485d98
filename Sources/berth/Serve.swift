#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import FastCGI
import Registry
import Storage

/// `berth serve`: the FastCGI worker nginx passes `/v2/` requests to.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Answer registry requests over FastCGI.",
        discussion: """
            Listens on --socket, or, without it, on the listening socket inherited as fd 0 \
            (systemd socket activation with StandardInput=socket, or spawn-fcgi).
            """)

    @Option(help: "Storage root: one OCI image layout per repository.")
    var store: String

    @Option(help: "Unix socket path to listen on (default: the inherited fd 0).")
    var socket: String?

    @Option(help: "Octal permissions of the socket created by --socket.")
    var socketMode: String = "660"

    @Option(help: "Requests served at once (threads). A long upload holds one for its duration.")
    var threads: Int = 32

    @Flag(help: "Let POST ?mount=<digest> without from= link a blob found anywhere in the store.")
    var automaticCrossMount = false

    @Option(help: "Open upload sessions allowed per repository (then 429 TOOMANYREQUESTS).")
    var maxUploadSessions = UploadStore.defaultMaximumSessionsPerRepository

    @Option(help: "Access policy file (user, repository pattern, read/write/delete per line). Default: no checks.")
    var policy: String?

    func validate() throws {
        guard threads >= 1, threads <= 1024 else { throw ValidationError("--threads must be between 1 and 1024") }
        guard maxUploadSessions >= 1 else { throw ValidationError("--max-upload-sessions must be at least 1") }
        guard mode_t(socketMode, radix: 8) != nil else { throw ValidationError("--socket-mode must be octal, e.g. 660") }
    }

    func run() throws {
        let root = try StoreRoot.prepare(store)
        let listenFD: Int32
        if let socket {
            listenFD = try FastCGIServer.listenUnix(path: socket, mode: mode_t(socketMode, radix: 8) ?? 0o660)
        } else {
            guard FastCGIServer.isListeningSocket(0) else {
                throw ValidationError("no --socket given and fd 0 is not a listening socket")
            }
            listenFD = 0
        }
        var options = Registry.Options()
        options.automaticCrossMount = automaticCrossMount
        options.maximumUploadSessions = maxUploadSessions
        if let policy { options.policy = try PolicyFile.load(policy) }
        let registry = Registry(layout: StoreLayout(root: root), options: options)
        let log = AccessLog()
        log.event("started", ["store": root, "socket": socket ?? "fd 0", "threads": String(threads)])
        let server = FastCGIServer(listenFD: listenFD, threads: threads) { exchange in
            let started = Clock.monotonicMicroseconds()
            let request = RequestAdapter.request(from: exchange)
            let response = registry.handle(request)
            exchange.respond(status: response.status, headers: response.headers, body: response.body)
            log.request(request, response, microseconds: Clock.monotonicMicroseconds() - started)
        }
        let signal = server.run()
        log.event("stopped", ["signal": String(signal)])
        if let socket { unlink(socket) }
    }
}

enum PolicyFile {
    static func load(_ path: String) throws -> AccessPolicy {
        guard let file = fopen(path, "r") else {
            throw ValidationError("cannot read policy \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count == 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
        }
        do { return try AccessPolicy(text: String(decoding: bytes, as: UTF8.self)) } catch {
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
