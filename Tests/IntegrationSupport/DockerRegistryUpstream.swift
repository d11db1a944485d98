import Foundation

/// Debian's `docker-registry` (distribution) on a free loopback port, with TLS (a
/// self-signed certificate for 127.0.0.1) and htpasswd auth: the upstream a Berth mirror
/// pulls through in the integration tests. Can be stopped and started again on its port.
public final class DockerRegistryUpstream: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public let port: Int
    public let username: String
    public let password: String
    public var host: String { "127.0.0.1:\(port)" }
    public var baseURL: String { "https://\(host)" }
    /// The CA (its own certificate) as a PEM file, for `ca_file`.
    public var certificate: String { "\(directory.path)/certs/ca.crt" }
    /// Holds only `ca.crt`, for skopeo's `--dest-cert-dir`.
    public var certDirectory: String { "\(directory.path)/certs" }
    /// distribution's filesystem storage root.
    public var storage: String { "\(directory.path)/registry" }
    private var process: ChildProcess?

    public init(username: String = "mirror", password: String = "upstream-secret-pw") throws {
        directory = TemporaryDirectory(prefix: "berth-upstream")
        port = try LoopbackPort.free()
        self.username = username
        self.password = password
        let base = directory.path
        for folder in ["certs", "tls", "registry"] {
            try FileManager.default.createDirectory(atPath: "\(base)/\(folder)", withIntermediateDirectories: true)
        }
        let certificate = Shell.run("openssl", [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", "\(base)/tls/key.pem", "-out", "\(base)/certs/ca.crt",
        ])
        guard certificate.succeeded else { throw RegistryServer.ServerError.setup("openssl: \(certificate.stderr)") }
        let htpasswd = Shell.run("htpasswd", ["-B", "-C", "5", "-b", "-c", "\(base)/htpasswd", username, password])
        guard htpasswd.succeeded else { throw RegistryServer.ServerError.setup("htpasswd: \(htpasswd.stderr)") }
        let config = """
            version: 0.1
            log:
              level: info
            storage:
              filesystem:
                rootdirectory: \(base)/registry
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:\(port)
              tls:
                certificate: \(base)/certs/ca.crt
                key: \(base)/tls/key.pem
            auth:
              htpasswd:
                realm: upstream
                path: \(base)/htpasswd
            """
        try config.write(toFile: "\(base)/registry.yml", atomically: true, encoding: .utf8)
        try start()
    }

    /// Starts the registry (again) and waits until it answers.
    public func start() throws {
        process = try Shell.start("/usr/bin/docker-registry", ["serve", "\(directory.path)/registry.yml"],
                                  logFile: "\(directory.path)/registry.log", append: true)
        for _ in 0..<200 {
            let probe = Shell.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", certificate, "\(baseURL)/v2/"])
            if probe.stdout == "401" { return }
            usleep(50_000)
        }
        throw RegistryServer.ServerError.setup("docker-registry did not come up: \(log)")
    }

    /// Stops the registry (SIGTERM; SIGKILL after 5 s, as it may wait for connections
    /// to drain) and waits for it.
    public func stop() {
        guard let process else { return }
        Shell.stop(process, grace: 5)
        self.process = nil
    }

    /// Stops it and removes everything.
    public func remove() {
        stop()
        directory.remove()
    }

    public var log: String { (try? String(contentsOfFile: "\(directory.path)/registry.log", encoding: .utf8)) ?? "" }

    /// The file distribution keeps a blob's bytes in.
    public func blobFile(_ digest: String) -> String {
        let hex = String(digest.dropFirst("sha256:".count))
        return "\(storage)/docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data"
    }
}
