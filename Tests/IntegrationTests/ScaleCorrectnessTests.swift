import Foundation
import IntegrationSupport
import Testing

/// Correctness at the sizes the scale bench measures, through nginx and two worker
/// processes: a repository of 20,000 tags and a subject of 10,000 referrers (built as
/// files the way `bench/scale.py` builds them), then concurrent pushes of new tags and
/// referrers. Every acknowledged tag resolves to its digest, paged listings hold every
/// name exactly once, and other OCI tools read the layout.
@Suite(.serialized) struct ScaleCorrectnessTests {
    static let tagCount = 20_000, referrerCount = 10_000, clients = 8, pushesPerClient = 25

    @Test func twentyThousandTagsAndTenThousandReferrersStayExactUnderConcurrentPushes() throws {
        var subjectFile = ""
        let server = try RegistryServer(listening: .inheritedOnStandardInput, workerCount: 2) { store in
            subjectFile = "\(store)/../subject"
            let script = """
                import sys
                sys.path.insert(0, sys.argv[1])
                from scale import StoreBuilder
                builder = StoreBuilder(sys.argv[2], 2026)
                subject = builder.repository("big/app", 2, [f"t{n:05d}" for n in range(\(Self.tagCount))], "big")
                builder.referrers("big/app", subject, \(Self.referrerCount))
                open(sys.argv[3], "wb").write(subject)
                """
            let built = Shell.run("/usr/bin/python3", ["-c", script, "\(RegistryServer.repositoryRoot)/bench", store, subjectFile], timeout: 300)
            guard built.succeeded else { throw RegistryServer.ServerError.setup("store builder: \(built.stderr)") }
        }
        defer { server.stop() }
        let base = server.baseURL
        let subject = try Data(contentsOf: URL(fileURLWithPath: subjectFile))
        let subjectDigest = Shell.sha256Digest(subject), subjectSize = subject.count
        let empty = Data("{}".utf8), emptyDigest = Shell.sha256Digest(empty)
        let emptyFile = "\(server.directory.path)/empty"
        _ = FileManager.default.createFile(atPath: emptyFile, contents: empty)
        #expect(server.curl(["-X", "POST", "--data-binary", "@\(emptyFile)", "\(base)/v2/big/app/blobs/uploads/?digest=\(emptyDigest)"]).status == 201)

        @Sendable func manifest(_ name: String, subject: Bool) -> String {
            let subjectField = subject
                ? ",\"subject\":{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"\(subjectDigest)\",\"size\":\(subjectSize)}"
                : ""
            return """
                {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.scale","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"\(emptyDigest)","size":2},"layers":[{"mediaType":"application/vnd.oci.empty.v1+json","digest":"\(emptyDigest)","size":2}],"annotations":{"name":"\(name)"}\(subjectField)}
                """
        }
        @Sendable func put(_ body: String, _ reference: String) -> Int {
            let file = "\(server.directory.path)/\(UUID().uuidString)"
            _ = FileManager.default.createFile(atPath: file, contents: Data(body.utf8))
            defer { try? FileManager.default.removeItem(atPath: file) }
            return server.curl(["-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json", "--data-binary", "@\(file)",
                                "\(base)/v2/big/app/manifests/\(reference)"]).status
        }

        // New tags, moved tags and new referrers from eight clients at once.
        let acknowledged = Acknowledged()
        DispatchQueue.concurrentPerform(iterations: Self.clients) { client in
            for push in 0..<Self.pushesPerClient {
                let tag = "n\(client)-\(push)"
                let body = manifest(tag, subject: push % 5 == 0)
                acknowledged.record(tag, digest: Shell.sha256Digest(Data(body.utf8)), status: put(body, tag),
                                    referrer: push % 5 == 0)
            }
            let moved = String(format: "t%05d", client * 1000)
            let body = manifest("moved-\(client)", subject: false)
            acknowledged.record(moved, digest: Shell.sha256Digest(Data(body.utf8)), status: put(body, moved), referrer: false)
        }
        #expect(acknowledged.failures.isEmpty, "\(acknowledged.failures)")

        // Every acknowledged tag answers with its digest.
        for (tag, digest) in acknowledged.tags {
            let head = server.curl(["-I", "-H", "Accept: application/vnd.oci.image.manifest.v1+json", "\(base)/v2/big/app/manifests/\(tag)"])
            #expect(head.status == 200 && head.header("Docker-Content-Digest") == digest, "\(tag): \(head.status)")
        }
        // The tag list, page by page, holds every tag once, in order.
        struct Tags: Decodable { let tags: [String] }
        let listed = try pages("\(base)/v2/big/app/tags/list?n=1000", server) { try JSONDecoder().decode(Tags.self, from: $0).tags }
        let expectedTags = Set((0..<Self.tagCount).map { String(format: "t%05d", $0) }).union(acknowledged.tags.keys)
        #expect(listed.count == expectedTags.count && Set(listed) == expectedTags && listed == listed.sorted(),
                "\(listed.count) listed, \(expectedTags.count) expected")
        // The referrers, page by page: the 10,000 built ones and every acknowledged new one.
        struct Referrers: Decodable { struct Entry: Decodable { let digest: String }; let manifests: [Entry] }
        let referrers = try pages("\(base)/v2/big/app/referrers/\(subjectDigest)?n=1000", server) {
            try JSONDecoder().decode(Referrers.self, from: $0).manifests.map(\.digest)
        }
        #expect(referrers.count == Self.referrerCount + acknowledged.referrers.count && Set(referrers).count == referrers.count)
        #expect(acknowledged.referrers.isSubset(of: Set(referrers)))

        // Other OCI tools read the 20,000-tag layout.
        let umoci = Shell.run("umoci", ["ls", "--layout", "\(server.store)/big/app"])
        #expect(umoci.succeeded && Set(umoci.stdout.split(separator: "\n").map(String.init)) == expectedTags, "\(umoci.stderr)")
        let inspect = Shell.run("skopeo", ["inspect", "--raw", "oci:\(server.store)/big/app:n0-1"],
                                environment: ["XDG_DATA_HOME": "\(server.directory.path)/xdg", "_CONTAINERS_ROOTLESS_UID": "1000"])
        #expect(inspect.succeeded && inspect.stdout.contains("\"n0-1\""), "\(inspect.stderr)")
    }

    /// Follows `Link: <…>; rel="next"` from `url`, collecting what `items` reads from each page.
    func pages(_ url: String, _ server: RegistryServer, items: (Data) throws -> [String]) throws -> [String] {
        var collected: [String] = []
        var next: String? = url
        var count = 0
        while let current = next, count < 100 {
            let answer = server.curl([current])
            try #require(answer.status == 200, "\(current): \(answer.status)")
            collected += try items(answer.body)
            count += 1
            next = answer.header("Link").flatMap { link in
                guard let start = link.firstIndex(of: "<"), let end = link.firstIndex(of: ">") else { return nil }
                return server.baseURL + link[link.index(after: start)..<end]
            }
        }
        return collected
    }
}

private final class Acknowledged: @unchecked Sendable {
    private let lock = NSLock()
    private var byTag: [String: String] = [:]
    private var referrerDigests: Set<String> = []
    private var failed: [String] = []

    func record(_ tag: String, digest: String, status: Int, referrer: Bool) {
        lock.withLock {
            guard status == 201 else { failed.append("\(tag): \(status)"); return }
            byTag[tag] = digest
            if referrer { referrerDigests.insert(digest) }
        }
    }

    var tags: [String: String] { lock.withLock { byTag } }
    var referrers: Set<String> { lock.withLock { referrerDigests } }
    var failures: [String] { lock.withLock { failed } }
}
