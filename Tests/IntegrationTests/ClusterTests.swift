#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import IntegrationSupport

/// Three Berth nodes over one real GlusterFS volume (a FUSE mount each) behind a
/// round-robin load balancer (`scripts/cluster`): any node answers any request, and
/// nothing acknowledged is lost when requests of one push land on different nodes, when
/// nodes race on the same tags, when gc runs on one node during pushes on the others, or
/// when a node is SIGKILLed mid-push. Every test ends with `berth scrub` clean. Without
/// GlusterFS these tests fail (the fixture throws); they never skip.
@Suite(.serialized) struct ClusterTests {
    let cluster: GlusterCluster

    init() throws { cluster = try GlusterCluster.shared() }

    // MARK: Requests

    /// POST with the whole blob (monolithic upload) to `base`; the status.
    func postBlob(_ bytes: Data, _ repository: String, at base: String) -> Int {
        let file = cluster.bodyFile(bytes)
        defer { try? FileManager.default.removeItem(atPath: file) }
        return cluster.curl(["-X", "POST", "-H", "Content-Type: application/octet-stream", "--data-binary", "@\(file)",
                             "\(base)/v2/\(repository)/blobs/uploads/?digest=\(sha256(bytes))"]).status
    }

    func putManifest(_ body: String, _ repository: String, _ reference: String, at base: String) -> Int {
        let file = cluster.bodyFile(Data(body.utf8))
        defer { try? FileManager.default.removeItem(atPath: file) }
        return cluster.curl(["-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json",
                             "--data-binary", "@\(file)", "\(base)/v2/\(repository)/manifests/\(reference)"]).status
    }

    /// An image manifest naming `config` (2 bytes, `{}`) and `layer`, made distinct by `note`.
    func manifest(config: String, layer: (digest: String, size: Int), note: String, subject: (String, Int)? = nil) -> String {
        let subjectField = subject.map { ",\"subject\":{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"\($0.0)\",\"size\":\($0.1)}" } ?? ""
        return """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(config)","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(layer.digest)","size":\(layer.size)}],"annotations":{"note":"\(note)"}\(subjectField)}
            """
    }

    func tags(_ repository: String, at base: String) throws -> Set<String> {
        struct Tags: Decodable { let tags: [String]? }
        let answer = cluster.curl(["\(base)/v2/\(repository)/tags/list?n=10000"])
        guard answer.status == 200 else { return [] }
        return Set(try JSONDecoder().decode(Tags.self, from: answer.body).tags ?? [])
    }

    /// The digest `reference` resolves to, asked of `base`.
    func resolve(_ repository: String, _ reference: String, at base: String,
                 accept: String = "application/vnd.oci.image.manifest.v1+json") -> String? {
        let head = cluster.curl(["-I", "-H", "Accept: \(accept)", "\(base)/v2/\(repository)/manifests/\(reference)"])
        return head.status == 200 ? head.header("Docker-Content-Digest") : nil
    }

    /// The digest of the blob's bytes as `base` serves them, nil unless 200.
    func blobDigest(_ repository: String, _ digest: String, at base: String) -> String? {
        let answer = cluster.curl(["\(base)/v2/\(repository)/blobs/\(digest)"])
        return answer.status == 200 ? sha256(answer.body) : nil
    }

    /// Runs `request` until it answers something other than no answer or a 5xx (a node
    /// killed under it, the load balancer finding out), at most 30 times.
    func retrying(_ request: () -> Int, retries: ClusterCounters? = nil) -> Int {
        var status = -1
        for attempt in 0..<30 {
            status = request()
            if status > 0, status < 500 { return status }
            retries?.add("retries")
            usleep(UInt32(50_000 * min(attempt + 1, 6)))
        }
        return status
    }

    /// skopeo with a blob-info cache of this test process's own (clients.md).
    func skopeo(_ arguments: [String]) -> Shell.Result {
        Shell.run("skopeo", arguments, environment: [
            "XDG_DATA_HOME": "\(cluster.scratch.path)/xdg", "_CONTAINERS_ROOTLESS_UID": "1000", "HOME": cluster.scratch.path,
        ], timeout: 120)
    }

    func expectScrubClean() {
        let scrub = cluster.berth(["scrub"], node: 1)
        #expect(scrub.succeeded && scrub.stdout.contains("problems=0"), "\(scrub.stdout)\(scrub.stderr)")
    }

    /// Runs `body(0..<count)` each on its own thread (clients block on curl, so a pool the
    /// size of the cores would run them two at a time) and returns when all are done.
    func concurrently(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let done = DispatchGroup()
        for index in 0..<count {
            done.enter()
            Thread {
                body(index)
                done.leave()
            }.start()
        }
        done.wait()
    }

    // MARK: Tests

    @Test func chunkedUploadsWhosePatchesAndPutLandOnDifferentNodesAreIntact() throws {
        let nodes = cluster.nodes
        var random = SeededBytes(seed: 1401)
        for upload in 0..<4 {
            let chunks = (0..<3).map { _ in Data(random.next(300_000 + upload * 1000)) }
            let whole = chunks.reduce(Data(), +)
            let digest = sha256(whole)
            let start = cluster.curl(["-X", "POST", "\(nodes[upload % 3])/v2/cluster/chunked/blobs/uploads/"])
            #expect(start.status == 202, "\(start.text)")
            let location = try #require(start.header("Location"), "upload \(upload): no Location")
            let path = location.range(of: "/v2/").map { String(location[$0.lowerBound...]) } ?? location
            var offset = 0
            for (position, chunk) in chunks.enumerated() {
                // Each PATCH on another node than the one before; the PUT on yet another.
                let node = nodes[(upload + position + 1) % 3]
                let file = cluster.bodyFile(chunk)
                defer { try? FileManager.default.removeItem(atPath: file) }
                let separator = path.contains("?") ? "&" : "?"
                let last = position == chunks.count - 1
                let answer = last
                    ? cluster.curl(["-X", "PUT", "-H", "Content-Type: application/octet-stream", "--data-binary", "@\(file)",
                                    "\(nodes[(upload + position + 2) % 3])\(path)\(separator)digest=\(digest)"])
                    : cluster.curl(["-X", "PATCH", "-H", "Content-Type: application/octet-stream",
                                    "-H", "Content-Range: \(offset)-\(offset + chunk.count - 1)", "--data-binary", "@\(file)",
                                    "\(node)\(path)"])
                #expect(answer.status == (last ? 201 : 202), "upload \(upload) chunk \(position) on \(node): \(answer.status) \(answer.text)")
                offset += chunk.count
            }
            for node in nodes {
                #expect(blobDigest("cluster/chunked", digest, at: node) == digest, "upload \(upload) read back from \(node)")
            }
        }
        expectScrubClean()
    }

    @Test func theSameTagsPushedFromAllNodesAtOnceLoseNothing() throws {
        let nodes = cluster.nodes
        let repository = "cluster/race"
        let config = Data("{}".utf8)
        let layer = Data(SeededBytes(seed: 1402).nextArray(40_000))
        for node in nodes { #expect(postBlob(config, repository, at: node) == 201 && postBlob(layer, repository, at: node) == 201) }
        let subject = manifest(config: sha256(config), layer: (sha256(layer), layer.count), note: "subject")
        #expect(putManifest(subject, repository, "subject", at: nodes[0]) == 201)
        let subjectDigest = sha256(Data(subject.utf8))

        let clients = 6, rounds = 4
        let counters = ClusterCounters()
        let writersDone = ClusterFlag()
        let staleBefore = cluster.metric("berth_stale_handle_retries_total") ?? 0
        // Three readers, one per node, ask for a tag nobody moves while every commit
        // replaces the index by rename on another mount: each must answer it, every time.
        concurrently(clients + 3) { client in
            if client >= clients {
                let node = nodes[client - clients]
                while !writersDone.isSet {
                    let found = resolve(repository, "subject", at: node)
                    if found == subjectDigest { counters.add("reads") } else { counters.fail("read of subject on \(node): \(found ?? "no answer")") }
                }
                return
            }
            defer { if counters.add("writers-done") == clients { writersDone.set() } }
            let node = nodes[client % 3]
            for round in 0..<rounds {
                let body = manifest(config: sha256(config), layer: (sha256(layer), layer.count), note: "c\(client)-r\(round)",
                                    subject: (subjectDigest, subject.utf8.count))
                let digest = sha256(Data(body.utf8))
                // A tag of its own, and the tags every client fights over.
                for tag in ["c\(client)-r\(round)", "latest", "round-\(round)"] {
                    let status = putManifest(body, repository, tag, at: node)
                    counters.record(tag: tag, digest: digest, acknowledged: status == 201, status: status)
                }
            }
        }
        #expect(counters.failures.isEmpty, "\(counters.failures)")
        let expected = Set((0..<clients).flatMap { c in (0..<rounds).map { "c\(c)-r\($0)" } }
                           + ["latest", "subject"] + (0..<rounds).map { "round-\($0)" })
        for node in nodes {
            let listed = try tags(repository, at: node)
            #expect(listed == expected, "\(node) lost tags \(expected.subtracting(listed))")
        }
        // Every client's own tag names what it pushed; contended tags name one of the pushes.
        var readBack = 0
        for (tag, digests) in counters.acknowledged {
            let found = resolve(repository, tag, at: nodes[readBack % 3])
            #expect(found.map(digests.contains) == true, "\(tag) resolves to \(found ?? "nothing")")
            if found.map(digests.contains) == true { readBack += 1 }
        }
        #expect(readBack == counters.acknowledged.count)
        struct Referrers: Decodable { struct Entry: Decodable { let digest: String }; let manifests: [Entry] }
        let referrers = try JSONDecoder().decode(
            Referrers.self, from: cluster.curl(["\(nodes[2])/v2/\(repository)/referrers/\(subjectDigest)"]).body)
        #expect(Set(referrers.manifests.map(\.digest)) == counters.allDigests, "referrers attached from every node")
        let staleAfter = cluster.metric("berth_stale_handle_retries_total") ?? 0
        print("cluster race: \(counters.pushes) manifest pushes acknowledged, \(readBack) tags read back of "
              + "\(counters.acknowledged.count), \(counters.count("reads")) reads during the race all right, "
              + "\(Int(staleAfter - staleBefore)) ESTALE retries in the store")
        expectScrubClean()
    }

    @Test func crossRepositoryMountsWorkAcrossNodes() throws {
        let nodes = cluster.nodes
        let layer = Data(SeededBytes(seed: 1403).nextArray(120_000))
        let config = Data("{}".utf8)
        let digest = sha256(layer)
        #expect(postBlob(layer, "cluster/mount-a", at: nodes[0]) == 201)
        #expect(postBlob(config, "cluster/mount-a", at: nodes[0]) == 201)
        // a → b on node 2, b → c on node 3 (each mount reads what the node before wrote).
        for (step, (from, to)) in [("a", "b"), ("b", "c"), ("c", "d")].enumerated() {
            let node = nodes[(step + 1) % 3]
            for blob in [digest, sha256(config)] {
                let mount = cluster.curl(["-X", "POST", "\(node)/v2/cluster/mount-\(to)/blobs/uploads/?mount=\(blob)&from=cluster/mount-\(from)"])
                #expect(mount.status == 201, "mount \(from) → \(to) on \(node): \(mount.status) \(mount.text)")
            }
            let body = manifest(config: sha256(config), layer: (digest, layer.count), note: to)
            #expect(putManifest(body, "cluster/mount-\(to)", "v1", at: nodes[(step + 2) % 3]) == 201)
        }
        for name in ["b", "c", "d"] {
            for node in nodes {
                #expect(blobDigest("cluster/mount-\(name)", digest, at: node) == digest, "mount-\(name) from \(node)")
                #expect(resolve("cluster/mount-\(name)", "v1", at: node) != nil)
            }
        }
        // One shared copy: every repository's link is the same inode.
        let hex = String(digest.dropFirst("sha256:".count))
        let inodes = ["a", "b", "c", "d"].map { name -> UInt64? in
            var info = stat()
            guard stat("\(cluster.stores[2])/cluster/mount-\(name)/blobs/sha256/\(hex)", &info) == 0 else { return nil }
            return UInt64(info.st_ino)
        }
        #expect(inodes.allSatisfy { $0 != nil } && Set(inodes).count == 1, "\(inodes)")
        expectScrubClean()
    }

    @Test func gcOnOneNodeWhilePushesRunOnTheOthersRemovesOnlyGarbage() throws {
        let nodes = cluster.nodes
        // Garbage: a blob no manifest names, older than gc's grace period once gc runs.
        // The grace period is what keeps a push's blobs between their upload and its
        // manifest; 5 s is far above that gap here (README: it must exceed the longest push).
        let grace = 5
        // Larger than the socket buffers between nginx and curl hold, so nginx still reads
        // the file when it is removed.
        let garbage = Data(SeededBytes(seed: 1404).nextArray(32 << 20))
        #expect(postBlob(garbage, "cluster/gc-garbage", at: nodes[0]) == 201)
        let garbageHex = String(sha256(garbage).dropFirst("sha256:".count))
        let garbageStored = Date()
        // Node 3's nginx is sending the garbage, slowly, when node 1's gc removes it: the
        // transfer must still complete, byte-exact.
        let download = "\(cluster.scratch.path)/garbage-download"
        let downloading = DispatchGroup()
        let downloadFinished = ClusterFlag()
        downloading.enter()
        Thread {
            defer { downloading.leave() }
            _ = Shell.run("curl", ["-sS", "--cacert", cluster.caFile, "--limit-rate", "2m", "-o", download,
                                   "\(nodes[2])/v2/cluster/gc-garbage/blobs/\(sha256(garbage))"], timeout: 120)
            downloadFinished.set()
        }.start()
        for _ in 0..<400 where (FileSystemSize.of(download) ?? 0) < 50_000 { usleep(50_000) }
        #expect((FileSystemSize.of(download) ?? 0) >= 50_000, "the download of the garbage started")

        let counters = ClusterCounters()
        let pushing = DispatchGroup()
        let stop = ClusterFlag()
        for client in 0..<4 {
            pushing.enter()
            Thread {
                defer { pushing.leave() }
                let node = nodes[1 + client % 2]
                var random = SeededBytes(seed: 14040 + UInt64(client))
                var round = 0
                while !stop.isSet || round < 3 {
                    let layer = Data(random.next(20_000 + round))
                    let config = Data("{\"c\":\(client),\"r\":\(round)}".utf8)
                    let repository = "cluster/gc-push\(client)"
                    let uploaded = postBlob(layer, repository, at: node) == 201 && postBlob(config, repository, at: node) == 201
                    let body = """
                        {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(sha256(config))","size":\(config.count)},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(sha256(layer))","size":\(layer.count)}]}
                        """
                    let status = uploaded ? putManifest(body, repository, "r\(round)", at: node) : -2
                    counters.record(tag: "\(repository):r\(round)", digest: sha256(Data(body.utf8)), acknowledged: status == 201,
                                    status: status, blobs: [sha256(layer), sha256(config)])
                    round += 1
                }
            }.start()
        }
        // Pushes run on nodes 2 and 3 meanwhile.
        while Date().timeIntervalSince(garbageStored) < Double(grace + 1) { usleep(200_000) }
        var gcRuns = 0, garbageRemoved = false, gcSummary = "", downloadedWhenRemoved = 0
        for _ in 0..<2 {
            let gc = cluster.berth(["gc", "--grace-period", String(grace)], node: 1)
            #expect(gc.succeeded, "\(gc.stdout)\(gc.stderr)")
            if gc.stdout.contains(garbageHex), !garbageRemoved {
                garbageRemoved = true
                downloadedWhenRemoved = downloadFinished.isSet ? garbage.count : FileSystemSize.of(download) ?? 0
            }
            gcSummary = gc.stdout.split(separator: "\n").filter { $0.hasPrefix("gc") }.joined(separator: "; ")
            gcRuns += 1
        }
        stop.set()
        pushing.wait()
        downloading.wait()
        #expect(garbageRemoved, "gc removed the old unreferenced blob")
        let downloaded = FileManager.default.contents(atPath: download)
        #expect(downloaded.map(sha256) == sha256(garbage), "the transfer under way when gc removed the blob completed intact")
        #expect(counters.failures.isEmpty, "\(counters.failures)")
        #expect(blobDigest("cluster/gc-garbage", sha256(garbage), at: nodes[2]) == nil)
        var readBack = 0
        for (key, digests) in counters.acknowledged {
            let parts = key.split(separator: ":")
            let repository = String(parts[0]), tag = String(parts[1])
            guard let found = resolve(repository, tag, at: nodes[0]), digests.contains(found) else {
                Issue.record("\(key) lost after gc")
                continue
            }
            for blob in counters.blobs[key] ?? [] {
                #expect(blobDigest(repository, blob, at: nodes[readBack % 3]) == blob, "\(key) blob \(blob)")
            }
            readBack += 1
        }
        print("cluster gc: \(gcRuns) gc runs on node 1, \(counters.pushes) pushes acknowledged on nodes 2-3, \(readBack) read back; "
              + "the garbage was removed with \(downloadedWhenRemoved) of \(garbage.count) bytes sent; last gc: \(gcSummary)")
        #expect(readBack == counters.acknowledged.count)
        expectScrubClean()
    }

    @Test func nodesSIGKILLedMidPushLoseNoAcknowledgedPush() throws {
        let lb = cluster.loadBalancer
        let counters = ClusterCounters()
        let clients = 6, rounds = 8
        let staleBefore = cluster.metric("berth_stale_handle_retries_total") ?? 0
        concurrently(clients + 1) { client in
            if client == clients {
                // Once pushes are under way, node 2 dies with its requests in flight, later
                // node 3 too (node 1 alone answers), and both are started again (as systemd
                // would) while the pushes go on.
                for (node, after) in [(2, 6), (3, 16)] {
                    for _ in 0..<1000 where counters.pushes < after { usleep(20_000) }
                    do {
                        try cluster.kill(node: node)
                        counters.add(counters.pushes < clients * rounds ? "kills mid-push" : "kills after the pushes")
                    } catch {
                        counters.fail("kill of node \(node): \(error)")
                    }
                }
                do { try cluster.restartMissing() } catch { counters.fail("restart: \(error)") }
                return
            }
            var random = SeededBytes(seed: 14050 + UInt64(client))
            let repository = "cluster/kill\(client % 2)"
            for round in 0..<rounds {
                let layer = Data(random.next(200_000))
                let config = Data("{\"c\":\(client),\"r\":\(round)}".utf8)
                let blobs = [layer, config].map { blob in
                    retrying({ postBlob(blob, repository, at: lb) }, retries: counters)
                }
                let body = """
                    {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(sha256(config))","size":\(config.count)},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(sha256(layer))","size":\(layer.count)}]}
                    """
                let status = blobs.allSatisfy({ $0 == 201 })
                    ? retrying({ putManifest(body, repository, "c\(client)-r\(round)", at: lb) }, retries: counters) : -2
                counters.record(tag: "\(repository):c\(client)-r\(round)", digest: sha256(Data(body.utf8)),
                                acknowledged: status == 201, status: status, blobs: [sha256(layer), sha256(config)])
            }
        }
        #expect(counters.count("kills mid-push") + counters.count("kills after the pushes") == 2)
        #expect(counters.count("kills mid-push") >= 1, "the first kill came while pushes ran")
        #expect(counters.failures.isEmpty, "\(counters.failures)")
        #expect(counters.acknowledged.count == clients * rounds)
        // Every node up, then everything read back from every node.
        try cluster.restartMissing()
        var readBack = 0
        for (key, digests) in counters.acknowledged {
            let parts = key.split(separator: ":")
            let repository = String(parts[0]), tag = String(parts[1])
            var intact = true
            for node in cluster.nodes {
                intact = intact && resolve(repository, tag, at: node).map(digests.contains) == true
            }
            for blob in counters.blobs[key] ?? [] {
                intact = intact && blobDigest(repository, blob, at: cluster.nodes[readBack % 3]) == blob
            }
            #expect(intact, "\(key) lost or damaged")
            if intact { readBack += 1 }
        }
        let staleAfter = cluster.metric("berth_stale_handle_retries_total") ?? 0
        print("cluster kill: \(counters.count("kills mid-push")) nodes SIGKILLed mid-push and restarted; \(counters.acknowledged.count) pushes acknowledged, "
              + "\(readBack) read back intact, \(counters.count("retries")) client retries, "
              + "\(Int(staleAfter - staleBefore)) ESTALE retries in the store (cluster-wide: \(Int(staleAfter)))")
        #expect(readBack == counters.acknowledged.count)
        expectScrubClean()
    }

    @Test func aGlusterFSMountWithKernelCachesIsWarnedAboutAtStartupAndTheStrictOnesAreNot() throws {
        for n in 1...GlusterCluster.nodeCount {
            let log = (try? String(contentsOfFile: "\(GlusterCluster.root)/node\(n)/berth.log", encoding: .utf8)) ?? ""
            #expect(log.contains("\"store_checked\"") && !log.contains("store_mount_warning"), "node \(n): \(log.prefix(2000))")
        }
        // A fourth mount of the same volume as mount.glusterfs makes it by default.
        let loose = "\(GlusterCluster.root)/mnt/loose"
        try FileManager.default.createDirectory(atPath: loose, withIntermediateDirectories: true)
        let mount = GlusterCluster.run(["/usr/sbin/glusterfs", "--process-name", "fuse", "--volfile-server=127.0.0.2",
                                        "--volfile-id=berth", "--log-file=\(GlusterCluster.root)/log/loose.log", loose])
        #expect(mount.succeeded, "\(mount.stderr)")
        defer { _ = GlusterCluster.run(["/usr/bin/umount", loose]) }
        var info = stat()
        for _ in 0..<100 where !(stat(loose, &info) == 0 && info.st_ino == 1) { usleep(100_000) }
        #expect(info.st_ino == 1, "the loose mount came up")
        // It serves (a warning, not a refusal) and says what is missing; stopped after a moment.
        let serve = Shell.run(RegistryServer.binary, ["serve", "--workers", "0", "--store", loose,
                                                      "--socket", "\(cluster.scratch.path)/loose.sock"], timeout: 3)
        #expect(serve.stderr.contains("store_mount_warning") && serve.stderr.contains("--fopen-keep-cache=off"), "\(serve.stderr)")
        #expect(serve.stderr.contains("\"started\""), "\(serve.stderr)")
    }

    @Test func skopeoPushesAndPullsThroughTheLoadBalancer() throws {
        let certs = "\(cluster.scratch.path)/certs"
        try? FileManager.default.createDirectory(atPath: certs, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: "\(certs)/ca.crt")
        try FileManager.default.copyItem(atPath: cluster.caFile, toPath: "\(certs)/ca.crt")
        let source = try ImageBuilder.build(layout: "\(cluster.scratch.path)/source", tag: "v1",
                                            layerSizes: [1 << 20, 200_000, 700_000], seed: 1406)
        let host = String(cluster.loadBalancer.dropFirst("https://".count))
        let push = skopeo(["copy", "--retry-times", "3", "--dest-cert-dir", certs, "oci:\(source):v1", "docker://\(host)/cluster/skopeo:v1"])
        #expect(push.succeeded, "\(push.stderr)")
        let pulled = "\(cluster.scratch.path)/pulled"
        let pull = skopeo(["copy", "--retry-times", "3", "--src-cert-dir", certs, "docker://\(host)/cluster/skopeo:v1", "oci:\(pulled):v1"])
        #expect(pull.succeeded, "\(pull.stderr)")
        let original = skopeo(["inspect", "--raw", "oci:\(source):v1"]).stdout
        #expect(!original.isEmpty && skopeo(["inspect", "--raw", "oci:\(pulled):v1"]).stdout == original)
        for node in cluster.nodes {
            let nodeHost = String(node.dropFirst("https://".count))
            let inspect = skopeo(["inspect", "--raw", "--cert-dir", certs, "docker://\(nodeHost)/cluster/skopeo:v1"])
            #expect(inspect.stdout == original, "\(node): \(inspect.stderr)")
        }
        expectScrubClean()
    }

    /// The docker engine (POST, one chunked PATCH and a PUT per blob, every request on a
    /// connection of its own) and containerd's ctr (one monolithic PUT per blob) push and
    /// pull through the load balancer: each push's requests are spread over every node,
    /// each client pulls back what it pushed, and every node serves each acknowledged
    /// manifest and every blob it names, byte-exact.
    @Test func dockerEngineAndContainerdPushAndPullThroughTheLoadBalancer() throws {
        let work = "\(cluster.scratch.path)/engines"
        try? FileManager.default.removeItem(atPath: work)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let engine = try DockerEngine(directory: "\(work)/engine")
        defer { engine.stop() }
        let ctr = engine.containerd
        let host = String(cluster.loadBalancer.dropFirst("https://".count))
        let layout = try ImageBuilder.build(layout: "\(work)/source", tag: "v1",
                                            layerSizes: [1 << 20, 300_000, 2 << 20], seed: 1407)
        let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
        let ociManifest = "application/vnd.oci.image.manifest.v1+json"
        func digest(after marker: String, in output: String) -> String? {
            guard let range = output.range(of: marker) else { return nil }
            let digest = output[range.upperBound...].prefix { !$0.isWhitespace }
            return digest.hasPrefix("sha256:") ? String(digest) : nil
        }
        func requests(_ repository: String) -> [[RegistryServer.LoggedRequest]] {
            (1...GlusterCluster.nodeCount).map { cluster.loggedRequests(node: $0).filter { $0.uri.hasPrefix("/v2/\(repository)/") } }
        }

        // docker: load the image, push it through the load balancer, forget it, pull it back.
        let dockerReference = "\(host)/cluster/docker:v1"
        let archive = "\(work)/v1.docker.tar"
        let toArchive = skopeo(["copy", "oci:\(layout):v1", "docker-archive:\(archive):\(dockerReference)"])
        try #require(toArchive.succeeded, "skopeo copy to docker-archive: \(toArchive.stderr)")
        let load = engine.docker(["load", "--input", archive])
        try #require(load.succeeded, "docker load: \(load.stderr)\n\(load.stdout)")
        let dockerPush = engine.docker(["push", dockerReference])
        try #require(dockerPush.succeeded, "docker push: \(dockerPush.stderr)\n\(dockerPush.stdout)\ndockerd:\n\(engine.log.suffix(3000))")
        let dockerPushed = try #require(digest(after: "v1: digest: ", in: dockerPush.stdout), "\(dockerPush.stdout)")
        let dockerImageID = engine.docker(["image", "inspect", "--format", "{{.Id}}", dockerReference]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(engine.docker(["rmi", dockerReference]).succeeded)
        let dockerPull = engine.docker(["pull", dockerReference])
        try #require(dockerPull.succeeded, "docker pull: \(dockerPull.stderr)\n\(dockerPull.stdout)\ndockerd:\n\(engine.log.suffix(3000))")
        #expect(digest(after: "Digest: ", in: dockerPull.stdout) == dockerPushed, "\(dockerPull.stdout)")
        #expect(engine.docker(["image", "inspect", "--format", "{{.Id}}", dockerReference]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines) == dockerImageID)

        // ctr on the engine's containerd: import the OCI image, push it, pull it into a
        // namespace that holds nothing, so every blob comes through the load balancer.
        let hosts = try ctr.hostsDirectory(baseURL: cluster.loadBalancer, caFile: cluster.caFile)
        let ctrReference = "\(host)/cluster/ctr:v1"
        let ociArchive = "\(work)/v1.oci.tar"
        let toOCIArchive = skopeo(["copy", "oci:\(layout):v1", "oci-archive:\(ociArchive):v1"])
        try #require(toOCIArchive.succeeded, "skopeo copy to oci-archive: \(toOCIArchive.stderr)")
        let imported = ctr.ctr(["images", "import", "--no-unpack", "--base-name", "\(host)/cluster/ctr", ociArchive], namespace: "push")
        try #require(imported.succeeded, "ctr import: \(imported.stderr)\n\(imported.stdout)")
        let ctrPushed = try #require(ctr.imageDigest(ctrReference, namespace: "push"), "ctr images ls after import")
        let ctrPush = ctr.ctr(["images", "push", "--hosts-dir", hosts, ctrReference], namespace: "push")
        try #require(ctrPush.succeeded, "ctr push: \(ctrPush.stderr)\n\(ctrPush.stdout)")
        let ctrPull = ctr.ctr(["images", "pull", "--hosts-dir", hosts, "--snapshotter", "native", ctrReference], namespace: "pull")
        try #require(ctrPull.succeeded, "ctr pull: \(ctrPull.stderr)\n\(ctrPull.stdout)")
        #expect(ctr.imageDigest(ctrReference, namespace: "pull") == ctrPushed)

        // Every node serves each acknowledged manifest under its tag and every blob it names.
        struct Manifest: Decodable { struct Blob: Decodable { let digest: String }; let config: Blob; let layers: [Blob] }
        var blobsReadBack = 0, blobsAcknowledged = 0, manifestsReadBack = 0
        for (repository, pushed, mediaType) in [("cluster/docker", dockerPushed, dockerManifest), ("cluster/ctr", ctrPushed, ociManifest)] {
            let body = cluster.curl(["-H", "Accept: \(mediaType)", "\(cluster.nodes[0])/v2/\(repository)/manifests/\(pushed)"]).body
            let manifest = try JSONDecoder().decode(Manifest.self, from: body)
            let blobs = [manifest.config.digest] + manifest.layers.map(\.digest)
            blobsAcknowledged += blobs.count
            var everywhere = true
            for node in cluster.nodes {
                let found = resolve(repository, "v1", at: node, accept: mediaType)
                #expect(found == pushed, "\(repository):v1 on \(node) is \(found ?? "missing"), pushed \(pushed)")
                everywhere = everywhere && found == pushed
            }
            if everywhere { manifestsReadBack += 1 }
            for (index, blob) in blobs.enumerated() {
                let node = cluster.nodes[index % cluster.nodes.count]
                let read = blobDigest(repository, blob, at: node)
                #expect(read == blob, "\(repository) blob \(blob) from \(node)")
                if read == blob { blobsReadBack += 1 }
            }
            if repository == "cluster/ctr" {
                #expect(ctr.contentDigests(namespace: "pull") == Set(blobs + [pushed]), "ctr pulled every blob")
            }
        }
        // Round robin: each client's requests reached every node, and no node failed one.
        for repository in ["cluster/docker", "cluster/ctr"] {
            let perNode = requests(repository)
            #expect(perNode.allSatisfy { $0.contains { ["POST", "PATCH", "PUT"].contains($0.method) } },
                    "\(repository): uploads per node \(perNode.map { $0.filter { $0.method != "GET" && $0.method != "HEAD" }.count })")
            #expect(perNode.joined().allSatisfy { $0.status < 500 }, "\(perNode.joined().filter { $0.status >= 500 })")
        }
        let spread = ["cluster/docker", "cluster/ctr"].map { repository in
            "\(repository) " + requests(repository).map { String($0.count) }.joined(separator: "/")
        }
        print("cluster clients: docker and ctr pushes acknowledged 2 manifests and \(blobsAcknowledged) blobs through the load "
              + "balancer; read back \(manifestsReadBack) manifests on every node and \(blobsReadBack) blobs; requests per node "
              + spread.joined(separator: ", "))
        #expect(manifestsReadBack == 2 && blobsReadBack == blobsAcknowledged)
        expectScrubClean()
    }

    /// Node 2 silently cut off from the load balancer (every packet to its nginx dropped
    /// inside its network namespace; its mount stays up): every push and pull through the
    /// load balancer succeeds at the first try through nodes 1 and 3, node 2 answers none
    /// of them, and once healed it serves every one (it shares the store all along).
    @Test func aNodeCutOffFromTheLoadBalancerCostsItsClientsNothing() throws {
        let lb = cluster.loadBalancer
        // The balancer keeps idle connections to a node for 5 s; past that, each request it
        // sends to node 2 needs a new connection, which times out (2 s) before anything is
        // sent, so it goes to the next node. (A request already on node 2 when it is cut
        // would wait for proxy_read_timeout: README, "Several nodes".)
        usleep(6_000_000)
        try cluster.cut(node: 2)
        var healed = false
        defer { if !healed { try? cluster.heal(node: 2) } }
        let before = cluster.loggedRequests(node: 2).count
        let counters = ClusterCounters()
        let clients = 4, rounds = 4
        let started = Date()
        concurrently(clients) { client in
            var random = SeededBytes(seed: 14080 + UInt64(client))
            let repository = "cluster/cut\(client % 2)"
            for round in 0..<rounds {
                let layer = Data(random.next(50_000))
                let config = Data("{\"cut\":\(client),\"r\":\(round)}".utf8)
                let uploaded = [layer, config].allSatisfy { postBlob($0, repository, at: lb) == 201 }
                let body = """
                    {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(sha256(config))","size":\(config.count)},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(sha256(layer))","size":\(layer.count)}]}
                    """
                let tag = "c\(client)-r\(round)"
                let digest = sha256(Data(body.utf8))
                let status = uploaded ? putManifest(body, repository, tag, at: lb) : -2
                counters.record(tag: "\(repository):\(tag)", digest: digest, acknowledged: status == 201, status: status,
                                blobs: [sha256(layer), sha256(config)])
                if status == 201 {
                    let pulled = resolve(repository, tag, at: lb)
                    if pulled == digest { counters.add("pulls") } else { counters.fail("pull of \(repository):\(tag): \(pulled ?? "nothing")") }
                }
            }
        }
        let seconds = Date().timeIntervalSince(started)
        let answeredByCutNode = cluster.loggedRequests(node: 2).count - before
        try cluster.heal(node: 2)
        healed = true
        #expect(counters.failures.isEmpty, "\(counters.failures)")
        #expect(counters.acknowledged.count == clients * rounds)
        #expect(answeredByCutNode == 0, "node 2 answered \(answeredByCutNode) requests while cut off")
        #expect(poll(seconds: 30) { cluster.curl(["\(cluster.nodes[1])/v2/"]).status == 200 }, "node 2 answers again once healed")
        var readBack = 0
        for (key, digests) in counters.acknowledged {
            let parts = key.split(separator: ":")
            let repository = String(parts[0]), tag = String(parts[1])
            var intact = true
            for node in cluster.nodes {
                intact = intact && resolve(repository, tag, at: node).map(digests.contains) == true
            }
            for blob in counters.blobs[key] ?? [] {
                intact = intact && blobDigest(repository, blob, at: cluster.nodes[1]) == blob
            }
            #expect(intact, "\(key) lost or damaged")
            if intact { readBack += 1 }
        }
        print("cluster partition: node 2 cut off from the load balancer for \(Int(seconds)) s; \(counters.pushes) pushes "
              + "acknowledged at the first try and \(counters.count("pulls")) pulled back through it, \(counters.failures.count) "
              + "client errors, node 2 answered \(answeredByCutNode) requests meanwhile; healed, \(readBack) read back on every node")
        #expect(readBack == counters.acknowledged.count)
        expectScrubClean()
    }
}

/// What concurrent clients of a cluster test saw: per tag the digests acknowledged for
/// it, the blobs each push named, refusals, and counts by name.
final class ClusterCounters: @unchecked Sendable {
    private let lock = NSLock()
    private var acknowledgedByTag: [String: Set<String>] = [:]
    private var blobsByTag: [String: [String]] = [:]
    private var failureList: [String] = []
    private var counts: [String: Int] = [:]

    func record(tag: String, digest: String, acknowledged: Bool, status: Int, blobs: [String] = []) {
        lock.withLock {
            if acknowledged {
                acknowledgedByTag[tag, default: []].insert(digest)
                blobsByTag[tag] = blobs
                counts["pushes", default: 0] += 1
            } else {
                failureList.append("\(tag): \(status)")
            }
        }
    }

    func fail(_ text: String) { lock.withLock { failureList.append(text) } }
    /// Adds one to the count `name`; returns the new count.
    @discardableResult
    func add(_ name: String) -> Int {
        lock.withLock {
            counts[name, default: 0] += 1
            return counts[name] ?? 0
        }
    }
    func count(_ name: String) -> Int { lock.withLock { counts[name] ?? 0 } }
    var pushes: Int { count("pushes") }
    var acknowledged: [String: Set<String>] { lock.withLock { acknowledgedByTag } }
    var blobs: [String: [String]] { lock.withLock { blobsByTag } }
    var failures: [String] { lock.withLock { failureList } }
    var allDigests: Set<String> { lock.withLock { acknowledgedByTag.values.reduce(into: Set<String>()) { $0.formUnion($1) } } }
}

final class ClusterFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

enum FileSystemSize {
    /// The size of the file at `path`, nil when there is none.
    static func of(_ path: String) -> Int? {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : nil
    }
}
