import Foundation
import Testing
import IntegrationSupport

/// `berth serve` as shipped: a supervisor and its worker processes. A crash costs the
/// requests in flight on one worker, never the registry; a stop drains every worker.
@Suite(.serialized) struct SupervisorTests {
    /// SIGKILL one of two workers while slow chunked uploads and pulls run on both: the
    /// registry keeps answering, every request on the other worker succeeds, the dead one
    /// is replaced and counted, and the supervisor's log line names SIGKILL and exactly
    /// the requests that died, by the request id nginx logged for them and their route.
    @Test func killedWorkerCostsOnlyItsOwnRequestsAndIsReplaced() throws {
        let server = try RegistryServer(listening: .inheritedOnStandardInput)
        defer { server.stop() }
        let workers = try waitForWorkers(server, count: 2)
        let baseline = Dictionary(uniqueKeysWithValues: workers.map { ($0, sockets(of: $0)) })
        let base = server.baseURL

        let pullBlob = Data("pulled while a worker dies".utf8)
        let pullFile = "\(server.directory.path)/pull"
        _ = FileManager.default.createFile(atPath: pullFile, contents: pullBlob)
        let pullDigest = sha256(pullBlob)
        #expect(server.curl(["-X", "POST", "--data-binary", "@\(pullFile)", "\(base)/v2/sup/pull/blobs/uploads/?digest=\(pullDigest)"]).status == 201)

        // Uploads of 400 kB at 100 kB/s: each streams for about 4 s, one repository each.
        let uploads = 8
        var random = SeededBytes(seed: 31)
        var digests: [String] = []
        for index in 0..<uploads {
            let bytes = Data(random.next(400_000))
            _ = FileManager.default.createFile(atPath: "\(server.directory.path)/upload\(index)", contents: bytes)
            digests.append(sha256(bytes))
        }
        let statuses = Statuses()
        let uploading = DispatchGroup()
        for index in 0..<uploads {
            uploading.enter()
            let digest = digests[index]
            Thread.detachNewThread {
                let answer = server.curl(["--limit-rate", "100k", "-X", "POST", "-H", "Transfer-Encoding: chunked",
                                          "--data-binary", "@\(server.directory.path)/upload\(index)",
                                          "\(base)/v2/sup/u\(index)/blobs/uploads/?digest=\(digest)"])
                statuses.set("u\(index)", answer.status)
                uploading.leave()
            }
        }
        let pulling = Flag(true)
        let pulls = Statuses()
        let pullsDone = DispatchGroup()
        pullsDone.enter()
        Thread.detachNewThread {
            var count = 0
            while pulling.value {
                let got = server.curl(["\(base)/v2/sup/pull/blobs/\(pullDigest)"])
                pulls.set("pull\(count)", got.status == 200 && got.body == pullBlob ? 200 : max(got.status, 1))
                count += 1
            }
            pullsDone.leave()
        }

        // Kill a worker holding uploads while the other holds some too. On a loaded CI
        // machine the curls may take many seconds to start: wait on the condition itself,
        // for as long as an upload is still running (generous deadline), not a fixed count.
        var victim: Int32?
        var held: [Int32: Int] = [:]
        let deadline = Date().addingTimeInterval(120)
        while victim == nil, Date() < deadline {
            held = heldConnections(workers, baseline: baseline)
            if held.values.allSatisfy({ $0 >= 1 }) { victim = held.max { $0.value < $1.value }?.key }
            if victim == nil, uploading.wait(timeout: .now()) == .success { break }
        }
        let killed = try #require(victim, "the uploads never reached both workers (last held \(held), upload statuses \(statuses.all))")
        kill(killed, SIGKILL)

        #expect(poll(seconds: 10) { server.curl(["\(base)/v2/"]).status == 200 }, "the registry did not answer after the kill")
        #expect(poll(seconds: 10) {
            let now = server.supervisedWorkerIDs
            return now.count == 2 && !now.contains(killed)
        }, "no new worker replaced \(killed): \(server.supervisedWorkerIDs)")
        #expect(uploading.wait(timeout: .now() + 60) == .success, "uploads hung")
        // Pulls go on across the kill and the replacement; on a loaded machine give them
        // the time to make a handful (a count, not a timing).
        _ = poll(seconds: 30) { pulls.all.count > 5 }
        pulling.value = false
        #expect(pullsDone.wait(timeout: .now() + 30) == .success, "pulls hung")

        let death = try #require(logLines(server).first { $0["event"] as? String == "worker_died" && $0["pid"] as? String == String(killed) },
                                 "no worker_died line for \(killed):\n\(server.workerLog)")
        #expect(death["signal"] as? String == "SIGKILL")
        let lost = (death["in_flight"] as? [[String: Any]]) ?? []
        let lostRepositories = Set(lost.compactMap { $0["repository"] as? String })
        #expect(!lostRepositories.subtracting(["sup/pull"]).isEmpty, "the killed worker held no upload: \(lost)\n\(server.workerLog.split(separator: "\n").filter { !$0.contains("\"event\":\"request\"") || $0.contains("POST") }.joined(separator: "\n"))")
        for index in 0..<uploads {
            let status = statuses.value("u\(index)")
            if lostRepositories.contains("sup/u\(index)") {
                #expect(status != 201, "upload \(index) died with its worker yet was acknowledged")
            } else {
                #expect(status == 201, "upload \(index) on the surviving worker failed: \(status)")
                #expect(server.curl(["-I", "\(base)/v2/sup/u\(index)/blobs/\(digests[index])"]).status == 200)
            }
        }
        // A pull can die unlisted only if the kill fell between its accept and the first
        // line of its handler (microseconds): allow one such.
        let failedPulls = pulls.all.filter { $0.value != 200 }
        #expect(failedPulls.count <= lost.filter { $0["repository"] as? String == "sup/pull" }.count + 1, "pulls failed: \(failedPulls)")
        #expect(pulls.all.count > 5, "too few pulls ran: \(pulls.all.count)")

        // Each lost request is named by the id nginx logged for it, with its route.
        let access = try String(contentsOfFile: "\(server.directory.path)/nginx/logs/berth-access.log", encoding: .utf8)
        let nginxLines = access.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        for request in lost {
            let id = try #require(request["request_id"] as? String)
            let line = nginxLines.first { $0["request_id"] as? String == id }
            let uri = line?["uri"] as? String ?? ""
            #expect(uri.hasPrefix("/v2/\(request["repository"] as? String ?? "?")/"), "request \(id) is \(uri) in nginx's log")
            #expect(request["route"] as? String == (uri.contains("/uploads/") ? "upload_start" : "blob"), "\(request)")
            // (Not nginx's method: its JSON error page for the 502 turned it into a GET.)
            #expect(request["method"] as? String == (uri.contains("/uploads/") ? "POST" : "GET"), "\(request)")
        }

        for line in server.workerLog.split(separator: "\n") {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "not JSON: \(line)")
        }

        var restarts: Double?
        #expect(poll(seconds: 10) {
            restarts = (try? PrometheusSamples(server.curl(["\(base)/metrics"]).text))?.value("berth_worker_restarts_total", [:])
            return restarts == 1
        }, "berth_worker_restarts_total is \(String(describing: restarts))")
    }

    /// SIGTERM to the supervisor: an upload in flight completes, then every process exits.
    @Test func sigtermToTheSupervisorDrainsAnUploadThenEveryProcessExits() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let workers = try waitForWorkers(server, count: 2)
        let baseline = Dictionary(uniqueKeysWithValues: workers.map { ($0, sockets(of: $0)) })
        let bytes = Data(SeededBytes(seed: 5).nextArray(300_000))
        let file = "\(server.directory.path)/slow"
        _ = FileManager.default.createFile(atPath: file, contents: bytes)
        let digest = sha256(bytes)
        let status = Statuses()
        let done = DispatchGroup()
        done.enter()
        Thread.detachNewThread {
            let answer = server.curl(["--limit-rate", "100k", "-X", "POST", "-H", "Transfer-Encoding: chunked", "--data-binary", "@\(file)",
                                      "\(server.baseURL)/v2/drain/app/blobs/uploads/?digest=\(digest)"])
            status.set("upload", answer.status)
            done.leave()
        }
        #expect(poll(seconds: 10) { heldConnections(workers, baseline: baseline).values.contains { $0 >= 1 } },
                "the upload never reached a worker")
        let supervisor = try #require(server.supervisorProcessID)
        kill(supervisor, SIGTERM)
        #expect(done.wait(timeout: .now() + 30) == .success)
        #expect(status.value("upload") == 201, "the upload in flight was not drained\n\(server.workerLog)\n\((try? String(contentsOfFile: "\(server.directory.path)/nginx.log", encoding: .utf8)) ?? "")\n\((try? String(contentsOfFile: "\(server.directory.path)/nginx/logs/error.log", encoding: .utf8)) ?? "")")
        #expect(server.waitForExit(0, timeout: 30), "the supervisor did not exit")
        #expect(workers.allSatisfy { !RegistryServer.isAlive($0) }, "a worker outlived its supervisor")
        let events = logLines(server).compactMap { $0["event"] as? String }
        #expect(events.filter { $0 == "worker_stopped" }.count == 2, "\(events)")
        #expect(events.last == "supervisor_stopped", "\(events)")
        #expect(!events.contains("worker_died"))
    }

    /// `--workers 1` is supervised too; a worker killed again and again right after its
    /// start is restarted after a growing delay, logged, never in a tight loop.
    @Test func workerDyingRightAfterStartIsRestartedWithBackoff() throws {
        let server = try RegistryServer(workerArguments: ["--workers", "1"])
        defer { server.stop() }
        var previous: Set<Int32> = []
        for _ in 0..<4 {
            var worker: Int32?
            #expect(poll(seconds: 15) {
                worker = server.supervisedWorkerIDs.first { !previous.contains($0) }
                return worker != nil
            })
            guard let pid = worker else { break }
            previous.insert(pid)
            kill(pid, SIGKILL)
        }
        #expect(poll(seconds: 15) { server.curl(["\(server.baseURL)/v2/"]).status == 200 }, "--workers 1 was not restarted")
        let deaths = logLines(server).filter { $0["event"] as? String == "worker_died" }
        #expect(deaths.count == 4)
        #expect(deaths.allSatisfy { $0["signal"] as? String == "SIGKILL" })
        let delays = deaths.compactMap { ($0["restart_in_ms"] as? String).flatMap { Int($0) } }
        #expect(delays.count == 4 && delays.last.map { $0 >= 500 } == true && delays == delays.sorted(), "restart delays \(delays)")
        var restarts: Double?
        #expect(poll(seconds: 10) {
            restarts = (try? PrometheusSamples(server.curl(["\(server.baseURL)/metrics"]).text))?.value("berth_worker_restarts_total", [:])
            return restarts == 4
        }, "berth_worker_restarts_total is \(String(describing: restarts))")
    }

    /// A stop never shuts a socket down that systemd (here: the test) keeps for the next start.
    @Test func stopLeavesAnInheritedSocketUsableForTheNextStart() throws {
        let server = try RegistryServer(listening: .inheritedOnStandardInput)
        defer { server.stop() }
        _ = try waitForWorkers(server, count: 2)
        let supervisor = try #require(server.supervisorProcessID)
        kill(supervisor, SIGTERM)
        #expect(server.waitForExit(0, timeout: 30))
        try server.startWorker(0)
        #expect(poll(seconds: 10) { server.curl(["\(server.baseURL)/v2/"]).status == 200 }, "the socket was dead after a stop")
    }

    @Test func workersKeyComesFromFileEnvironmentAndFlag() throws {
        let scratch = TemporaryDirectory(prefix: "berth-workers")
        defer { scratch.remove() }
        let file = "\(scratch.path)/berth.conf"
        _ = FileManager.default.createFile(atPath: file, contents: Data("store = /srv/berth\nworkers = 4\n".utf8))
        let check = { (environment: [String: String]) in
            Shell.run(RegistryServer.binary, ["config", "check", "--config", file], environment: environment)
        }
        #expect(check([:]).stdout.contains("workers = 4"))
        #expect(check(["BERTH_WORKERS": "1"]).stdout.contains("workers = 1"))
        let bad = check(["BERTH_WORKERS": "many"])
        #expect(!bad.succeeded && bad.stderr.contains("workers: \"many\" is not a whole number in 0...64"), "\(bad.stderr)")
        let shipped = Shell.run(RegistryServer.binary, ["config", "check", "--config", "\(RegistryServer.repositoryRoot)/systemd/berth.conf"])
        #expect(shipped.stdout.contains("workers = 2"), "\(shipped.stdout)\(shipped.stderr)")
    }
}

/// Waits until the supervisor runs `count` workers that have logged their start.
private func waitForWorkers(_ server: RegistryServer, count: Int) throws -> [Int32] {
    var workers: [Int32] = []
    let ready = poll(seconds: 15) {
        workers = server.supervisedWorkerIDs
        let started = Set(logLines(server).filter { $0["event"] as? String == "started" }.compactMap { $0["pid"] as? String })
        return workers.count == count && workers.allSatisfy { started.contains(String($0)) }
    }
    guard ready else { throw RegistryServer.ServerError.setup("expected \(count) workers, have \(workers):\n\(server.workerLog)") }
    return workers
}

/// Sockets `pid` holds open, by inode (`socket:[123]`), the listening one on fd 0 excepted.
private func sockets(of pid: Int32) -> Set<String> {
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
    return Set(fds.filter { $0 != "0" }.compactMap { fd in
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")).flatMap { $0.hasPrefix("socket:") ? $0 : nil }
    })
}

/// Connections each worker holds both now and 300 ms later (a pull's lasts a millisecond),
/// other than the sockets in `baseline` (whatever the process inherited).
private func heldConnections(_ workers: [Int32], baseline: [Int32: Set<String>]) -> [Int32: Int] {
    let first = Dictionary(uniqueKeysWithValues: workers.map { ($0, sockets(of: $0)) })
    usleep(300_000)
    return Dictionary(uniqueKeysWithValues: workers.map { pid in
        (pid, sockets(of: pid).intersection(first[pid] ?? []).subtracting(baseline[pid] ?? []).count)
    })
}

private func logLines(_ server: RegistryServer) -> [[String: Any]] {
    server.workerLog.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
}

private final class Statuses: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String: Int] = [:]
    func set(_ key: String, _ value: Int) { lock.withLock { values[key] = value } }
    func value(_ key: String) -> Int? { lock.withLock { values[key] } }
    var all: [String: Int] { lock.withLock { values } }
}
