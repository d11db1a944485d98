import Foundation
import IntegrationSupport
import Testing

/// Tags of a real upstream (docker-registry) moving and going, seen through the mirror.
@Suite(.serialized) struct MirrorTagTests: MirrorTesting {
    @Test func aTagMovedUpstreamIsSeenAfterTagTTLAndAGoneTagIsStillServed() throws {
        let upstream = try DockerRegistryUpstream()
        defer { upstream.remove() }
        let work = upstream.directory.path
        let first = try ImageBuilder.build(layout: "\(work)/first", tag: "v1", layerSizes: [300_000], seed: 54)
        let second = try ImageBuilder.build(layout: "\(work)/second", tag: "v1", layerSizes: [300_000], seed: 55)
        let firstText = try push(first, tag: "v1", to: upstream, as: "team/app")
        let firstDigest = Shell.sha256Digest(Data(firstText.utf8))
        let ttl = 4.0
        // One worker process: a tag is current for tag_ttl in the process that checked it.
        let (server, config) = try mirror(try mirrorLines("up", of: upstream) + ["mirror.up.tag_ttl = \(Int(ttl))", "workers = 1"])
        defer { server.stop(); config.remove() }

        let checked = Date()
        let fetched = manifestThrough(server, "up/team/app", "v1")
        #expect(fetched.status == 200 && fetched.header("Docker-Content-Digest") == firstDigest)

        // The tag moves upstream. Within tag_ttl the mirror answers from its store.
        let secondText = try push(second, tag: "v1", to: upstream, as: "team/app")
        let secondDigest = Shell.sha256Digest(Data(secondText.utf8))
        #expect(secondDigest != firstDigest)
        let early = manifestThrough(server, "up/team/app", "v1")
        if Date().timeIntervalSince(checked) < ttl {
            #expect(early.status == 200 && early.header("Docker-Content-Digest") == firstDigest, "served \(early.text)")
        }
        // After it, the tag is revalidated and the new manifest fetched; both stay pullable by digest.
        let wait = ttl + 0.5 - Date().timeIntervalSince(checked)
        if wait > 0 { usleep(useconds_t(wait * 1_000_000)) }
        let moved = manifestThrough(server, "up/team/app", "v1")
        #expect(moved.status == 200 && moved.header("Docker-Content-Digest") == secondDigest && moved.text == secondText)
        #expect(manifestThrough(server, "up/team/app", firstDigest).text == firstText)
        let pull = skopeo(work, ["copy", "--src-cert-dir", server.certDirectory, "docker://\(server.host)/up/team/app:v1",
                                 "oci:\(work)/pulled:v1"])
        #expect(pull.succeeded, "\(pull.stderr)")
        #expect(skopeo(work, ["inspect", "--raw", "oci:\(work)/pulled:v1"]).stdout == secondText)

        // The tag goes upstream (its manifest deleted): the mirror keeps serving what it has.
        let delete = skopeo(work, ["delete", "--cert-dir", upstream.certDirectory, "--creds", "\(upstream.username):\(upstream.password)",
                                   "docker://\(upstream.host)/team/app:v1"])
        try #require(delete.succeeded, "\(delete.stderr)")
        let direct = Shell.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", upstream.certificate,
                                        "-u", "\(upstream.username):\(upstream.password)", "-I",
                                        "-H", "Accept: application/vnd.oci.image.manifest.v1+json",
                                        "\(upstream.baseURL)/v2/team/app/manifests/v1"])
        #expect(direct.stdout == "404", "the upstream still has the tag: \(direct.stdout)")
        usleep(useconds_t((ttl + 0.5) * 1_000_000))
        let kept = manifestThrough(server, "up/team/app", "v1")
        #expect(kept.status == 200 && kept.header("Docker-Content-Digest") == secondDigest, "\(kept.status) \(kept.text)")
        #expect(server.workerLog.contains("mirror_upstream_missing"))
        // A tag the mirror never had is the upstream's 404.
        let unknown = manifestThrough(server, "up/team/app", "v2")
        #expect(unknown.status == 404 && unknown.errorCode == "MANIFEST_UNKNOWN", "\(unknown.status) \(unknown.text)")
    }

    @Test func withKeepMissingTagsFalseATagGoneUpstreamIsDroppedAndItsNeighbourStays() throws {
        let upstream = try DockerRegistryUpstream()
        defer { upstream.remove() }
        let work = upstream.directory.path
        let gone = try ImageBuilder.build(layout: "\(work)/gone", tag: "old", layerSizes: [200_000], seed: 56)
        let kept = try ImageBuilder.build(layout: "\(work)/kept", tag: "current", layerSizes: [200_000], seed: 57)
        let goneDigest = Shell.sha256Digest(Data(try push(gone, tag: "old", to: upstream, as: "team/app").utf8))
        let keptDigest = Shell.sha256Digest(Data(try push(kept, tag: "current", to: upstream, as: "team/app").utf8))
        let ttl = 2.0
        let (server, config) = try mirror(try mirrorLines("up", of: upstream)
            + ["mirror.up.tag_ttl = \(Int(ttl))", "mirror.up.keep_missing_tags = false", "workers = 1"])
        defer { server.stop(); config.remove() }
        #expect(manifestThrough(server, "up/team/app", "old").header("Docker-Content-Digest") == goneDigest)
        #expect(manifestThrough(server, "up/team/app", "current").header("Docker-Content-Digest") == keptDigest)

        let delete = skopeo(work, ["delete", "--cert-dir", upstream.certDirectory, "--creds", "\(upstream.username):\(upstream.password)",
                                   "docker://\(upstream.host)/team/app:old"])
        try #require(delete.succeeded, "\(delete.stderr)")
        usleep(useconds_t((ttl + 0.5) * 1_000_000))
        // Revalidated after tag_ttl: the upstream's 404 drops the tag here too, and stays a 404.
        for _ in 0..<2 {
            let dropped = manifestThrough(server, "up/team/app", "old")
            #expect(dropped.status == 404 && dropped.errorCode == "MANIFEST_UNKNOWN", "\(dropped.status) \(dropped.text)")
        }
        #expect(server.workerLog.contains("mirror_upstream_missing") && server.workerLog.contains("untagged"))
        let listed = server.curl(["\(server.baseURL)/v2/up/team/app/tags/list"])
        #expect(listed.text.contains("\"current\"") && !listed.text.contains("\"old\""), "\(listed.text)")
        // The other tag, and the dropped tag's manifest by digest (until gc evicts it), still answer from the store.
        #expect(manifestThrough(server, "up/team/app", "current").header("Docker-Content-Digest") == keptDigest)
        #expect(manifestThrough(server, "up/team/app", goneDigest).status == 200)
    }
}
