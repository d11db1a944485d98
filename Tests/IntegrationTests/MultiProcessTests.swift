import Foundation
import Testing
import IntegrationSupport

/// Several worker processes on one store, many clients racing on one repository.
@Suite(.serialized) struct MultiProcessTests {
    @Test func racingTagsReferrersAndMountsAcrossThreeWorkerProcessesLoseNothing() throws {
        let server = try RegistryServer(listening: .inheritedOnStandardInput, workerCount: 3)
        defer { server.stop() }
        let base = server.baseURL
        @Sendable func post(_ bytes: Data, _ repository: String) -> String {
            let file = "\(server.directory.path)/\(UUID().uuidString)"
            _ = FileManager.default.createFile(atPath: file, contents: bytes)
            let digest = sha256(bytes)
            let answer = server.curl(["-X", "POST", "--data-binary", "@\(file)", "\(base)/v2/\(repository)/blobs/uploads/?digest=\(digest)"])
            try? FileManager.default.removeItem(atPath: file)
            return answer.status == 201 ? digest : "failed \(answer.status)"
        }
        @Sendable func putManifest(_ body: String, _ reference: String) -> Int {
            let file = "\(server.directory.path)/\(UUID().uuidString)"
            _ = FileManager.default.createFile(atPath: file, contents: Data(body.utf8))
            defer { try? FileManager.default.removeItem(atPath: file) }
            return server.curl(["-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json", "--data-binary", "@\(file)",
                                "\(base)/v2/race/app/manifests/\(reference)"]).status
        }
        let config = post(Data("{}".utf8), "race/app")
        let layer = post(Data(SeededBytes(seed: 8).nextArray(50_000)), "race/app")
        let subject = """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(config)","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(layer)","size":50000}]}
            """
        #expect(putManifest(subject, "subject") == 201)
        let subjectDigest = sha256(Data(subject.utf8))

        let clients = 8, rounds = 6
        let outcomes = Outcomes()
        DispatchQueue.concurrentPerform(iterations: clients) { client in
            for round in 0..<rounds {
                let manifest = """
                    {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.c\(client)","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"\(config)","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(layer)","size":50000}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(subjectDigest)","size":\(subject.utf8.count)},"annotations":{"round":"\(round)"}}
                    """
                let digest = sha256(Data(manifest.utf8))
                outcomes.record("tag c\(client)-r\(round)", putManifest(manifest, "c\(client)-r\(round)"), digest: digest)
                outcomes.record("latest", putManifest(manifest, "latest"), digest: digest)
                let mount = server.curl(["-X", "POST", "\(base)/v2/race/mount\(client % 3)/blobs/uploads/?mount=\(layer)&from=race/app"])
                outcomes.record("mount", mount.status, digest: nil)
            }
        }
        #expect(outcomes.failures.isEmpty, "\(outcomes.failures)")

        struct Tags: Decodable { let tags: [String] }
        let tags = try JSONDecoder().decode(Tags.self, from: server.curl(["\(base)/v2/race/app/tags/list"]).body).tags
        let expected = Set((0..<clients).flatMap { c in (0..<rounds).map { "c\(c)-r\($0)" } } + ["latest", "subject"])
        #expect(Set(tags) == expected, "lost tags: \(expected.subtracting(tags))")
        let latest = server.curl(["-I", "\(base)/v2/race/app/manifests/latest"]).header("Docker-Content-Digest")
        #expect(latest.map { outcomes.acknowledgedDigests.contains($0) } == true)

        struct Referrers: Decodable { struct Entry: Decodable { let digest: String }; let manifests: [Entry] }
        let referrers = try JSONDecoder().decode(Referrers.self, from: server.curl(["\(base)/v2/race/app/referrers/\(subjectDigest)"]).body)
        #expect(Set(referrers.manifests.map(\.digest)) == outcomes.acknowledgedDigests, "lost referrers")
        for mirror in 0..<3 {
            #expect(server.curl(["-I", "\(base)/v2/race/mount\(mirror)/blobs/\(layer)"]).status == 200)
        }
        // The layout stays readable by other OCI tools after the group commits of three processes.
        let environment = ["XDG_DATA_HOME": "\(server.directory.path)/xdg", "_CONTAINERS_ROOTLESS_UID": "1000"]
        for tag in ["c0-r0", "c\(clients - 1)-r\(rounds - 1)", "latest"] {
            let inspect = Shell.run("skopeo", ["inspect", "--raw", "oci:\(server.store)/race/app:\(tag)"], environment: environment)
            #expect(inspect.succeeded, "skopeo inspect \(tag): \(inspect.stderr)")
        }
        let umoci = Shell.run("umoci", ["ls", "--layout", "\(server.store)/race/app"])
        #expect(Set(umoci.stdout.split(separator: "\n").map(String.init)) == expected, "\(umoci.stderr)")
        let scrub = Shell.run(RegistryServer.binary, ["scrub", "--store", server.store])
        #expect(scrub.stdout.contains("problems=0"), "\(scrub.stdout)")
        #expect(server.workerLog.split(separator: "\n").filter { $0.contains("\"event\":\"started\"") }.count == 3)
    }
}

private final class Outcomes: @unchecked Sendable {
    private let lock = NSLock()
    private var failed: [String] = []
    private var digests: Set<String> = []

    func record(_ what: String, _ status: Int, digest: String?) {
        lock.withLock {
            if status == 201, let digest { digests.insert(digest) }
            if status != 201 { failed.append("\(what): \(status)") }
        }
    }

    var failures: [String] { lock.withLock { failed } }
    var acknowledgedDigests: Set<String> { lock.withLock { digests } }
}

extension SeededBytes {
    func nextArray(_ count: Int) -> [UInt8] {
        var copy = self
        return copy.next(count)
    }
}
