import Foundation
import IntegrationSupport
import Testing

/// `berth gc` keeping a pull-through mirror within `max_bytes`, with real parts: Debian's
/// docker-registry as the upstream, Berth behind nginx as the mirror, skopeo as the client,
/// the pull records the workers write, and the real `berth gc`.
@Suite(.serialized) struct MirrorEvictionTests {
    func skopeo(_ directory: String, _ arguments: [String]) -> Shell.Result {
        Shell.run("skopeo", arguments, environment: [
            "XDG_DATA_HOME": "\(directory)/xdg", "_CONTAINERS_ROOTLESS_UID": "1000", "HOME": directory,
        ], timeout: 180)
    }

    /// The digest the tag names in the store's layout (read from the file: a HEAD would count as a pull).
    func storedDigest(_ store: String, _ repository: String, tag: String) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(store)/\(repository)/index.json"))
        let index = try JSONDecoder().decode(StoredIndex.self, from: data)
        return try #require(index.manifests.first { $0.annotations?["org.opencontainers.image.ref.name"] == tag }?.digest)
    }

    struct StoredIndex: Decodable {
        struct Entry: Decodable {
            let digest: String
            let annotations: [String: String]?
        }
        let manifests: [Entry]
    }

    /// The latest pull time of `digest` in `repository` the workers have flushed so far.
    func recordedPull(_ store: String, _ repository: String, _ digest: String) -> Int? {
        let directory = "\(store)/_berth/pulls"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var latest: Int?
        for name in names {
            let text = (try? String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                let fields = line.split(separator: " ")
                guard fields.count == 4, fields[1] == "pull", fields[2] == repository, fields[3] == digest,
                      let time = Int(fields[0]) else { continue }
                latest = max(latest ?? time, time)
            }
        }
        return latest
    }

    func waitFor(_ what: String, _ condition: () -> Bool) throws {
        let held = poll(seconds: 30, condition)
        try #require(held, "timed out waiting for \(what)")
    }

    func upstreamBlobGets(_ upstream: DockerRegistryUpstream, _ repository: String, _ digest: String) -> Int {
        upstream.log.split(separator: "\n").filter {
            $0.contains("\"GET /v2/\(repository)/blobs/\(digest) HTTP/") && $0.contains("\" 200 ")
        }.count
    }

    @Test func gcTrimsTheMirrorToMaxBytesLeastRecentlyPulledFirstAndLeavesHostedLinksAlone() throws {
        let upstream = try DockerRegistryUpstream()
        defer { upstream.remove() }
        let work = upstream.directory.path
        let names = ["team/a", "team/b", "team/c"]
        var layers: [String: String] = [:]
        for (offset, name) in names.enumerated() {
            let source = try ImageBuilder.build(layout: "\(work)/source-\(offset)", tag: "v1", layerSizes: [1 << 20],
                                                seed: 70 + UInt64(offset))
            let push = skopeo(work, ["copy", "--dest-cert-dir", upstream.certDirectory,
                                     "--dest-creds", "\(upstream.username):\(upstream.password)",
                                     "oci:\(source):v1", "docker://\(upstream.host)/\(name):v1"])
            try #require(push.succeeded, "\(push.stderr)")
        }
        try upstream.password.write(toFile: "\(work)/password", atomically: true, encoding: .utf8)
        let config = TemporaryDirectory(prefix: "berth-eviction-config")
        defer { config.remove() }
        let configFile = "\(config.path)/berth.conf"
        // Room for one image of about 1 MiB; pull times flushed every second.
        try """
            mirror.up.upstream = \(upstream.baseURL)
            mirror.up.username = \(upstream.username)
            mirror.up.password_file = \(work)/password
            mirror.up.ca_file = \(upstream.certificate)
            mirror.up.max_bytes = 1600KiB
            pull_record_interval = 1

            """.write(toFile: configFile, atomically: true, encoding: .utf8)
        let server = try RegistryServer(workerArguments: ["--config", configFile])
        defer { server.stop() }

        func pull(_ name: String, into target: String) -> Shell.Result {
            skopeo(work, ["copy", "--src-cert-dir", server.certDirectory, "docker://\(server.host)/up/\(name):v1", "oci:\(work)/\(target):v1"])
        }
        var digests: [String: String] = [:]
        for name in names {
            let result = pull(name, into: "first-\(name.replacingOccurrences(of: "/", with: "-"))")
            try #require(result.succeeded, "\(result.stderr)\n\(server.workerLog)")
            digests[name] = try storedDigest(server.store, "up/\(name)", tag: "v1")
            let image = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath:
                "\(server.store)/up/\(name)/blobs/sha256/\(try #require(digests[name]).dropFirst(7))")))
            layers[name] = try #require(image.layers.first?.digest)
        }
        // A hosted repository links b's layer and config (a mount from the mirror) under its own manifest.
        let bManifest = try Data(contentsOf: URL(fileURLWithPath: "\(server.store)/up/team/b/blobs/sha256/\(try #require(digests["team/b"]).dropFirst(7))"))
        let bImage = try JSONDecoder().decode(Manifest.self, from: bManifest)
        for digest in [bImage.config.digest, try #require(layers["team/b"])] {
            let mount = server.curl(["-X", "POST", "\(server.baseURL)/v2/hosted/copy/blobs/uploads/?mount=\(digest)&from=up/team/b"])
            try #require(mount.status == 201, "mount \(digest): \(mount.status) \(mount.text)")
        }
        try bManifest.write(to: URL(fileURLWithPath: "\(work)/b-manifest.json"))
        let mediaType = (try JSONSerialization.jsonObject(with: bManifest) as? [String: Any])?["mediaType"] as? String
        let put = server.curl(["-X", "PUT", "-H", "Content-Type: \(mediaType ?? "application/vnd.oci.image.manifest.v1+json")",
                               "--data-binary", "@\(work)/b-manifest.json", "\(server.baseURL)/v2/hosted/copy/manifests/v1"])
        try #require(put.status == 201, "\(put.status) \(put.text)")

        for name in names {
            try waitFor("the pull record of \(name)") { recordedPull(server.store, "up/\(name)", digests[name] ?? "") != nil }
        }
        let firstPulls = names.compactMap { recordedPull(server.store, "up/\($0)", digests[$0] ?? "") }.max() ?? 0
        // a again, later: it becomes the most recently pulled.
        sleep(2)
        let again = pull("team/a", into: "again-a")
        try #require(again.succeeded, "\(again.stderr)")
        try waitFor("the second pull record of team/a") {
            (recordedPull(server.store, "up/team/a", digests["team/a"] ?? "") ?? 0) > firstPulls
        }

        let gc = Shell.run(RegistryServer.binary, ["gc", "--config", configFile, "--store", server.store, "--grace-period", "0"])
        try #require(gc.succeeded, "\(gc.stdout)\(gc.stderr)")
        #expect(gc.stdout.contains("least recently pulled"), "\(gc.stdout)")
        func mirrored(_ name: String, _ digest: String?) -> Bool {
            FileManager.default.fileExists(atPath: "\(server.store)/up/\(name)/blobs/sha256/\(digest?.dropFirst(7) ?? "")")
        }
        #expect(mirrored("team/a", layers["team/a"]), "the most recently pulled image stays: \(gc.stdout)")
        #expect(!mirrored("team/b", layers["team/b"]) && !mirrored("team/c", layers["team/c"]), "\(gc.stdout)")
        #expect(!gc.stdout.contains("up/team/a@"), "\(gc.stdout)")
        // The hosted repository's links of b's blobs survive, and so does its image.
        #expect(FileManager.default.fileExists(atPath: "\(server.store)/hosted/copy/blobs/sha256/\(layers["team/b"]?.dropFirst(7) ?? "")"))
        let hosted = skopeo(work, ["copy", "--src-cert-dir", server.certDirectory, "docker://\(server.host)/hosted/copy:v1",
                                   "oci:\(work)/hosted:v1"])
        #expect(hosted.succeeded, "\(hosted.stderr)")

        // a still pulls from the store: no new upstream GET of its layer.
        let aGets = upstreamBlobGets(upstream, "team/a", layers["team/a"] ?? "")
        let cached = pull("team/a", into: "cached-a")
        #expect(cached.succeeded, "\(cached.stderr)")
        #expect(upstreamBlobGets(upstream, "team/a", layers["team/a"] ?? "") == aGets, "a was fetched again")
        // c was evicted: it pulls through again.
        let cGets = upstreamBlobGets(upstream, "team/c", layers["team/c"] ?? "")
        let refetched = pull("team/c", into: "refetched-c")
        #expect(refetched.succeeded, "\(refetched.stderr)\n\(server.workerLog)")
        #expect(upstreamBlobGets(upstream, "team/c", layers["team/c"] ?? "") == cGets + 1)
        #expect(mirrored("team/c", layers["team/c"]))
        let scrub = Shell.run(RegistryServer.binary, ["scrub", "--config", configFile, "--store", server.store])
        #expect(scrub.succeeded, "\(scrub.stdout)")
    }
}
