import Foundation
import IntegrationSupport
import Testing
import TestSupport

/// Mirror fetches as durable events, with real parts: a Berth upstream, a Berth mirror
/// behind nginx with a webhook, a real receiver. A manifest or blob the mirror newly
/// stores is one `org.berth.mirror.fetched` event; serving it again from the store is none.
@Suite(.serialized) struct MirrorEventTests {
    @Test func aFetchedManifestAndBlobAreOneEventEachAndCachedPullsNone() throws {
        let upstream = try RegistryServer()
        defer { upstream.stop() }
        let manifestDigest = try #require(EventDeliveryTests.push(upstream, "team/app", "v1", seed: "mirrored"))
        let manifestText = upstream.curl(["-H", "Accept: application/vnd.oci.image.manifest.v1+json",
                                          "\(upstream.baseURL)/v2/team/app/manifests/v1"]).text
        let configDigest = try #require(manifestText.components(separatedBy: "\"digest\":\"").dropFirst().first?
            .components(separatedBy: "\"").first)

        let receiver = try WebhookReceiver()
        defer { receiver.stop() }
        let config = TemporaryDirectory(prefix: "berth-mirror-events")
        defer { config.remove() }
        try """
            mirror.up.upstream = \(upstream.baseURL)
            mirror.up.ca_file = \(upstream.certDirectory)/ca.crt
            mirror.up.tag_ttl = 3600

            """.write(toFile: "\(config.path)/berth.conf", atomically: true, encoding: .utf8)
        let mirror = try RegistryServer(workerArguments: ["--config", "\(config.path)/berth.conf"],
                                        workerEnvironment: EventDeliveryTests.environment(receiver))
        defer { mirror.stop() }

        for _ in 0..<2 {
            let manifest = mirror.curl(["-H", "Accept: application/vnd.oci.image.manifest.v1+json",
                                        "\(mirror.baseURL)/v2/up/team/app/manifests/v1"])
            #expect(manifest.status == 200 && manifest.header("Docker-Content-Digest") == manifestDigest, "\(manifest.text)")
            let blob = mirror.curl(["\(mirror.baseURL)/v2/up/team/app/blobs/\(configDigest)"])
            #expect(blob.status == 200 && sha256(blob.body) == configDigest)
        }
        let fetched = { EventDeliveryTests.delivered(receiver).filter { $0.type == "org.berth.mirror.fetched" } }
        #expect(EventDeliveryTests.eventually { fetched().count >= 2 }, "\(receiver.accepted)")
        // A later push to the mirror's hosted neighbour is delivered after anything queued before it.
        _ = EventDeliveryTests.push(mirror, "hosted/app", "v1", seed: "marker")
        #expect(EventDeliveryTests.eventually { EventDeliveryTests.delivered(receiver).contains { $0.data.repository == "hosted/app" } })
        let events = fetched()
        #expect(events.count == 2, "\(receiver.accepted)")
        #expect(events.allSatisfy { $0.data.repository == "up/team/app" })
        #expect(events.contains { $0.data.digest == manifestDigest && $0.data.tags == ["v1"] })
        #expect(events.contains { $0.data.digest == configDigest })
        #expect(!EventDeliveryTests.delivered(receiver).contains { $0.type == "org.berth.manifest.pushed" && $0.data.repository == "up/team/app" })
    }
}
