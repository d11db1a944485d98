import Foundation
import Testing
import IntegrationSupport
import TestSupport

/// Byte quotas (`quota`) through real nginx and real worker processes: racing pushes from
/// many curl processes through two workers never take a rule past its limit, a skopeo push
/// over the quota is refused with 403 DENIED and the figures and stores nothing, a
/// cross-repository mount inside the rule counts once, and `berth quota` and `berth scrub`
/// agree with the disk.
@Suite(.serialized) struct QuotaEnforcementTests {
    /// Bytes of the distinct blobs the repositories under `store/<namespace>/` hold.
    static func bytesOnDisk(_ store: String, namespace: String) -> (bytes: Int, blobs: Int) {
        var seen: [String: Int] = [:]
        let root = "\(store)/\(namespace)"
        guard let walk = FileManager.default.enumerator(atPath: root) else { return (0, 0) }
        for case let path as String in walk where path.contains("/blobs/sha256/") {
            let full = "\(root)/\(path)"
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: full),
                  attributes[.type] as? FileAttributeType == .typeRegular else { continue }
            seen[(path as NSString).lastPathComponent] = (attributes[.size] as? Int) ?? 0
        }
        return (seen.values.reduce(0, +), seen.count)
    }

    static func berth(_ arguments: [String], _ server: RegistryServer, quota: String) -> Shell.Result {
        Shell.run(RegistryServer.binary, arguments + ["--store", server.store], environment: ["BERTH_QUOTA": quota])
    }

    @Test func racingCurlPushesThroughTwoWorkersNeverPassTheQuota() throws {
        let quota = "team/** 1MB"
        let server = try RegistryServer(workerEnvironment: ["BERTH_QUOTA": quota], listening: .inheritedOnStandardInput, workerCount: 2)
        defer { server.stop() }
        let base = server.baseURL
        let contenders = 12, size = 300_000
        var files: [String] = [], digests: [String] = []
        for index in 0..<contenders {
            var random = SeededBytes(seed: UInt64(500 + index))
            let bytes = Data(random.next(size))
            let file = "\(server.directory.path)/blob-\(index)"
            _ = FileManager.default.createFile(atPath: file, contents: bytes)
            files.append(file)
            digests.append(sha256(bytes))
        }
        let blobs = files, names = digests
        let outcomes = Outcomes()
        // Bodies go over HTTP/1.1: a refusal answers before the body is read (that is the
        // point), and curl 7.88 over HTTP/2 can lose such an early answer's body when the
        // stream is reset (curl issues 15316, 22984); Go clients (skopeo below) read it.
        let early = ["--http1.1"]
        DispatchQueue.concurrentPerform(iterations: contenders) { index in
            let repository = "team/app\(index % 3)"
            let refused: (RegistryServer.Response) -> Void = { outcomes.record(index, $0.status, $0.errorCode, $0.text) }
            if index % 3 == 0 {
                // Monolithic: POST ?digest= with the body.
                let answer = server.curl(early + ["-X", "POST", "-H", "Content-Type: application/octet-stream", "--data-binary", "@\(blobs[index])",
                                          "\(base)/v2/\(repository)/blobs/uploads/?digest=\(names[index])"])
                return outcomes.record(index, answer.status, answer.errorCode, answer.text)
            }
            let start = server.curl(["-X", "POST", "\(base)/v2/\(repository)/blobs/uploads/"])
            guard start.status == 202, let location = start.header("Location") else { return refused(start) }
            // A PATCH with Content-Length, or streamed chunked (docker's way).
            let framing = index % 3 == 1 ? ["-H", "Content-Type: application/octet-stream"] : ["-H", "Transfer-Encoding: chunked"]
            let patch = server.curl(early + ["-X", "PATCH"] + framing + ["--data-binary", "@\(blobs[index])", "\(base)\(location)"])
            guard patch.status == 202, let next = patch.header("Location") else { return refused(patch) }
            let separator = next.contains("?") ? "&" : "?"
            let put = server.curl(["-X", "PUT", "\(base)\(next)\(separator)digest=\(names[index])"])
            outcomes.record(index, put.status, put.errorCode, put.text)
        }
        let answers = outcomes.all
        let accepted = answers.filter { $0.value.status == 201 }.count
        let onDisk = Self.bytesOnDisk(server.store, namespace: "team")
        let overshoot = max(0, onDisk.bytes - 1_000_000)
        print("quota overshoot: \(overshoot) bytes (\(accepted) of \(contenders) pushes of \(size) bytes accepted under \(quota); \(onDisk.bytes) bytes on disk)")
        #expect(accepted >= 1 && accepted <= 3, "\(answers)")
        #expect(onDisk.bytes == accepted * size && overshoot == 0)
        for (index, answer) in answers where answer.status != 201 {
            #expect(answer.status == 403 && answer.code == "DENIED", "\(index): \(answer)")
            #expect(answer.text.contains("quota team/** 1MB") && answer.text.contains("bytes) of 976.6 KiB (1000000 bytes)"), "\(answer.text)")
        }
        // Refused sessions were cancelled: no upload is left open.
        let sessions = (try? FileManager.default.contentsOfDirectory(atPath: "\(server.store)/_berth/uploads")) ?? []
        #expect(sessions.isEmpty, "\(sessions)")

        // A repository exists once a blob landed in it: one whose pushes were all refused does not.
        let repositories = (0..<3).filter { FileManager.default.fileExists(atPath: "\(server.store)/team/app\($0)/oci-layout") }.count
        let report = Self.berth(["quota"], server, quota: quota)
        #expect(report.succeeded, "\(report.stderr)")
        #expect(report.stdout.contains("quota team/** used=\(onDisk.bytes) limit=1000000"), "\(report.stdout)")
        #expect(report.stdout.contains("repositories=\(repositories)"), "\(report.stdout)")
        let metrics = server.curl(["\(base)/metrics"]).text
        #expect(metrics.contains("berth_quota_used_bytes{rule=\"team/**\"} \(onDisk.bytes)"), "\(metrics)")
        #expect(metrics.contains("berth_quota_limit_bytes{rule=\"team/**\"} 1000000"))
        #expect(metrics.contains("berth_quota_repositories{rule=\"team/**\"} \(repositories)"))
        #expect(metrics.contains("berth_events_pending_batches 0") && metrics.contains("berth_events_dead_batches 0"))
        let scrub = Self.berth(["scrub"], server, quota: quota)
        #expect(scrub.succeeded, "\(scrub.stdout)\(scrub.stderr)")
        #expect(scrub.stdout.contains("scrub quota team/**: used=\(onDisk.bytes) limit=1000000 drift=0"), "\(scrub.stdout)")
    }

    /// The ledger's order (recorded before the link, released after the unlink) means a
    /// SIGKILL at any instant can only leave it counting more than the disk holds; scrub
    /// then brings it back to the disk's figure.
    @Test func workersKilledDuringPushesLeaveTheLedgerNeverBelowTheDiskAndScrubReconcilesIt() throws {
        let quota = "crash/** 1GiB"
        let server = try RegistryServer(workerEnvironment: ["BERTH_QUOTA": quota], listening: .inheritedOnStandardInput, workerCount: 2)
        defer { server.stop() }
        let ledger = try CrashClient.pushWhileKilling(server, clients: 3, kills: 40)
        #expect(ledger.violations.isEmpty && !ledger.blobs.isEmpty, "\(ledger.violations) \(ledger.summary)")
        let onDisk = Self.bytesOnDisk(server.store, namespace: "crash")
        let report = Self.berth(["quota"], server, quota: quota)
        let used = report.stdout.components(separatedBy: "used=").dropFirst().first?.split(separator: " ").first.flatMap { Int($0) }
        print("quota under kills: ledger \(used ?? -1) bytes, disk \(onDisk.bytes) bytes (\(ledger.summary))")
        #expect(used.map { $0 >= onDisk.bytes } == true, "\(report.stdout) disk=\(onDisk.bytes)")
        let scrub = Self.berth(["scrub"], server, quota: quota)
        print(scrub.stdout.split(separator: "\n").filter { $0.contains("quota") }.joined(separator: "\n"))
        #expect(scrub.stdout.contains("scrub quota crash/**: used=\(onDisk.bytes) "), "\(scrub.stdout)")
        #expect(Self.berth(["quota"], server, quota: quota).stdout.contains("used=\(onDisk.bytes) "))
    }

    @Test func skopeoOverTheQuotaIsRefusedWithTheFiguresAndAMountInsideTheRuleCountsOnce() throws {
        try ClientTools.require("skopeo", debianPackage: "skopeo")
        let quota = "team/** 200KB"
        let server = try RegistryServer(workerEnvironment: ["BERTH_QUOTA": quota])
        defer { server.stop() }
        let environment = ["XDG_DATA_HOME": "\(server.directory.path)/xdg", "_CONTAINERS_ROOTLESS_UID": "1000", "HOME": server.directory.path]
        func skopeo(_ layout: String, to destination: String) -> Shell.Result {
            Shell.run("skopeo", ["copy", "--preserve-digests", "--dest-cert-dir", server.certDirectory, "oci:\(layout):v1",
                                 "docker://\(server.host)/\(destination)"], environment: environment)
        }
        let small = try ImageBuilder.build(layout: "\(server.directory.path)/small", tag: "v1", layerSizes: [50_000], seed: 11)
        let pushed = skopeo(small, to: "team/a:v1")
        #expect(pushed.succeeded, "\(pushed.stderr)")
        let afterFirst = Self.bytesOnDisk(server.store, namespace: "team")
        let first = Self.berth(["quota"], server, quota: quota)
        #expect(first.stdout.contains("used=\(afterFirst.bytes) "), "\(first.stdout)")

        // A mount into another repository of the rule: 201, and the usage does not move.
        let blobs = try FileManager.default.contentsOfDirectory(atPath: "\(server.store)/team/a/blobs/sha256")
        let layer = try #require(blobs.max { size("\(server.store)/team/a/blobs/sha256/\($0)") < size("\(server.store)/team/a/blobs/sha256/\($1)") })
        let mount = server.curl(["-X", "POST", "\(server.baseURL)/v2/team/b/blobs/uploads/?mount=sha256:\(layer)&from=team/a"])
        #expect(mount.status == 201, "\(mount.text)")
        let afterMount = Self.berth(["quota"], server, quota: quota)
        #expect(afterMount.stdout.contains("used=\(afterFirst.bytes) ") && afterMount.stdout.contains("repositories=2"), "\(afterMount.stdout)")

        // A layer bigger than the room left: refused with the figures, nothing of it stored.
        let big = try ImageBuilder.build(layout: "\(server.directory.path)/big", tag: "v1", layerSizes: [300_000], seed: 12)
        let refused = skopeo(big, to: "team/c:v1")
        #expect(!refused.succeeded)
        print("skopeo over the quota: \(refused.stderr.split(separator: "\n").last ?? "")")
        #expect(refused.stderr.contains("quota team/** 200KB exceeded") || refused.stderr.contains("quota team/** 200KB is full"),
                "\(refused.stderr)")
        #expect(refused.stderr.contains("of 195.3 KiB (200000 bytes)"), "\(refused.stderr)")
        let shared = (try? FileManager.default.contentsOfDirectory(atPath: "\(server.store)/_berth/blobs/sha256")) ?? []
        #expect(shared.allSatisfy { size("\(server.store)/_berth/blobs/sha256/\($0)") < 300_000 }, "a big blob was stored")
        let sessions = (try? FileManager.default.contentsOfDirectory(atPath: "\(server.store)/_berth/uploads")) ?? []
        #expect(sessions.isEmpty, "\(sessions)")
        #expect(server.curl(["-I", "\(server.baseURL)/v2/team/c/manifests/v1"]).status == 404)

        let scrub = Self.berth(["scrub"], server, quota: quota)
        let final = Self.bytesOnDisk(server.store, namespace: "team")
        #expect(scrub.stdout.contains("scrub quota team/**: used=\(final.bytes) limit=200000 drift=0"), "\(scrub.stdout)")

        // Usage drops when the bytes leave: a manifest delete frees its blobs at the next gc.
        let digest = try #require(server.curl(["-I", "\(server.baseURL)/v2/team/a/manifests/v1"]).header("Docker-Content-Digest"))
        #expect(server.curl(["-X", "DELETE", "\(server.baseURL)/v2/team/a/manifests/\(digest)"]).status == 202)
        let gc = Self.berth(["gc", "--grace-period", "0"], server, quota: quota)
        #expect(gc.succeeded, "\(gc.stderr)")
        let afterGC = Self.bytesOnDisk(server.store, namespace: "team")
        #expect(afterGC.bytes < final.bytes)
        #expect(gc.stdout.contains("gc quota team/**: used=\(afterGC.bytes) limit=200000"), "\(gc.stdout)")
        #expect(Self.berth(["quota"], server, quota: quota).stdout.contains("used=\(afterGC.bytes) "))
    }
}

private func size(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
}

/// Final answers of concurrent pushes, by contender.
private final class Outcomes: @unchecked Sendable {
    struct Answer: CustomStringConvertible {
        let status: Int
        let code: String?
        let text: String
        var description: String { "\(status) \(code ?? "-") \(text.prefix(300))" }
    }
    private let lock = NSLock()
    private var answers: [Int: Answer] = [:]

    func record(_ index: Int, _ status: Int, _ code: String?, _ text: String) {
        lock.withLock { answers[index] = Answer(status: status, code: code, text: text) }
    }
    var all: [Int: Answer] { lock.withLock { answers } }
}
