#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A private docker engine for tests: Debian's `dockerd` 20.10 (package docker.io) on its
/// own containerd, with `--config-file <directory>/daemon.json` putting data-root,
/// exec-root, pidfile, the trust key and the API socket under `directory`; no bridge,
/// no iptables, vfs storage. Commands run with Debian's CLI (`/usr/bin/docker`, not any
/// other docker on PATH) with DOCKER_HOST and DOCKER_CONFIG pointing here.
///
/// The engine treats every 127.0.0.0/8 registry as insecure, so it speaks TLS to Berth
/// without verifying the certificate (falling back to plain HTTP only if TLS fails).
public final class DockerEngine: @unchecked Sendable {
    public static let daemonBinary = "/usr/sbin/dockerd"
    public static let cliBinary = "/usr/bin/docker"

    public let directory: String
    /// The containerd this engine runs on; `ctr` works against it too.
    public let containerd: Containerd
    public var socket: String { "\(directory)/docker.sock" }
    public var configFile: String { "\(directory)/daemon.json" }
    /// DOCKER_CONFIG of every CLI command (also where `docker manifest` keeps its lists).
    public var cliConfigDirectory: String { "\(directory)/cli" }
    public var logFile: String { "\(directory)/dockerd.log" }
    private var process: ChildProcess?

    /// Starts containerd under `<directory>/containerd`, then dockerd on it, and waits
    /// (at most `timeout` seconds each) until `docker version` reaches the daemon. Throws
    /// with the daemon's log when either does not come up.
    /// `settings` are added to daemon.json (e.g. `registry-mirrors`).
    public init(directory: String, timeout: TimeInterval = 60, settings extra: [String: Any] = [:]) throws {
        self.directory = directory
        for executable in [Self.daemonBinary, Self.cliBinary] where !FileManager.default.isExecutableFile(atPath: executable) {
            throw DaemonError.notInstalled("\(executable) is missing: install the Debian package docker.io")
        }
        for folder in ["data", "exec", "cli"] {
            try FileManager.default.createDirectory(atPath: "\(directory)/\(folder)", withIntermediateDirectories: true)
        }
        containerd = try Containerd(directory: "\(directory)/containerd")
        var settings: [String: Any] = [
            "data-root": "\(directory)/data",
            "exec-root": "\(directory)/exec",
            "pidfile": "\(directory)/docker.pid",
            "hosts": ["unix://\(socket)"],
            // Without this dockerd 20.10 writes /etc/docker/key.json.
            "deprecated-key-path": "\(directory)/key.json",
            "iptables": false,
            "ip-forward": false,
            "ip-masq": false,
            "bridge": "none",
            "storage-driver": "vfs",
            "containerd": containerd.socket,
        ]
        settings.merge(extra) { $1 }
        do {
            let json = try JSONSerialization.data(withJSONObject: settings, options: [.prettyPrinted, .sortedKeys])
            try json.write(to: URL(fileURLWithPath: configFile))
            let started = try Shell.start(Self.daemonBinary, ["--config-file", configFile], logFile: logFile,
                                          environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
            process = started
            try DaemonWait.until("dockerd", timeout: timeout, process: started, log: { self.log }) {
                self.docker(["version"], timeout: 10).succeeded
            }
        } catch {
            stop()
            throw error
        }
    }

    /// Runs Debian's docker CLI against this engine, ended after `timeout` seconds.
    public func docker(_ arguments: [String], timeout: TimeInterval = 180) -> Shell.Result {
        Shell.run(Self.cliBinary, arguments, environment: [
            "DOCKER_HOST": "unix://\(socket)", "DOCKER_CONFIG": cliConfigDirectory,
        ], timeout: timeout)
    }

    /// dockerd's log so far.
    public var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    /// Stops dockerd, then its containerd (SIGTERM each, SIGKILL after 20 s). Leaves
    /// `directory` in place.
    public func stop() {
        if let process { Shell.stop(process) }
        process = nil
        containerd.stop()
    }
}

/// `docker manifest push` sends plain HTTP to any registry the CLI counts as insecure,
/// and it counts every 127.0.0.0/8 address as insecure, so against a TLS registry on
/// loopback it fails whatever its flags (docker/cli#1951). This forwarder listens for
/// plain TCP on a free loopback port and relays each connection to the server's TLS port
/// with socat, verifying the server's certificate with its CA: the requests still reach
/// Berth through its nginx over TLS.
public final class PlainToTLSForwarder: @unchecked Sendable {
    public static let binary = "/usr/bin/socat"
    public let port: Int
    public var host: String { "127.0.0.1:\(port)" }
    private var process: ChildProcess?
    private let logFile: String

    public init(to server: RegistryServer, logFile: String, timeout: TimeInterval = 20) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw DaemonError.notInstalled("\(Self.binary) is missing: install the Debian package socat")
        }
        self.logFile = logFile
        port = try LoopbackPort.free()
        let started = try Shell.start(Self.binary, [
            "-d", "TCP-LISTEN:\(port),bind=127.0.0.1,reuseaddr,fork",
            "OPENSSL:\(server.host),cafile=\(server.certDirectory)/ca.crt,verify=1",
        ], logFile: logFile)
        process = started
        let url = "http://\(host)/v2/"
        do {
            try DaemonWait.until("socat", timeout: timeout, process: started,
                                 log: { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }) {
                Shell.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", url], timeout: 5).stdout == "200"
            }
        } catch {
            stop()
            throw error
        }
    }

    public func stop() {
        if let process { Shell.stop(process, grace: 5) }
        process = nil
    }
}

