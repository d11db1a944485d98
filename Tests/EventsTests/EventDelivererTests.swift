import Events
import Foundation
import Storage
import Testing
import TestSupport

/// The deliverer against real HTTP receivers (Python http.server processes): signed
/// CloudEvents in commit order, retries with backoff after failures, dead letters after
/// the last attempt, replay, and several webhooks each getting every event.
@Suite(.serialized) struct EventDelivererTests {
    struct Fixture {
        let directory = TemporaryDirectory(prefix: "berth-events")
        let store: Store

        init() {
            var options = Store.Options()
            options.recordsEvents = true
            store = Store(layout: StoreLayout(root: directory.path), options: options)
        }

        func name(_ text: String) -> RepositoryName {
            guard let name = RepositoryName(text) else { fatalError("bad test name \(text)") }
            return name
        }

        /// Pushes a config blob and a manifest naming it to `repository:tag`; its digest.
        @discardableResult
        func push(_ repository: String, _ tag: String, seed: Int) throws -> Digest {
            let config = Array("{\"seed\":\(seed)}".utf8)
            let digest = ContentHasher.digest(of: config)
            let session = try store.uploads.start(repository: name(repository))
            _ = try store.uploads.complete(session.id, repository: name(repository), digest: digest,
                                           lastChunk: BufferByteSource(config))
            let body = Array("""
                {"schemaVersion":2,"mediaType":"\(MediaType.ociManifest)","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(digest)","size":\(config.count)},"layers":[]}
                """.utf8)
            return try store.manifests.put(body, contentType: nil, reference: .tag(Tag(tag)!), repository: name(repository)).digest
        }

        func deliverer(_ urls: [String], secret: String? = nil, maximumAttempts: Int = 10) -> EventDeliverer {
            var options = EventDeliverer.Options(webhooks: urls.compactMap(Webhook.init), secret: secret.map { Array($0.utf8) })
            options.maximumAttempts = maximumAttempts
            return EventDeliverer(outbox: store.events, options: options, poster: WebhookSender(timeoutSeconds: 5))
        }

        func queuedEventIDs() throws -> [String] {
            try store.events.repositories(dead: false).flatMap { try store.events.queued($0) }.flatMap(\.batch.events).map(\.id)
        }
    }

    static func decode(_ body: String) throws -> RegistryEvent {
        try JSONDecoder().decode(RegistryEvent.self, from: Data(body.utf8))
    }

    @Test func everyEventIsPostedSignedAsACloudEventInCommitOrderAndLeavesTheQueue() throws {
        let fixture = Fixture()
        defer { fixture.directory.remove() }
        let receiver = try WebhookReceiver(secret: "s3cret")
        defer { receiver.stop() }
        try fixture.push("team/app", "v1", seed: 1)
        try fixture.push("team/app", "v1", seed: 2)
        try fixture.push("other", "latest", seed: 3)
        try fixture.store.manifests.delete(.tag(Tag("v1")!), in: fixture.name("team/app"))
        let queued = try fixture.queuedEventIDs()
        #expect(queued.count == 5)

        let report = fixture.deliverer([receiver.url], secret: "s3cret").deliverDue(now: Int(time(nil)))
        #expect(report.delivered == 5 && report.failures.isEmpty && report.problems.isEmpty, "\(report)")
        let requests = receiver.requests
        #expect(requests.count == 5)
        #expect(requests.allSatisfy { $0.signatureValid == true && $0.contentType == "application/cloudevents+json; charset=utf-8" })
        let events = try receiver.accepted.map(Self.decode)
        #expect(events.map(\.id) == queued)
        #expect(events.filter { $0.data.repository == "team/app" }.map(\.type) == [
            "org.berth.manifest.pushed", "org.berth.manifest.pushed", "org.berth.tag.moved", "org.berth.tag.deleted",
        ])
        #expect(try fixture.queuedEventIDs().isEmpty)
        // A wrong secret is visible to the receiver.
        try fixture.push("other", "latest", seed: 4)
        _ = fixture.deliverer([receiver.url], secret: "other").deliverDue(now: Int(time(nil)))
        #expect(receiver.requests.last?.signatureValid == false)
    }

    @Test func aReceiverThatFailsForAWhileGetsEverythingInOrderOnceItRecoversAfterBackoff() throws {
        let fixture = Fixture()
        defer { fixture.directory.remove() }
        let receiver = try WebhookReceiver(failFirst: 3)
        defer { receiver.stop() }
        for seed in 0..<4 { try fixture.push("app", "t\(seed % 2)", seed: seed) }
        let queued = try fixture.queuedEventIDs()
        let deliverer = fixture.deliverer([receiver.url])
        var now = 1_000_000
        var passes = 0
        while try !fixture.queuedEventIDs().isEmpty, passes < 20 {
            let before = receiver.requests.count
            let report = deliverer.deliverDue(now: now)
            passes += 1
            if let head = try fixture.store.events.queued(fixture.name("app")).first, head.batch.attempts > 0 {
                #expect(head.batch.notBefore == now + deliverer.backoff(afterAttempts: head.batch.attempts))
                #expect(head.batch.lastError?.contains("HTTP 500") == true)
                // Not due yet: nothing is sent.
                #expect(deliverer.deliverDue(now: head.batch.notBefore - 1) == EventDeliverer.Report())
                #expect(receiver.requests.count == before + 1, "one failed request holds the queue back")
                now = head.batch.notBefore
            }
            #expect(report.buried == 0)
        }
        #expect(receiver.requests.filter { $0.status == 500 }.count == 3)
        #expect(try receiver.accepted.map(Self.decode).map(\.id) == queued)
        #expect(try fixture.store.events.repositories(dead: true).isEmpty)
        #expect([1, 2, 4, 8, 300].map { deliverer.backoff(afterAttempts: $0 == 300 ? 30 : $0) } == [1, 2, 8, 128, 300])
    }

    @Test func afterTheLastAttemptABatchIsDeadTheQueueGoesOnAndReplayDeliversIt() throws {
        let fixture = Fixture()
        defer { fixture.directory.remove() }
        let receiver = try WebhookReceiver()
        defer { receiver.stop() }
        receiver.failing = true
        let deliverer = fixture.deliverer([receiver.url], maximumAttempts: 2)
        let first = try fixture.push("app", "v1", seed: 1)
        #expect(deliverer.deliverDue(now: 100).failures.count == 1)
        #expect(deliverer.deliverDue(now: 101).buried == 1)
        let dead = try fixture.store.events.queued(fixture.name("app"), dead: true)
        #expect(dead.count == 1 && dead.first?.batch.attempts == 2)
        receiver.failing = false
        let second = try fixture.push("app", "v2", seed: 2)
        #expect(deliverer.deliverDue(now: 102).delivered == 1)
        #expect(try fixture.store.events.replay() == 1)
        #expect(deliverer.deliverDue(now: 103).delivered == 1)
        let delivered = try receiver.accepted.map(Self.decode).map(\.data.digest)
        #expect(delivered == [second.description, first.description])
        #expect(try fixture.store.events.repositories(dead: true).isEmpty && fixture.queuedEventIDs().isEmpty)
    }

    @Test func eachWebhookGetsEveryEventAndAHealthyOneIsNotSentItAgainWhileAnotherRetries() throws {
        let fixture = Fixture()
        defer { fixture.directory.remove() }
        let healthy = try WebhookReceiver()
        let flaky = try WebhookReceiver(failFirst: 2)
        defer { healthy.stop(); flaky.stop() }
        try fixture.push("app", "v1", seed: 1)
        let deliverer = fixture.deliverer([healthy.url, flaky.url, "http://127.0.0.1:\(try LoopbackPort.free())/closed"],
                                          maximumAttempts: 3)
        var now = 0
        for _ in 0..<3 {
            let report = deliverer.deliverDue(now: now)
            #expect(report.failures.contains { $0.contains("curl:") }, "the closed port fails with curl's reason: \(report)")
            now += 10
        }
        #expect(healthy.accepted.count == 1 && healthy.requests.count == 1)
        #expect(flaky.accepted.count == 1 && flaky.requests.count == 3)
        let dead = try #require(try fixture.store.events.queued(fixture.name("app"), dead: true).first)
        #expect(dead.batch.delivered.count == 2)
    }

    @Test func webhookURLsAreHTTPWithAHostAndTheirIDsHideThem() {
        #expect(Webhook("https://hooks.example.com/x?token=abc")?.id.count == 16)
        #expect(Webhook("https://hooks.example.com/x?token=abc")?.id.contains("abc") == false)
        for bad in ["ftp://x/", "https://", "hooks.example.com", "http://a b/", "file:///etc/passwd", ""] {
            #expect(Webhook(bad) == nil, "\(bad)")
        }
    }
}
