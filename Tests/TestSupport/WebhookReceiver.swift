import Foundation

/// A real HTTP server receiving webhook POSTs (Python's http.server on 127.0.0.1, in a
/// process of its own), for the tests of event delivery. It answers 500 to the first
/// `failFirst` requests and to every request while `failing` is on, 200 otherwise, and
/// records every request: the body, the signature header and whether it matched the
/// HMAC-SHA256 of the body under `secret`, and what it answered.
public final class WebhookReceiver: @unchecked Sendable {
    public struct Request: Decodable, Sendable {
        public let status: Int
        public let contentType: String?
        /// True or false when a secret is set (the signature header matched or not); nil otherwise.
        public let signatureValid: Bool?
        public let body: String

        enum CodingKeys: String, CodingKey {
            case status, body
            case contentType = "content_type"
            case signatureValid = "signature_valid"
        }
    }

    public let directory: TemporaryDirectory
    public let port: Int
    public var url: String { "http://127.0.0.1:\(port)/hook" }
    private let process: ChildProcess
    private var log: String { "\(directory.path)/requests.jsonl" }
    private var failFile: String { "\(directory.path)/fail" }

    public init(failFirst: Int = 0, secret: String? = nil) throws {
        directory = TemporaryDirectory(prefix: "berth-webhook")
        port = try LoopbackPort.free()
        let script = "\(directory.path)/receiver.py"
        try Self.script.write(toFile: script, atomically: true, encoding: .utf8)
        let log = "\(directory.path)/requests.jsonl", failFile = "\(directory.path)/fail"
        process = try Shell.start("/usr/bin/python3", [script, String(port), log, failFile, String(failFirst), secret ?? ""],
                                  logFile: "\(directory.path)/receiver.log")
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: "\(log).ready") {
            guard Date() < deadline, process.isRunning else { throw ReceiverError(reason: "the receiver did not start") }
            usleep(20_000)
        }
    }

    /// While on, every request is answered 500.
    public var failing: Bool {
        get { FileManager.default.fileExists(atPath: failFile) }
        set {
            if newValue { _ = FileManager.default.createFile(atPath: failFile, contents: Data()) }
            else { try? FileManager.default.removeItem(atPath: failFile) }
        }
    }

    /// Every request so far, in arrival order.
    public var requests: [Request] {
        guard let text = try? String(contentsOfFile: log, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Request.self, from: Data($0.utf8)) }
    }

    /// The bodies of the requests answered 200, in arrival order.
    public var accepted: [String] { requests.filter { $0.status == 200 }.map(\.body) }

    public func stop() {
        if process.isRunning {
            // SIGKILL: the test process may hand its children a blocked SIGTERM, which
            // Python's http.server never unblocks.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        directory.remove()
    }

    struct ReceiverError: Error { let reason: String }

    static let script = #"""
    import hashlib, hmac, http.server, json, os, sys, threading
    port, log, fail_file, fail_first, secret = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    lock = threading.Lock()
    seen = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            valid = None
            if secret:
                expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                valid = hmac.compare_digest(expected, self.headers.get("X-Berth-Signature-256", ""))
            with lock:
                seen[0] += 1
                status = 500 if seen[0] <= fail_first or os.path.exists(fail_file) else 200
                with open(log, "a") as out:
                    out.write(json.dumps({"status": status, "content_type": self.headers.get("Content-Type"),
                                          "signature_valid": valid, "body": body.decode()}) + "\n")
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    open(log + ".ready", "w").close()
    server.serve_forever()
    """#
}
