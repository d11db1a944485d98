import Foundation
import Testing
import IntegrationSupport

/// gc in a loop while clients push, move tags and pull: every completed push stays pullable.
@Suite(.serialized) struct GarbageCollectionTests {
    @Test func gcAndScrubLoopDuringPushesAndPullsKeepEveryCompletedPush() throws {
        let server = try RegistryServer(listening: .inheritedOnStandardInput, workerCount: 2)
        defer { server.stop() }
        let running = Flag(true)
        let gcRuns = Counter()
        let gcFailures = Counter()
        let scrubRuns = Counter()
        let scrubFailures = Counter()
        let gcThread = DispatchGroup()
        gcThread.enter()
        Thread.detachNewThread {
            // A short grace period: a push here takes well under a second from its first
            // blob to its manifest, so 3 s is the same promise the default hour gives.
            while running.value {
                let run = Shell.run(RegistryServer.binary, ["gc", "--store", server.store, "--grace-period", "3", "--upload-age", "3"])
                gcRuns.increment()
                if !run.succeeded { gcFailures.increment() }
                // Scrub alongside: it must find nothing wrong in a store that is being written.
                if gcRuns.value % 5 == 0 {
                    let scrub = Shell.run(RegistryServer.binary, ["scrub", "--store", server.store])
                    scrubRuns.increment()
                    if !scrub.succeeded { scrubFailures.increment(); print("scrub under load: \(scrub.stdout)\(scrub.stderr)") }
                }
            }
            gcThread.leave()
        }
        let ledger = Ledger()
        let clients = DispatchGroup()
        for client in 0..<3 {
            clients.enter()
            Thread.detachNewThread {
                var driver = CrashClient(server: server, ledger: ledger, client: client)
                for _ in 0..<60 { driver.step() }
                clients.leave()
            }
        }
        clients.wait()
        // Let the last pushes age past the grace period under gc, unreferenced blobs go.
        sleep(4)
        running.value = false
        gcThread.wait()
        print("gc under load: \(gcRuns.value) gc runs, \(scrubRuns.value) scrub runs, \(ledger.summary)")
        #expect(gcFailures.value == 0)
        #expect(scrubFailures.value == 0)
        #expect(gcRuns.value >= 3)

        // Every tag resolves to what was last acknowledged, and its manifest pulls whole.
        for (key, allowed) in ledger.tagOutcomes {
            let head = server.curl(["-I", "\(server.baseURL)/v2/\(key.repository)/manifests/\(key.tag)"])
            let outcome = head.status == 200 ? head.header("Docker-Content-Digest") : nil
            #expect(allowed.contains(outcome), "tag \(key.repository):\(key.tag)")
            guard let digest = outcome,
                  let manifest = ledger.manifests.first(where: { $0.digest == digest && $0.repository == key.repository }) else { continue }
            let body = server.curl(["\(server.baseURL)/v2/\(key.repository)/manifests/\(digest)"]).body
            #expect(body == manifest.body)
            let text = String(decoding: body, as: UTF8.self)
            for blob in text.components(separatedBy: "\"digest\":\"").dropFirst().map({ String($0.prefix(71)) }) {
                let got = server.curl(["\(server.baseURL)/v2/\(key.repository)/blobs/\(blob)"])
                #expect(got.status == 200 && sha256(got.body) == blob, "\(key.repository)@\(blob) referenced by \(key.tag)")
            }
        }
        // And gc did its job: blobs no manifest references are gone.
        let referenced = Set(ledger.manifests.flatMap { manifest in
            String(decoding: manifest.body, as: UTF8.self).components(separatedBy: "\"digest\":\"").dropFirst().map { "\(manifest.repository)@\($0.prefix(71))" }
        })
        let loose = ledger.blobs.filter { !referenced.contains("\($0.repository)@\($0.digest)") }
        let collected = loose.filter { server.curl(["-I", "\(server.baseURL)/v2/\($0.repository)/blobs/\($0.digest)"]).status == 404 }
        #expect(!loose.isEmpty && collected.count == loose.count, "\(collected.count) of \(loose.count) unreferenced blobs collected")

        // Off a terminal (a pipe here, journald under the timers), progress is JSON log lines on
        // stderr: every progress_interval seconds (0: each update) and once when done.
        let scrub = Shell.run(RegistryServer.binary, ["scrub", "--store", server.store], environment: ["BERTH_PROGRESS_INTERVAL": "0"])
        #expect(scrub.stdout.contains("unrepaired=0"), "\(scrub.stdout)")
        let finalGC = Shell.run(RegistryServer.binary, ["gc", "--store", server.store], environment: ["BERTH_PROGRESS_INTERVAL": "0"])
        #expect(finalGC.succeeded)
        for (task, run) in [("scrub", scrub), ("gc", finalGC)] {
            let lines = lines(of: run.stderr, task: task)
            #expect(lines.count >= 2, "\(task) progress lines: \(run.stderr)")
            let last = lines.last ?? [:]
            #expect(last["done"] as? String == "true" && Int(last["items"] as? String ?? "") ?? 0 > 0, "\(last)")
            #expect(lines.allSatisfy { $0["items_per_s"] != nil && $0["bytes"] != nil && $0["elapsed_s"] != nil })
            #expect(!run.stderr.contains("\r"), "no terminal line off a terminal")
        }
        let gcTotals = lines(of: finalGC.stderr, task: "gc").last?["total_items"] as? String
        #expect(gcTotals != nil, "gc knows how many repositories it goes through")
    }

    private func lines(of stderr: String, task: String) -> [[String: Any]] {
        stderr.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }.filter { $0["event"] as? String == "progress" && $0["task"] as? String == task }
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
