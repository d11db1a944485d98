import Foundation
import Testing
import IntegrationSupport

/// Durable events through real nginx and real worker processes: pushes, tag moves and
/// deletes reach a real webhook receiver signed, a receiver that fails for a while leaves
/// a backlog and then a dead letter (`berth events` lists both) that `berth events replay`
/// delivers once it recovers, and with
/// workers SIGKILLed during pushes every acknowledged push is among the delivered events,
/// and every delivered push is in the store.
@Suite(.serialized) struct EventDeliveryTests {
    static func environment(_ receiver: WebhookReceiver, secretFile: String? = nil, maxAttempts: Int = 10) -> [String: String] {
        var environment = ["BERTH_WEBHOOK": receiver.url, "BERTH_WEBHOOK_MAX_ATTEMPTS": String(maxAttempts)]
        if let secretFile { environment["BERTH_WEBHOOK_SECRET_FILE"] = secretFile }
        return environment
    }

    /// Pushes a config blob and a manifest naming it under `tag`; the manifest's digest
    /// when the registry acknowledged it (201).
    static func push(_ server: RegistryServer, _ repository: String, _ tag: String, seed: String) -> String? {
        let config = Data("{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"\(seed)\"}".utf8)
        let configFile = "\(server.directory.path)/\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: configFile, contents: config)
        defer { try? FileManager.default.removeItem(atPath: configFile) }
        let configDigest = sha256(config)
        let blob = server.curl(["-X", "POST", "--data-binary", "@\(configFile)",
                                "\(server.baseURL)/v2/\(repository)/blobs/uploads/?digest=\(configDigest)"])
        guard blob.status == 201 else { return nil }
        let manifest = Data("""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(configDigest)","size":\(config.count)},"layers":[]}
            """.utf8)
        let file = "\(server.directory.path)/\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: file, contents: manifest)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let answer = server.curl(["-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json",
                                  "--data-binary", "@\(file)", "\(server.baseURL)/v2/\(repository)/manifests/\(tag)"])
        return answer.status == 201 ? sha256(manifest) : nil
    }

    struct Event: Decodable {
        struct Payload: Decodable {
            let repository: String
            let digest: String
            let tags: [String]?
            let tag: String?
        }
        let id: String
        let type: String
        let specversion: String
        let data: Payload
    }

    static func delivered(_ receiver: WebhookReceiver) -> [Event] {
        receiver.accepted.compactMap { try? JSONDecoder().decode(Event.self, from: Data($0.utf8)) }
    }

    /// Waits (at most `seconds`) until `done`; no assertion on how long it took.
    static func eventually(_ seconds: Double = 60, _ done: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !done() {
            if Date() > deadline { return false }
            usleep(100_000)
        }
        return true
    }

    @Test func changesReachTheWebhookSignedAndABacklogIsListedUntilTheReceiverRecovers() throws {
        let receiver = try WebhookReceiver(secret: "hook-secret")
        defer { receiver.stop() }
        let secretDirectory = TemporaryDirectory(prefix: "berth-secret")
        defer { secretDirectory.remove() }
        let secretFile = "\(secretDirectory.path)/webhook-secret"
        try "hook-secret\n".write(toFile: secretFile, atomically: true, encoding: .utf8)
        let server = try RegistryServer(workerEnvironment: Self.environment(receiver, secretFile: secretFile, maxAttempts: 2))
        defer { server.stop() }

        let first = try #require(Self.push(server, "team/app", "v1", seed: "a"))
        let second = try #require(Self.push(server, "team/app", "v1", seed: "b"))
        #expect(server.curl(["-X", "DELETE", "\(server.baseURL)/v2/team/app/manifests/\(first)"]).status == 202)
        #expect(Self.eventually { Self.delivered(receiver).count == 4 }, "\(receiver.requests.count) requests")
        let events = Self.delivered(receiver)
        #expect(events.map(\.type) == ["org.berth.manifest.pushed", "org.berth.manifest.pushed", "org.berth.tag.moved",
                                       "org.berth.manifest.deleted"])
        #expect(events.map(\.data.digest) == [first, second, second, first])
        #expect(events.allSatisfy { $0.specversion == "1.0" && $0.data.repository == "team/app" })
        #expect(receiver.requests.allSatisfy { $0.signatureValid == true })
        #expect(!server.workerLog.contains("hook-secret"), "the secret never reaches the log")

        receiver.failing = true
        let third = try #require(Self.push(server, "team/app", "v2", seed: "c"))
        #expect(Self.eventually { receiver.requests.contains { $0.status == 500 } })
        let listed = Shell.run(RegistryServer.binary, ["events", "--store", server.store])
        #expect(listed.succeeded && listed.stdout.contains("pending team/app") && listed.stdout.contains("pending_batches=1"),
                "\(listed.stdout)\(listed.stderr)")
        #expect(listed.stdout.contains("last_error=\"") && listed.stdout.contains(third), "\(listed.stdout)")
        // The second failed attempt (webhook_max_attempts = 2) makes it a dead letter.
        #expect(Self.eventually {
            Shell.run(RegistryServer.binary, ["events", "--store", server.store]).stdout.contains("dead_batches=1")
        })
        let dead = Shell.run(RegistryServer.binary, ["events", "--store", server.store])
        #expect(dead.stdout.contains("dead team/app") && dead.stdout.contains("pending_batches=0"), "\(dead.stdout)")
        let gauges = server.curl(["\(server.baseURL)/metrics"]).text
        #expect(gauges.contains("berth_events_pending_batches 0") && gauges.contains("berth_events_dead_batches 1"), "\(gauges)")
        receiver.failing = false
        let replay = Shell.run(RegistryServer.binary, ["events", "replay", "--store", server.store])
        #expect(replay.succeeded && replay.stdout.contains("batches=1"), "\(replay.stdout)\(replay.stderr)")
        #expect(Self.eventually { Self.delivered(receiver).contains { $0.data.digest == third } })
        #expect(Self.eventually(10) {
            Shell.run(RegistryServer.binary, ["events", "--store", server.store]).stdout
                .contains("pending_batches=0 pending_events=0 dead_batches=0")
        })
        #expect(Self.delivered(receiver).filter { $0.data.digest == third }.count == 1)
    }

    @Test func withWorkersKilledDuringPushesEveryAcknowledgedPushIsDeliveredAndEveryDeliveredPushHappened() throws {
        let receiver = try WebhookReceiver()
        defer { receiver.stop() }
        let server = try RegistryServer(workerEnvironment: Self.environment(receiver), listening: .inheritedOnStandardInput,
                                        workerCount: 2)
        defer { server.stop() }
        let acknowledged = Acknowledged()
        let running = Running()
        let clients = DispatchGroup()
        for client in 0..<3 {
            clients.enter()
            Thread.detachNewThread {
                var step = 0
                while running.value {
                    let tag = "c\(client)-\(step % 3)"
                    if let digest = Self.push(server, "crash/r\(client % 2)", tag, seed: "\(client)-\(step)") {
                        acknowledged.add(repository: "crash/r\(client % 2)", digest: digest)
                    }
                    step += 1
                }
                clients.leave()
            }
        }
        // At least 20 kills; on a loaded machine more, until enough pushes got through
        // between them for the check to mean something (at most 200).
        var round = 0
        while round < 20 || (acknowledged.all.count <= 10 && round < 200) {
            usleep(UInt32.random(in: 50_000...250_000))
            server.killWorker(round % 2)
            try server.startWorker(round % 2)
            round += 1
        }
        running.value = false
        clients.wait()
        let pushes = acknowledged.all
        #expect(pushes.count > 10, "too few pushes got through in \(round) kills: \(pushes.count)")
        let everyPushDelivered = Self.eventually(90) {
            let pushed = Set(Self.delivered(receiver).filter { $0.type == "org.berth.manifest.pushed" }
                .map { "\($0.data.repository)@\($0.data.digest)" })
            return pushes.allSatisfy { pushed.contains($0) }
        }
        let events = Self.delivered(receiver)
        let pushed = events.filter { $0.type == "org.berth.manifest.pushed" }
        print("events under kills (\(round) kills): \(pushes.count) acknowledged pushes, \(pushed.count) push events delivered"
              + " (\(Set(pushed.map(\.id)).count) distinct), \(receiver.requests.count) requests")
        let delivered = Set(pushed.map { "\($0.data.repository)@\($0.data.digest)" })
        #expect(everyPushDelivered, "not delivered: \(pushes.filter { !delivered.contains($0) })")
        // No event for a change that did not happen: each delivered push is in the store.
        for event in pushed {
            let answer = server.curl(["-I", "\(server.baseURL)/v2/\(event.data.repository)/manifests/\(event.data.digest)"])
            #expect(answer.status == 200, "\(event.data.repository)@\(event.data.digest) was announced but is not stored")
        }
    }
}

/// Acknowledged pushes, as `repository@digest`, from several client threads.
private final class Acknowledged: @unchecked Sendable {
    private let lock = NSLock()
    private var pushes: [String] = []
    func add(repository: String, digest: String) { lock.withLock { pushes.append("\(repository)@\(digest)") } }
    var all: [String] { lock.withLock { pushes } }
}

private final class Running: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = true
    var value: Bool {
        get { lock.withLock { flag } }
        set { lock.withLock { flag = newValue } }
    }
}
