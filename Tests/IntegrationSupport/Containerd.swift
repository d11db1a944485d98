#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A private containerd (Debian's `containerd` 1.6) for tests: its own config file, with
/// root, state, temp, opt and every socket under `directory`, the CRI plugin off, and
/// content isolated per namespace (so a pull into a fresh namespace downloads every
/// blob). Nothing outside `directory` is used. `ctr` runs against it.
public final class Containerd: @unchecked Sendable {
    public static let binary = "/usr/bin/containerd"
    public static let ctrBinary = "/usr/bin/ctr"

    public let directory: String
    public var socket: String { "\(directory)/containerd.sock" }
    public var configFile: String { "\(directory)/config.toml" }
    public var logFile: String { "\(directory)/containerd.log" }
    private var process: ChildProcess?

    /// Starts containerd and waits (at most `timeout` seconds) until `ctr version` reaches
    /// it. Throws with containerd's log when it does not come up.
    public init(directory: String, timeout: TimeInterval = 30) throws {
        self.directory = directory
        for executable in [Self.binary, Self.ctrBinary] where !FileManager.default.isExecutableFile(atPath: executable) {
            throw DaemonError.notInstalled("\(executable) is missing: install the Debian package containerd")
        }
        for folder in ["root", "state", "tmp", "opt", "hosts"] {
            try FileManager.default.createDirectory(atPath: "\(directory)/\(folder)", withIntermediateDirectories: true)
        }
        let config = """
            version = 2
            root = "\(directory)/root"
            state = "\(directory)/state"
            temp = "\(directory)/tmp"
            disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", \
            "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

            [grpc]
              address = "\(socket)"

            [ttrpc]
              address = "\(socket).ttrpc"

            [debug]
              address = "\(directory)/debug.sock"

            [plugins."io.containerd.internal.v1.opt"]
              path = "\(directory)/opt"

            [plugins."io.containerd.metadata.v1.bolt"]
              content_sharing_policy = "isolated"

            """
        try config.write(toFile: configFile, atomically: true, encoding: .utf8)
        let started = try Shell.start(Self.binary, ["--config", configFile], logFile: logFile)
        process = started
        do {
            try DaemonWait.until("containerd", timeout: timeout, process: started, log: { self.log }) {
                self.ctr(["version"], timeout: 5).succeeded
            }
        } catch {
            stop()
            throw error
        }
    }

    /// Runs `ctr --address <socket> --namespace <namespace> <arguments>`, ended after `timeout` seconds.
    public func ctr(_ arguments: [String], namespace: String = "berth-test", timeout: TimeInterval = 180) -> Shell.Result {
        Shell.run(Self.ctrBinary, ["--address", socket, "--namespace", namespace] + arguments, timeout: timeout)
    }

    /// Writes `hosts/<host:port>/hosts.toml` so that ctr reaches `server` over HTTPS,
    /// verifying its certificate with the server's CA, for pull, resolve and push (without
    /// it ctr speaks plain HTTP to any loopback registry). Returns the directory to pass
    /// as `--hosts-dir`.
    public func hostsDirectory(for server: RegistryServer) throws -> String {
        try hostsDirectory(baseURL: server.baseURL, caFile: "\(server.certDirectory)/ca.crt")
    }

    /// The same for any HTTPS registry at `baseURL` (`https://host:port`, e.g. a cluster's
    /// load balancer) whose certificate `caFile` verifies.
    public func hostsDirectory(baseURL: String, caFile: String) throws -> String {
        let hosts = "\(directory)/hosts"
        let host = baseURL.hasPrefix("https://") ? String(baseURL.dropFirst("https://".count)) : baseURL
        try FileManager.default.createDirectory(atPath: "\(hosts)/\(host)", withIntermediateDirectories: true)
        let toml = """
            server = "\(baseURL)"

            [host."\(baseURL)"]
              capabilities = ["pull", "resolve", "push"]
              ca = "\(caFile)"

            """
        try toml.write(toFile: "\(hosts)/\(host)/hosts.toml", atomically: true, encoding: .utf8)
        return hosts
    }

    /// The image digest `ctr images ls` shows for `reference` in `namespace`, if any.
    public func imageDigest(_ reference: String, namespace: String) -> String? {
        let listing = ctr(["images", "ls"], namespace: namespace, timeout: 30)
        for line in listing.stdout.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.count >= 3, fields[0] == reference { return String(fields[2]) }
        }
        return nil
    }

    /// The digests of every blob in `namespace`'s view of the content store.
    public func contentDigests(namespace: String) -> Set<String> {
        let listing = ctr(["content", "ls", "--quiet"], namespace: namespace, timeout: 30)
        return Set(listing.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }

    /// containerd's log so far.
    public var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    /// Stops containerd (SIGTERM, SIGKILL after 20 s). Leaves `directory` in place.
    public func stop() {
        if let process { Shell.stop(process) }
        process = nil
    }
}

/// Why a test daemon could not be used.
public enum DaemonError: Error, CustomStringConvertible {
    case notInstalled(String)
    case didNotStart(String)

    public var description: String {
        switch self {
        case .notInstalled(let text): text
        case .didNotStart(let text): text
        }
    }
}

enum DaemonWait {
    /// Polls `ready` every 100 ms until it holds; throws with the daemon's log when the
    /// daemon exits first or `timeout` seconds pass.
    static func until(_ name: String, timeout: TimeInterval, process: ChildProcess, log: () -> String,
                      ready: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if ready() { return }
            if !process.isRunning {
                throw DaemonError.didNotStart("\(name) exited with status \(process.terminationStatus) before it was ready; its log:\n\(log())")
            }
            usleep(100_000)
        }
        throw DaemonError.didNotStart("\(name) was not ready after \(Int(timeout)) s; its log:\n\(log())")
    }
}
