import Foundation
import IntegrationSupport
import Testing

/// `/metrics` per mirror: hits (blobs nginx sends after the worker found them stored,
/// manifests from the store), misses, bytes fetched, stale serves, upstream errors.
@Suite(.serialized) struct MirrorMetricsTests: MirrorTesting {
    @Test func metricsCountHitsMissesFetchedBytesStaleServesAndUpstreamErrorsPerMirror() throws {
        let upstream = try DockerRegistryUpstream()
        defer { upstream.remove() }
        let work = upstream.directory.path
        let source = try ImageBuilder.build(layout: "\(work)/source", tag: "v1", layerSizes: [1 << 20], seed: 53)
        let manifestText = try push(source, tag: "v1", to: upstream, as: "team/app")
        let image = try manifest(manifestText)
        let manifestDigest = Shell.sha256Digest(Data(manifestText.utf8))
        // One worker process: /metrics then reports every count at once. tag_ttl 0: every
        // pull by tag asks the upstream (a stopped one gives a stale serve).
        let (server, config) = try mirror(try mirrorLines("up", of: upstream) + ["mirror.up.tag_ttl = 0", "workers = 1"])
        defer { server.stop(); config.remove() }

        let pull = skopeo(work, ["copy", "--src-cert-dir", server.certDirectory, "docker://\(server.host)/up/team/app:v1",
                                 "oci:\(work)/pulled:v1"])
        try #require(pull.succeeded, "\(pull.stderr)\n\(server.workerLog.suffix(2000))")
        let afterPull = server.curl(["\(server.baseURL)/metrics"]).text
        // The manifest, the config and the layer came from the upstream, once each.
        #expect(mirrorCounter(afterPull, "misses") == 3, "\(afterPull)")
        #expect(mirrorCounter(afterPull, "fetched_bytes") == manifestText.utf8.count + image.config.size + image.layers[0].size)
        #expect(mirrorCounter(afterPull, "stale_serves") == 0 && mirrorCounter(afterPull, "upstream_errors") == 0)

        // Four hits: the manifest by digest, by tag (revalidated with a HEAD), and the layer's
        // GET and HEAD, which nginx sends from the store once the worker has found it there.
        let layer = image.layers[0].digest
        let byDigest = manifestThrough(server, "up/team/app", manifestDigest)
        #expect(byDigest.status == 200 && byDigest.text == manifestText)
        #expect(manifestThrough(server, "up/team/app", "v1").status == 200)
        let blob = server.curl(["\(server.baseURL)/v2/up/team/app/blobs/\(layer)"])
        #expect(blob.status == 200 && Shell.sha256Digest(blob.body) == layer)
        #expect(server.curl(["-I", "\(server.baseURL)/v2/up/team/app/blobs/\(layer)"]).status == 200)
        let afterHits = server.curl(["\(server.baseURL)/metrics"]).text
        #expect(mirrorCounter(afterHits, "hits") == mirrorCounter(afterPull, "hits") + 4, "\(afterHits)")
        #expect(mirrorCounter(afterHits, "misses") == 3)

        // The upstream stops: the tag is served from the store, counted as a stale serve
        // after an upstream error, not as a hit.
        upstream.stop()
        let stale = manifestThrough(server, "up/team/app", "v1")
        #expect(stale.status == 200 && stale.text == manifestText)
        let afterStale = server.curl(["\(server.baseURL)/metrics"]).text
        #expect(mirrorCounter(afterStale, "stale_serves") == 1, "\(afterStale)")
        #expect(mirrorCounter(afterStale, "upstream_errors") >= 1)
        #expect(mirrorCounter(afterStale, "hits") == mirrorCounter(afterHits, "hits"))
        #expect(mirrorCounter(afterStale, "misses") == 3)
        // The hosted namespace beside it counts nothing.
        #expect(!afterStale.contains("mirror=\"team\""))
    }
}
