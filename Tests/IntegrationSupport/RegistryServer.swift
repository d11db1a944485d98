#if canImport(Glibc)
import Glibc
#endif
import FastCGI
import Foundation

/// A real Berth for integration tests: the `berth serve` binary on a unix socket and
/// nginx (configured by `scripts/nginx-conf`, as `scripts/run` does) with TLS on a
/// free loopback port, all under one temp directory.
public final class RegistryServer: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public let port: Int
    public var store: String { "\(directory.path)/store" }
    public var socket: String { "\(directory.path)/run/berth.sock" }
    /// Holds only `ca.crt`, as skopeo's and podman's `--cert-dir` want it.
    public var certDirectory: String { "\(directory.path)/certs" }
    public var host: String { "127.0.0.1:\(port)" }
    public var baseURL: String { "https://\(host)" }
    private var workers: [ChildProcess?] = []
    private var nginx: ChildProcess?
    private let listening: Listening
    private let workerArguments: [String]
    private let workerEnvironment: [String: String]
    /// The listening socket kept open here in `.inheritedOnStandardInput` mode, so
    /// workers can be killed and started again on it.
    private var listener: FileHandle?
    private let lock = NSLock()

    /// The repository checkout (for scripts and the nginx templates).
    public static var repositoryRoot: String {
        if let root = ProcessInfo.processInfo.environment["BERTH_REPO"], !root.isEmpty { return root }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    /// The `berth` binary under test.
    public static var binary: String {
        if let binary = ProcessInfo.processInfo.environment["BERTH_BIN"], !binary.isEmpty { return binary }
        return "\(repositoryRoot)/.build/debug/berth"
    }

    /// How the worker gets its listening socket.
    public enum Listening: Sendable {
        /// `berth serve --socket <path>`: the worker creates the socket.
        case ownSocket
        /// The socket is created here and handed over as fd 0, as systemd's
        /// `StandardInput=socket` and spawn-fcgi do; the worker gets no `--socket`.
        case inheritedOnStandardInput
    }

    /// Starts Berth and nginx in front of it. `workerCount` 1: one `berth serve` as shipped,
    /// a supervisor and its worker processes (`--workers` in `workerArguments`, default 2).
    /// More: that many unsupervised `berth serve --workers 0` processes on an inherited
    /// socket, which they all accept on, for tests that kill and start workers themselves.
    /// `prepareStore` runs on the (empty) store directory before any worker starts, e.g.
    /// to mount a small filesystem there.
    /// `workerEnvironment` is added to the worker's environment: `BERTH_<KEY>` settings,
    /// e.g. `BERTH_HTPASSWD` for authentication in the worker (see `withAuthentication`).
    /// `nginxArguments` go to `scripts/nginx-conf` (e.g. `--htpasswd FILE`).
    /// `nginxHTTPDirectives` go into the rendered nginx.conf's `http {}` before the site,
    /// as an operator's main config would have them (e.g. Debian's `gzip on;`).
    public init(workerArguments: [String] = [], workerEnvironment: [String: String] = [:], listening: Listening = .ownSocket,
                workerCount: Int = 1, nginxArguments: [String] = [], nginxHTTPDirectives: String = "",
                prepareStore: ((String) throws -> Void)? = nil) throws {
        precondition(workerCount == 1 || listening == .inheritedOnStandardInput, "several workers share an inherited socket")
        directory = TemporaryDirectory(prefix: "berth-it")
        self.listening = listening
        self.workerArguments = workerArguments
        self.workerEnvironment = workerEnvironment
        port = try LoopbackPort.free()
        let base = directory.path
        for folder in ["store", "run", "tls", "certs", "nginx"] {
            try FileManager.default.createDirectory(atPath: "\(base)/\(folder)", withIntermediateDirectories: true)
        }
        let certificate = Shell.run("openssl", [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", "\(base)/tls/server-key.pem", "-out", "\(base)/tls/server.pem",
        ])
        guard certificate.succeeded else { throw ServerError.setup("openssl: \(certificate.stderr)") }
        try FileManager.default.copyItem(atPath: "\(base)/tls/server.pem", toPath: "\(base)/certs/ca.crt")

        try prepareStore?(store)
        if listening == .inheritedOnStandardInput {
            listener = FileHandle(fileDescriptor: try FastCGIServer.listenUnix(path: socket, mode: 0o660), closeOnDealloc: true)
        }
        workers = Array(repeating: nil, count: workerCount)
        for index in 0..<workerCount { try startWorker(index) }
        try waitFor("the worker's socket") { FileManager.default.fileExists(atPath: self.socket) }

        let rendered = Shell.run("\(Self.repositoryRoot)/scripts/nginx-conf", [
            "\(base)/nginx", "--port", String(port), "--store", store, "--socket", socket,
            "--cert", "\(base)/tls/server.pem", "--key", "\(base)/tls/server-key.pem",
            "--user", "root", "--workers", "2",
        ] + nginxArguments)
        guard rendered.succeeded else { throw ServerError.setup("nginx-conf: \(rendered.stderr)\(rendered.stdout)") }
        if !nginxHTTPDirectives.isEmpty {
            let path = "\(base)/nginx/nginx.conf"
            let main = try String(contentsOfFile: path, encoding: .utf8)
            let include = "    include \(base)/nginx/berth-site.conf;"
            guard main.contains(include) else { throw ServerError.setup("nginx.conf has no site include to insert before") }
            try main.replacingOccurrences(of: include, with: "    \(nginxHTTPDirectives)\n\(include)")
                .write(toFile: path, atomically: true, encoding: .utf8)
        }
        nginx = try Shell.start("/usr/sbin/nginx", ["-p", "\(base)/nginx", "-c", "\(base)/nginx/nginx.conf", "-g", "daemon off;"],
                                logFile: "\(base)/nginx.log")
        try waitFor("nginx") { [200, 401].contains(self.curl(["\(self.baseURL)/v2/"]).status) }
    }

    /// Stops nginx and the worker (SIGTERM, as systemd would) and removes everything.
    public func stop() {
        for process in ([nginx] + lock.withLock { workers }).compactMap({ $0 }) { Shell.stop(process, grace: 30) }
        try? listener?.close()
        directory.remove()
    }

    /// Starts worker `index` (again). Each worker logs to `worker.log` (appending).
    public func startWorker(_ index: Int) throws {
        var arguments: [String]
        switch listening {
        case .ownSocket: arguments = ["serve", "--store", store, "--socket", socket] + workerArguments
        case .inheritedOnStandardInput: arguments = ["serve", "--store", store] + workerArguments
        }
        if lock.withLock({ workers.count }) > 1 { arguments += ["--workers", "0"] }
        let process = try Shell.start(Self.binary, arguments, logFile: "\(directory.path)/worker.log",
                                      environment: workerEnvironment, standardInput: listener, append: true)
        lock.withLock { workers[index] = process }
    }

    /// Kills worker `index` with SIGKILL, as a crash or the OOM killer would, and reaps it.
    /// A supervisor goes first, then its workers: all of Berth is gone.
    public func killWorker(_ index: Int) {
        guard let process = lock.withLock({ workers[index] }) else { return }
        let children = Self.children(of: process.processIdentifier)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        for child in children { kill(child, SIGKILL) }
        for child in children {
            for _ in 0..<200 where Self.isAlive(child) { usleep(10_000) }
        }
    }

    /// The `berth serve` process started first (the supervisor when there is one).
    public var supervisorProcessID: Int32? { workerProcessIDs.first }

    /// The worker processes the supervisor runs now (its children), in no particular order.
    public var supervisedWorkerIDs: [Int32] { supervisorProcessID.map { Self.children(of: $0) } ?? [] }

    /// Children of `pid`, from `/proc/<pid>/task/*/children`.
    public static func children(of pid: Int32) -> [Int32] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.flatMap { task in
            ((try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? "")
                .split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
    }

    /// True while `pid` exists and is not a zombie.
    public static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    /// Waits up to `timeout` seconds for worker `index` (a supervisor: with its children)
    /// to exit; true when it did.
    public func waitForExit(_ index: Int, timeout: Double) -> Bool {
        guard let process = lock.withLock({ workers[index] }) else { return true }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        return !process.isRunning
    }

    /// The worker processes' ids (for tests that signal them).
    public var workerProcessIDs: [Int32] { lock.withLock { workers.compactMap { $0?.processIdentifier } } }

    /// The worker's log (one JSON object per line).
    public var workerLog: String { (try? String(contentsOfFile: "\(directory.path)/worker.log", encoding: .utf8)) ?? "" }

    /// An HTTP answer as curl saw it.
    public struct Response: Sendable {
        public let status: Int
        public let headers: [String: [String]]
        public let body: Data

        public func header(_ name: String) -> String? { headers[name.lowercased()]?.first }

        /// Runs curl with `arguments` (its headers and body go to files in `scratch`): the
        /// status (-1 when no answer came), the headers of the last answer (curl writes one
        /// block per answer) and the body.
        public static func curl(_ arguments: [String], scratch: String) -> Response {
            let id = UUID().uuidString
            let headerFile = "\(scratch)/curl-\(id).headers", bodyFile = "\(scratch)/curl-\(id).body"
            defer {
                try? FileManager.default.removeItem(atPath: headerFile)
                try? FileManager.default.removeItem(atPath: bodyFile)
            }
            let result = Shell.run("curl", ["-sS", "-D", headerFile, "-o", bodyFile, "-w", "%{http_code}"] + arguments)
            let headerText = (try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? ""
            let blocks = headerText.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }
            var headers: [String: [String]] = [:]
            for line in (blocks.last ?? "").components(separatedBy: "\r\n").dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                headers[name, default: []].append(value)
            }
            let status = Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
            return Response(status: status == 0 ? -1 : status, headers: headers,
                            body: FileManager.default.contents(atPath: bodyFile) ?? Data())
        }
        public var text: String { String(decoding: body, as: UTF8.self) }

        /// The first OCI error code in the body, if it is the spec's error document.
        public var errorCode: String? {
            struct Body: Decodable {
                struct Entry: Decodable { let code: String }
                let errors: [Entry]
            }
            return (try? JSONDecoder().decode(Body.self, from: body))?.errors.first?.code
        }
    }

    /// Runs curl against this server (TLS verified against the test CA). `arguments`
    /// are curl's own; the headers and body of the last answer are returned.
    public func curl(_ arguments: [String]) -> Response {
        Response.curl(["--cacert", "\(certDirectory)/ca.crt"] + arguments, scratch: directory.path)
    }

    private func waitFor(_ what: String, _ ready: () -> Bool) throws {
        for _ in 0..<200 {
            if ready() { return }
            usleep(50_000)
        }
        throw ServerError.setup("\(what) did not come up; worker log:\n\(workerLog)\nnginx log:\n"
            + ((try? String(contentsOfFile: "\(directory.path)/nginx.log", encoding: .utf8)) ?? ""))
    }

    public enum ServerError: Error, CustomStringConvertible {
        case setup(String)
        public var description: String {
            switch self { case .setup(let text): "test server setup failed: \(text)" }
        }
    }
}
