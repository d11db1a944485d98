import Foundation
import IntegrationSupport
import Testing

/// The pull-through mirror with real parts: Debian's docker-registry (TLS, htpasswd) and a
/// second Berth (Docker token auth) as upstreams, Berth behind nginx as the mirror,
/// skopeo and curl as clients.
@Suite(.serialized) struct MirrorTests: MirrorTesting {
    @Test func pullsThroughByPrefixAndNamespaceThenServesTheCacheWithTheUpstreamStopped() throws {
        let upstream = try DockerRegistryUpstream()
        defer { upstream.remove() }
        let work = upstream.directory.path
        let source = try ImageBuilder.build(layout: "\(work)/source", tag: "v1", layerSizes: [3 << 20, 200_000], seed: 31)
        let push = skopeo(work, ["copy", "--dest-cert-dir", upstream.certDirectory,
                                 "--dest-creds", "\(upstream.username):\(upstream.password)",
                                 "oci:\(source):v1", "docker://\(upstream.host)/team/app:v1"])
        try #require(push.succeeded, "\(push.stderr)")
        try upstream.password.write(toFile: "\(work)/password", atomically: true, encoding: .utf8)
        // tag_ttl 0: every pull by tag asks the upstream, so a stopped one is noticed.
        let (server, config) = try mirror([
            "mirror.up.upstream = \(upstream.baseURL)", "mirror.up.username = \(upstream.username)",
            "mirror.up.password_file = \(work)/password", "mirror.up.ca_file = \(upstream.certificate)",
            "mirror.up.tag_ttl = 0",
        ])
        defer { server.stop(); config.remove() }

        let pulled = "\(work)/pulled"
        let pull = skopeo(work, ["copy", "--src-cert-dir", server.certDirectory, "docker://\(server.host)/up/team/app:v1",
                                 "oci:\(pulled):v1"])
        try #require(pull.succeeded, "\(pull.stderr)\n\(server.workerLog)")
        let sourceManifest = skopeo(work, ["inspect", "--raw", "oci:\(source):v1"]).stdout
        #expect(!sourceManifest.isEmpty && skopeo(work, ["inspect", "--raw", "oci:\(pulled):v1"]).stdout == sourceManifest)
        let image = try manifest(sourceManifest)
        for digest in [image.config.digest] + image.layers.map(\.digest) {
            let hex = String(digest.dropFirst("sha256:".count))
            let original = FileManager.default.contents(atPath: "\(source)/blobs/sha256/\(hex)")
            #expect(original != nil && original == FileManager.default.contents(atPath: "\(pulled)/blobs/sha256/\(hex)"))
            // Stored in the mirrored repository's layout as it arrived.
            #expect(original == FileManager.default.contents(atPath: "\(server.store)/up/team/app/blobs/sha256/\(hex)"),
                    "blob \(digest) is not in the mirror's store")
        }
        // The store's copy is an OCI layout other tools read.
        #expect(skopeo(work, ["inspect", "--raw", "oci:\(server.store)/up/team/app:v1"]).stdout == sourceManifest)

        // containerd's way: the upstream's name with ?ns= (the mirror's name or the upstream's host).
        let accept = "Accept: application/vnd.oci.image.manifest.v1+json"
        for ns in ["up", upstream.host] {
            let byNamespace = server.curl(["-H", accept, "\(server.baseURL)/v2/team/app/manifests/v1?ns=\(ns)"])
            #expect(byNamespace.status == 200 && byNamespace.text == sourceManifest, "ns=\(ns): \(byNamespace.status) \(byNamespace.text)")
            #expect(byNamespace.header("OCI-Namespace") == "up")
        }
        let layer = image.layers[0].digest
        let blob = server.curl(["\(server.baseURL)/v2/team/app/blobs/\(layer)?ns=up"])
        #expect(blob.status == 200 && Shell.sha256Digest(blob.body) == layer)
        #expect(!server.workerLog.contains(upstream.password), "the upstream password reached the log")
        // Fetched once: the second GET (by ?ns=) came from the store.
        let upstreamGets = upstream.log.split(separator: "\n").filter {
            $0.contains("\"GET /v2/team/app/blobs/\(layer) HTTP/") && $0.contains("\" 200 ")
        }.count
        #expect(upstreamGets == 1, "the upstream served the layer \(upstreamGets) times")
        #expect(server.workerLog.contains("mirror_fetch"))

        // Upstream gone: the stored tag, manifests and blobs still pull (stale-if-error).
        upstream.stop()
        let offline = skopeo(work, ["copy", "--src-cert-dir", server.certDirectory, "docker://\(server.host)/up/team/app:v1",
                                    "oci:\(work)/offline:v1"])
        #expect(offline.succeeded, "\(offline.stderr)")
        #expect(server.workerLog.contains("mirror_stale"))
        let head = server.curl(["-I", "\(server.baseURL)/v2/up/team/app/blobs/\(layer)"])
        #expect(head.status == 200 && head.header("Docker-Content-Digest") == layer)
        // What was never fetched is a clear error, not a hang or a 500.
        let missing = server.curl(["\(server.baseURL)/v2/up/team/other/manifests/v1"])
        #expect(missing.status == 503 && missing.errorCode == "UNAVAILABLE", "\(missing.status) \(missing.text)")
    }

    @Test func pushesMountsAndDeletesIntoAMirrorAreRefused() throws {
        let upstream = try DockerRegistryUpstream()
        defer { upstream.remove() }
        let work = upstream.directory.path
        let (server, config) = try mirror(["mirror.up.upstream = \(upstream.baseURL)", "mirror.up.ca_file = \(upstream.certificate)"])
        defer { server.stop(); config.remove() }
        let source = try ImageBuilder.build(layout: "\(work)/source", tag: "v1", layerSizes: [100_000], seed: 32)

        let push = skopeo(work, ["copy", "--dest-cert-dir", server.certDirectory, "oci:\(source):v1",
                                 "docker://\(server.host)/up/team/pushed:v1"])
        #expect(!push.succeeded)
        let post = server.curl(["-X", "POST", "\(server.baseURL)/v2/up/team/app/blobs/uploads/"])
        #expect(post.status == 403 && post.errorCode == "DENIED", "\(post.status) \(post.text)")
        let byNamespace = server.curl(["-X", "POST", "\(server.baseURL)/v2/team/app/blobs/uploads/?ns=up"])
        #expect(byNamespace.status == 403 && byNamespace.errorCode == "DENIED")
        let digest = "sha256:" + String(repeating: "ab", count: 32)
        let mount = server.curl(["-X", "POST", "\(server.baseURL)/v2/up/team/app/blobs/uploads/?mount=\(digest)&from=team/app"])
        #expect(mount.status == 403 && mount.errorCode == "DENIED")
        let delete = server.curl(["-X", "DELETE", "\(server.baseURL)/v2/up/team/app/manifests/\(digest)"])
        #expect(delete.status == 403 && delete.errorCode == "DENIED")
        // Hosted repositories beside the mirror take pushes as before.
        let hosted = skopeo(work, ["copy", "--dest-cert-dir", server.certDirectory, "oci:\(source):v1",
                                   "docker://\(server.host)/team/hosted:v1"])
        #expect(hosted.succeeded, "\(hosted.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(server.store)/up/team/pushed"))
    }

    @Test func anUpstreamSendingWrongBytesStoresNothingAndTheAnswerIsCutShort() throws {
        let upstream = try DockerRegistryUpstream()
        defer { upstream.remove() }
        let work = upstream.directory.path
        let source = try ImageBuilder.build(layout: "\(work)/source", tag: "v1", layerSizes: [2 << 20], seed: 33)
        let push = skopeo(work, ["copy", "--dest-cert-dir", upstream.certDirectory,
                                 "--dest-creds", "\(upstream.username):\(upstream.password)",
                                 "oci:\(source):v1", "docker://\(upstream.host)/team/app:v1"])
        try #require(push.succeeded, "\(push.stderr)")
        let image = try manifest(skopeo(work, ["inspect", "--raw", "oci:\(source):v1"]).stdout)
        let layer = image.layers[0]
        // The upstream's copy rots: same length, other bytes (distribution does not check on reads).
        let file = upstream.blobFile(layer.digest)
        var bytes = try #require(FileManager.default.contents(atPath: file))
        bytes[bytes.count / 2] ^= 0xff
        try bytes.write(to: URL(fileURLWithPath: file))

        try upstream.password.write(toFile: "\(work)/password", atomically: true, encoding: .utf8)
        let (server, config) = try mirror([
            "mirror.up.upstream = \(upstream.baseURL)", "mirror.up.username = \(upstream.username)",
            "mirror.up.password_file = \(work)/password", "mirror.up.ca_file = \(upstream.certificate)",
        ])
        defer { server.stop(); config.remove() }
        let url = "\(server.baseURL)/v2/up/team/app/blobs/\(layer.digest)"
        for attempt in 1...2 {
            // The headers went out before the digest could be checked: a 200 whose body is cut short.
            let answer = server.curl([url])
            #expect(answer.status == 200, "attempt \(attempt): \(answer.status) \(answer.text.prefix(300))")
            #expect(answer.body.count < layer.size,
                    "attempt \(attempt): \(answer.body.count) of \(layer.size) bytes were sent")
            #expect(Shell.sha256Digest(answer.body) != layer.digest)
        }
        let hex = String(layer.digest.dropFirst("sha256:".count))
        #expect(!FileManager.default.fileExists(atPath: "\(server.store)/up/team/app/blobs/sha256/\(hex)"))
        #expect(!FileManager.default.fileExists(atPath: "\(server.store)/_berth/blobs/sha256/\(hex)"))
        #expect(server.workerLog.contains("mirror_fetch_failed"))
        // The manifest is kept without that layer; scrub knows a mirror's blobs come on demand.
        let manifestAnswer = server.curl(["-H", "Accept: application/vnd.oci.image.manifest.v1+json",
                                          "\(server.baseURL)/v2/up/team/app/manifests/v1"])
        #expect(manifestAnswer.status == 200)
        let scrub = Shell.run(RegistryServer.binary, ["scrub", "--config", "\(config.path)/berth.conf", "--store", server.store])
        #expect(scrub.succeeded, "\(scrub.stdout)\(scrub.stderr)")
        // A digest the upstream does not have is the spec's 404.
        let unknown = server.curl(["\(server.baseURL)/v2/up/team/app/blobs/sha256:\(String(repeating: "0", count: 64))"])
        #expect(unknown.status == 404 && unknown.errorCode == "BLOB_UNKNOWN", "\(unknown.status) \(unknown.text)")
    }

    @Test func tenClientsPullingOneUncachedBlobCostOneUpstreamGet() throws {
        let upstream = try DockerRegistryUpstream()
        defer { upstream.remove() }
        let work = upstream.directory.path
        let source = try ImageBuilder.build(layout: "\(work)/source", tag: "v1", layerSizes: [24 << 20], seed: 35)
        let push = skopeo(work, ["copy", "--dest-cert-dir", upstream.certDirectory,
                                 "--dest-creds", "\(upstream.username):\(upstream.password)",
                                 "oci:\(source):v1", "docker://\(upstream.host)/team/app:v1"])
        try #require(push.succeeded, "\(push.stderr)")
        let layer = try manifest(skopeo(work, ["inspect", "--raw", "oci:\(source):v1"]).stdout).layers[0]
        try upstream.password.write(toFile: "\(work)/password", atomically: true, encoding: .utf8)
        // Two worker processes (the default): the clients land on both.
        let (server, config) = try mirror([
            "mirror.up.upstream = \(upstream.baseURL)", "mirror.up.username = \(upstream.username)",
            "mirror.up.password_file = \(work)/password", "mirror.up.ca_file = \(upstream.certificate)",
        ])
        defer { server.stop(); config.remove() }
        let url = "\(server.baseURL)/v2/up/team/app/blobs/\(layer.digest)"
        let script = (1...10).map { "curl -sS --fail --cacert \(server.certDirectory)/ca.crt -o \(work)/out-\($0) \(url) &" }
            .joined(separator: "\n") + "\nwait"
        let clients = Shell.run("/bin/bash", ["-c", script], timeout: 120)
        #expect(clients.succeeded, "\(clients.stderr)")
        for index in 1...10 {
            let body = FileManager.default.contents(atPath: "\(work)/out-\(index)") ?? Data()
            #expect(body.count == layer.size && Shell.sha256Digest(body) == layer.digest, "client \(index) got \(body.count) bytes")
        }
        let upstreamGets = upstream.log.split(separator: "\n").filter {
            $0.contains("\"GET /v2/team/app/blobs/\(layer.digest) HTTP/") && $0.contains("\" 200 ")
        }.count
        #expect(upstreamGets == 1, "the upstream served the blob \(upstreamGets) times")
        // Each worker saves its counters every second: read until the fetching one's are in.
        let fetched = "berth_mirror_fetched_bytes_total{mirror=\"up\"} \(layer.size)"
        var metrics = server.curl(["\(server.baseURL)/metrics"]).text
        for _ in 0..<30 where !metrics.contains(fetched) {
            usleep(100_000)
            metrics = server.curl(["\(server.baseURL)/metrics"]).text
        }
        #expect(metrics.contains(fetched), "\(metrics.suffix(1500))")
        #expect(metrics.contains("berth_mirror_events_total{event=\"misses\",mirror=\"up\"} 1")
                || metrics.contains("berth_mirror_events_total{mirror=\"up\",event=\"misses\"} 1"), "\(metrics.suffix(1500))")
    }

    @Test func aWorkerKilledDuringAFetchLeavesNothingVisibleAndTheNextPullCompletes() throws {
        let upstream = try DockerRegistryUpstream()
        defer { upstream.remove() }
        let work = upstream.directory.path
        let source = try ImageBuilder.build(layout: "\(work)/source", tag: "v1", layerSizes: [8 << 20], seed: 36)
        let push = skopeo(work, ["copy", "--dest-cert-dir", upstream.certDirectory,
                                 "--dest-creds", "\(upstream.username):\(upstream.password)",
                                 "oci:\(source):v1", "docker://\(upstream.host)/team/app:v1"])
        try #require(push.succeeded, "\(push.stderr)")
        let layer = try manifest(skopeo(work, ["inspect", "--raw", "oci:\(source):v1"]).stdout).layers[0]
        try upstream.password.write(toFile: "\(work)/password", atomically: true, encoding: .utf8)
        // A slow upstream (4 MiB/s): the fetch is still under way when Berth is killed.
        let relay = try ThrottlingRelay(to: upstream.port, bytesPerSecond: 4 << 20, logFile: "\(work)/relay.log")
        defer { relay.stop() }
        let (server, config) = try mirror([
            "mirror.up.upstream = https://127.0.0.1:\(relay.port)", "mirror.up.username = \(upstream.username)",
            "mirror.up.password_file = \(work)/password", "mirror.up.ca_file = \(upstream.certificate)",
        ])
        defer { server.stop(); config.remove() }
        let url = "\(server.baseURL)/v2/up/team/app/blobs/\(layer.digest)"
        let hex = String(layer.digest.dropFirst("sha256:".count))
        let first = try Shell.start("/usr/bin/curl", ["-sS", "--cacert", "\(server.certDirectory)/ca.crt", "-o", "\(work)/first", url],
                                    logFile: "\(work)/first.log")
        var started = false
        for _ in 0..<200 where !started {
            usleep(25_000)
            started = ((try? FileManager.default.attributesOfItem(atPath: "\(work)/first"))?[.size] as? Int ?? 0) > 0
        }
        #expect(started, "the first client received nothing")
        // SIGKILL every worker process (the supervisor starts new ones).
        let workers = server.supervisedWorkerIDs
        #expect(!workers.isEmpty)
        for pid in workers { kill(pid, SIGKILL) }
        first.waitUntilExit()
        let cut = FileManager.default.contents(atPath: "\(work)/first") ?? Data()
        #expect(cut.count < layer.size, "the killed fetch's client got the whole blob")
        #expect(!FileManager.default.fileExists(atPath: "\(server.store)/up/team/app/blobs/sha256/\(hex)"))
        #expect(!FileManager.default.fileExists(atPath: "\(server.store)/_berth/blobs/sha256/\(hex)"))

        // The dead fetch's lock went with its process: the next pull fetches again and completes.
        var answer = server.curl([url])
        for _ in 0..<100 where answer.status == 502 || answer.status == -1 {
            usleep(50_000)
            answer = server.curl([url])
        }
        #expect(answer.status == 200 && Shell.sha256Digest(answer.body) == layer.digest)
        #expect(FileManager.default.fileExists(atPath: "\(server.store)/up/team/app/blobs/sha256/\(hex)"))
    }

    @Test func containerdPullsThroughTheMirrorOfItsHostsTomlWithNs() throws {
        let upstream = try DockerRegistryUpstream()
        defer { upstream.remove() }
        let work = upstream.directory.path
        let source = try ImageBuilder.build(layout: "\(work)/source", tag: "v1", layerSizes: [1 << 20, 200_000], seed: 37)
        let push = skopeo(work, ["copy", "--dest-cert-dir", upstream.certDirectory,
                                 "--dest-creds", "\(upstream.username):\(upstream.password)",
                                 "oci:\(source):v1", "docker://\(upstream.host)/team/app:v1"])
        try #require(push.succeeded, "\(push.stderr)")
        try upstream.password.write(toFile: "\(work)/password", atomically: true, encoding: .utf8)
        let (server, config) = try mirror([
            "mirror.up.upstream = \(upstream.baseURL)", "mirror.up.username = \(upstream.username)",
            "mirror.up.password_file = \(work)/password", "mirror.up.ca_file = \(upstream.certificate)",
        ])
        defer { server.stop(); config.remove() }
        let containerd = try Containerd(directory: "\(work)/containerd")
        defer { containerd.stop() }
        // The upstream as the server, Berth as its mirror (pull and resolve only). ctr has no
        // credentials for the upstream, so a pull that succeeds came through the mirror.
        let hosts = "\(work)/hosts"
        try FileManager.default.createDirectory(atPath: "\(hosts)/\(upstream.host)", withIntermediateDirectories: true)
        try """
            server = "\(upstream.baseURL)"

            [host."\(server.baseURL)"]
              capabilities = ["pull", "resolve"]
              ca = "\(server.certDirectory)/ca.crt"

            """.write(toFile: "\(hosts)/\(upstream.host)/hosts.toml", atomically: true, encoding: .utf8)
        let reference = "\(upstream.host)/team/app:v1"
        let pull = containerd.ctr(["images", "pull", "--hosts-dir", hosts, "--snapshotter", "native", reference], namespace: "mirror")
        #expect(pull.succeeded, "ctr pull: \(pull.stderr)\n\(pull.stdout)\nworker:\n\(server.workerLog.suffix(3000))")
        let sourceDigest = "sha256:" + (try String(contentsOfFile: "\(source)/index.json", encoding: .utf8)
            .components(separatedBy: "sha256:").dropFirst().first?.prefix(64) ?? "")
        #expect(containerd.imageDigest(reference, namespace: "mirror") == sourceDigest)
        // containerd names the upstream in ?ns= (percent-encoded) and asks for the upstream's own name.
        let routed = server.loggedRequests.filter { $0.uri.hasSuffix("?ns=127.0.0.1%3A\(upstream.port)") }
        #expect(routed.contains { $0.uri.hasPrefix("/v2/team/app/manifests/v1?") && $0.status == 200 }, "\(server.loggedRequests)")
        #expect(routed.filter { $0.uri.contains("/blobs/") && $0.status == 200 }.count == 3, "\(server.loggedRequests)")
        #expect(FileManager.default.fileExists(atPath: "\(server.store)/up/team/app/index.json"))
    }

    @Test func theDockerEngineWithRegistryMirrorsPullsThroughTheDefaultMirror() throws {
        let upstream = try DockerRegistryUpstream()
        defer { upstream.remove() }
        let work = upstream.directory.path
        let source = try ImageBuilder.build(layout: "\(work)/source", tag: "v1", layerSizes: [500_000], seed: 38)
        // Where `docker pull berth-mirror-test:v1` looks on Docker Hub.
        let push = skopeo(work, ["copy", "--dest-cert-dir", upstream.certDirectory,
                                 "--dest-creds", "\(upstream.username):\(upstream.password)",
                                 "oci:\(source):v1", "docker://\(upstream.host)/library/berth-mirror-test:v1"])
        try #require(push.succeeded, "\(push.stderr)")
        try upstream.password.write(toFile: "\(work)/password", atomically: true, encoding: .utf8)
        let (server, config) = try mirror([
            "mirror.hub.upstream = \(upstream.baseURL)", "mirror.hub.username = \(upstream.username)",
            "mirror.hub.password_file = \(work)/password", "mirror.hub.ca_file = \(upstream.certificate)",
            "mirror_default = hub",
        ])
        defer { server.stop(); config.remove() }
        // Without a network the engine cannot fall back to Docker Hub: a pull that succeeds came through Berth.
        let engine = try DockerEngine(directory: "\(work)/docker", settings: ["registry-mirrors": [server.baseURL]])
        defer { engine.stop() }
        let pull = engine.docker(["pull", "berth-mirror-test:v1"])
        #expect(pull.succeeded, "docker pull: \(pull.stderr)\n\(pull.stdout)\nworker:\n\(server.workerLog.suffix(3000))")
        let requests = server.loggedRequests
        #expect(requests.contains { $0.uri == "/v2/library/berth-mirror-test/manifests/v1" && $0.status == 200 }, "\(requests)")
        #expect(FileManager.default.fileExists(atPath: "\(server.store)/hub/library/berth-mirror-test/index.json"))
    }

    @Test func podmanPullsThroughTheMirrorOfItsRegistriesConfByPrefix() throws {
        let upstream = try DockerRegistryUpstream()
        defer { upstream.remove() }
        let work = upstream.directory.path
        let source = try ImageBuilder.build(layout: "\(work)/source", tag: "v1", layerSizes: [400_000], seed: 39)
        let push = skopeo(work, ["copy", "--dest-cert-dir", upstream.certDirectory,
                                 "--dest-creds", "\(upstream.username):\(upstream.password)",
                                 "oci:\(source):v1", "docker://\(upstream.host)/team/app:v1"])
        try #require(push.succeeded, "\(push.stderr)")
        try upstream.password.write(toFile: "\(work)/password", atomically: true, encoding: .utf8)
        let (server, config) = try mirror([
            "mirror.up.upstream = \(upstream.baseURL)", "mirror.up.username = \(upstream.username)",
            "mirror.up.password_file = \(work)/password", "mirror.up.ca_file = \(upstream.certificate)",
        ])
        defer { server.stop(); config.remove() }
        let sandbox = try ContainerToolSandbox(path: "\(work)/podman")
        // podman has no credentials for the upstream: a pull that succeeds came through the mirror.
        try """
            unqualified-search-registries = []
            short-name-mode = "disabled"

            [[registry]]
            location = "\(upstream.host)"

            [[registry.mirror]]
            location = "\(server.host)/up"
            insecure = true

            """.write(toFile: "\(sandbox.path)/registries.conf", atomically: true, encoding: .utf8)
        let pull = sandbox.podman(["pull", "\(upstream.host)/team/app:v1"])
        #expect(pull.succeeded, "podman pull: \(pull.stderr)\n\(pull.stdout)\nworker:\n\(server.workerLog.suffix(3000))")
        let requests = server.loggedRequests
        #expect(requests.contains { $0.uri == "/v2/up/team/app/manifests/v1" && $0.status == 200 }, "\(requests)")
        #expect(FileManager.default.fileExists(atPath: "\(server.store)/up/team/app/index.json"))
    }

    @Test func aTokenAuthUpstreamIsPulledWithCredentialsAndAnonymously() throws {
        let secrets = TemporaryDirectory(prefix: "berth-mirror-secrets")
        defer { secrets.remove() }
        let upstream = try RegistryServer.authenticating(
            users: ["pusher": "pusher-pw", "reader": "reader-secret-pw"],
            policy: "pusher  **  read,write\nreader  team/**  read\nanonymous  public/**  read", secrets: secrets)
        defer { upstream.stop() }
        let work = secrets.path
        let source = try ImageBuilder.build(layout: "\(work)/source", tag: "v1", layerSizes: [1 << 20], seed: 34)
        for repository in ["team/app", "public/app"] {
            let push = skopeo(work, ["copy", "--dest-cert-dir", upstream.certDirectory, "--dest-creds", "pusher:pusher-pw",
                                     "oci:\(source):v1", "docker://\(upstream.host)/\(repository):v1"])
            try #require(push.succeeded, "\(push.stderr)")
        }
        try "reader-secret-pw\n".write(toFile: "\(work)/password", atomically: true, encoding: .utf8)
        let (server, config) = try mirror([
            "mirror.hub.upstream = \(upstream.baseURL)", "mirror.hub.username = reader",
            "mirror.hub.password_file = \(work)/password", "mirror.hub.ca_file = \(upstream.certDirectory)/ca.crt",
            "mirror.anon.upstream = \(upstream.baseURL)", "mirror.anon.ca_file = \(upstream.certDirectory)/ca.crt",
            "mirror_default = anon",
        ])
        defer { server.stop(); config.remove() }
        let sourceManifest = skopeo(work, ["inspect", "--raw", "oci:\(source):v1"]).stdout

        let credentialed = skopeo(work, ["copy", "--src-cert-dir", server.certDirectory,
                                         "docker://\(server.host)/hub/team/app:v1", "oci:\(work)/one:v1"])
        #expect(credentialed.succeeded, "\(credentialed.stderr)\n\(server.workerLog)")
        #expect(skopeo(work, ["inspect", "--raw", "oci:\(work)/one:v1"]).stdout == sourceManifest)
        // Anonymous tokens reach public/ only; mirror_default routes a name no hosted repository has.
        let anonymous = skopeo(work, ["copy", "--src-cert-dir", server.certDirectory,
                                      "docker://\(server.host)/public/app:v1", "oci:\(work)/two:v1"])
        #expect(anonymous.succeeded, "\(anonymous.stderr)\n\(server.workerLog)")
        #expect(FileManager.default.fileExists(atPath: "\(server.store)/anon/public/app/index.json"))
        let refused = server.curl(["\(server.baseURL)/v2/anon/team/app/manifests/v1"])
        #expect(refused.status == 503 && refused.errorCode == "UNAVAILABLE", "\(refused.status) \(refused.text)")
        #expect(!server.workerLog.contains("reader-secret-pw"))
    }
}
