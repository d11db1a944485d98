#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A real three-node Berth cluster for integration tests, brought up by `scripts/cluster`
/// (GlusterFS volume, a FUSE mount per node, nginx + `berth serve` per node, a
/// round-robin TLS load balancer) under one fixed root, `/tmp/berth-cluster-tests`. Each
/// node (its FUSE client, nginx and workers) runs in its own network namespace
/// (`CLUSTER_NETNS=1`), reached over a veth at 127.1.N.2, so one can be cut off.
///
/// glusterd's port is fixed, so only one cluster runs at a time: `start()` first tears
/// down and wipes whatever an earlier run left under that root, then starts a fresh,
/// empty volume; a glusterd of another root holding the port makes it fail with the
/// script's message. Nothing here skips: without GlusterFS (or root) `start()` throws.
public final class GlusterCluster: @unchecked Sendable {
    public static let root = "/tmp/berth-cluster-tests"
    public static let nodeCount = 3

    /// Node n's base URL (index 0 is node 1).
    public let nodes: [String]
    /// Node n's store root: its own FUSE mount of the one volume.
    public let stores: [String]
    public let loadBalancer: String
    public let caFile: String
    /// Scratch files of the tests (bodies, headers), on local disk.
    public let scratch: TemporaryDirectory

    private static let lock = NSLock()
    nonisolated(unsafe) private static var running: GlusterCluster?

    private init(nodes: [String], stores: [String], loadBalancer: String, caFile: String) {
        self.nodes = nodes
        self.stores = stores
        self.loadBalancer = loadBalancer
        self.caFile = caFile
        scratch = TemporaryDirectory(prefix: "berth-cluster-scratch")
    }

    /// The cluster of this test process, started by the first caller (and torn down when
    /// the process exits).
    public static func shared() throws -> GlusterCluster {
        lock.lock()
        defer { lock.unlock() }
        if let running { return running }
        let cluster = try start()
        running = cluster
        atexit { GlusterCluster.tearDown() }
        return cluster
    }

    /// Runs `scripts/cluster` with this fixture's root and the binary under test (at most
    /// `timeout` seconds: a bring-up or tear-down that hangs fails the test instead).
    /// `Shell.run` leaves the daemons the script starts holding no pipe or socket of ours.
    @discardableResult
    public static func script(_ arguments: [String], timeout: TimeInterval = 600) -> ScriptResult {
        run(["/bin/bash", "\(RegistryServer.repositoryRoot)/scripts/cluster"] + arguments,
            environment: ["CLUSTER_ROOT": root, "BERTH_BIN": RegistryServer.binary, "CLUSTER_NETNS": "1"], timeout: timeout)
    }

    /// Runs `argv` (an absolute program path first) to its end.
    public static func run(_ argv: [String], environment extra: [String: String] = [:],
                           timeout: TimeInterval = 600) -> ScriptResult {
        precondition(!argv.isEmpty, "no program to run")
        return Shell.run(argv[0], Array(argv.dropFirst()), environment: extra, timeout: timeout)
    }

    private static func start() throws -> GlusterCluster {
        guard getuid() == 0 else { throw ClusterError.setup("the cluster tests need root (FUSE mounts, glusterd)") }
        for tool in ["glusterd", "glusterfs", "gluster"] where !["/usr/sbin/\(tool)", "/usr/bin/\(tool)", "/sbin/\(tool)"]
            .contains(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            throw ClusterError.setup("\(tool) is not installed: run scripts/deps (Debian glusterfs-server, glusterfs-client)")
        }
        script(["purge"])
        try? FileManager.default.removeItem(atPath: root)
        let up = script(["up", String(nodeCount)])
        guard up.succeeded else {
            throw ClusterError.setup("scripts/cluster up \(nodeCount) failed (status \(up.status)):\n\(up.stderr)\n\(up.stdout)")
        }
        let lines = up.stdout.split(separator: "\n").map(String.init)
        var nodes: [String] = [], stores: [String] = []
        var caFile = ""
        for line in lines {
            let fields = line.split(separator: " ").map(String.init)
            if fields.count == 3, fields[0].hasPrefix("node") {
                nodes.append(fields[1])
                stores.append(fields[2])
            } else if fields.count == 2, fields[0] == "ca" {
                caFile = fields[1]
            }
        }
        guard let last = lines.last, last.hasPrefix("https://"), nodes.count == nodeCount, !caFile.isEmpty else {
            throw ClusterError.setup("scripts/cluster up printed no endpoints:\n\(up.stdout)")
        }
        return GlusterCluster(nodes: nodes, stores: stores, loadBalancer: last, caFile: caFile)
    }

    /// Stops everything and wipes the root and the scratch files (the process's exit calls it).
    public static func tearDown() {
        script(["purge"])
        try? FileManager.default.removeItem(atPath: root)
        lock.lock()
        running?.scratch.remove()
        running = nil
        lock.unlock()
    }

    /// SIGKILLs node `n`'s nginx, supervisor and workers (n from 1).
    public func kill(node n: Int) throws {
        let result = Self.script(["kill", String(n)])
        guard result.succeeded else { throw ClusterError.setup("scripts/cluster kill \(n): \(result.stderr)") }
    }

    /// Silently drops every packet to node n's nginx, in its network namespace: the load
    /// balancer (and the tests) can no longer reach it; its mount stays connected.
    public func cut(node n: Int) throws {
        let result = Self.script(["cut", String(n)])
        guard result.succeeded else { throw ClusterError.setup("scripts/cluster cut \(n): \(result.stderr)") }
    }

    /// Undoes `cut(node:)`.
    public func heal(node n: Int) throws {
        let result = Self.script(["heal", String(n)])
        guard result.succeeded else { throw ClusterError.setup("scripts/cluster heal \(n): \(result.stderr)") }
    }

    /// Starts again whatever is not running (a killed node).
    public func restartMissing() throws {
        let result = Self.script(["up", String(Self.nodeCount)])
        guard result.succeeded else { throw ClusterError.setup("scripts/cluster up: \(result.stderr)") }
    }

    /// Runs a `berth` command (gc, scrub) on node n's mount.
    public func berth(_ arguments: [String], node n: Int) -> Shell.Result {
        Shell.run(RegistryServer.binary, arguments + ["--store", stores[n - 1]], timeout: 120)
    }

    /// The requests node n's workers answered so far (its `berth serve` log).
    public func loggedRequests(node n: Int) -> [RegistryServer.LoggedRequest] {
        RegistryServer.LoggedRequest.parse((try? String(contentsOfFile: "\(Self.root)/node\(n)/berth.log", encoding: .utf8)) ?? "")
    }

    /// The store's cluster-wide metric `name` (summed over every node's worker files), from node n.
    public func metric(_ name: String, node n: Int = 1) -> Double? {
        let text = curl(["\(nodes[n - 1])/metrics"]).text
        for line in text.split(separator: "\n") where line.hasPrefix("\(name) ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    /// curl against the cluster (TLS verified against its CA); the last answer's status,
    /// headers and body. Status -1 when no answer came (connection refused or reset).
    public func curl(_ arguments: [String]) -> RegistryServer.Response {
        RegistryServer.Response.curl(["--max-time", "60", "--cacert", caFile] + arguments, scratch: scratch.path)
    }

    /// Writes `bytes` to a scratch file for a request body; the caller removes it.
    public func bodyFile(_ bytes: Data) -> String {
        let path = "\(scratch.path)/body-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: path, contents: bytes)
        return path
    }

    public typealias ScriptResult = Shell.Result

    public enum ClusterError: Error, CustomStringConvertible {
        case setup(String)
        public var description: String {
            switch self { case .setup(let text): "GlusterFS cluster setup failed: \(text)" }
        }
    }
}
