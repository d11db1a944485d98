import Foundation
import Testing
import IntegrationSupport

/// Write-once tags (`immutable_tags`) through real nginx and real worker processes:
/// skopeo may push the same image again but not another one, a delete is refused with
/// 403 DENIED naming the rule, and racing pushes from several clients to two worker
/// processes leave exactly one winner.
@Suite(.serialized) struct WriteOnceTagTests {
    static let rule = ["BERTH_IMMUTABLE_TAGS": "release/** v*"]

    func skopeo(_ server: RegistryServer, _ arguments: [String]) -> Shell.Result {
        Shell.run("skopeo", arguments, environment: [
            "XDG_DATA_HOME": "\(server.directory.path)/xdg", "_CONTAINERS_ROOTLESS_UID": "1000",
            "HOME": server.directory.path,
        ])
    }

    @Test func skopeoPushesAWriteOnceTagOnceAndAgainButCannotMoveOrDeleteIt() throws {
        try ClientTools.require("skopeo", debianPackage: "skopeo")
        let server = try RegistryServer(workerEnvironment: Self.rule)
        defer { server.stop() }
        let first = try ImageBuilder.build(layout: "\(server.directory.path)/first", tag: "v1", layerSizes: [50_000], seed: 1)
        let second = try ImageBuilder.build(layout: "\(server.directory.path)/second", tag: "v1", layerSizes: [60_000], seed: 2)
        let destination = "docker://\(server.host)/release/app:v1"
        let push = skopeo(server, ["copy", "--dest-cert-dir", server.certDirectory, "oci:\(first):v1", destination])
        #expect(push.succeeded, "\(push.stderr)")
        let tagged = server.curl(["-I", "\(server.baseURL)/v2/release/app/manifests/v1"]).header("Docker-Content-Digest")
        #expect(tagged?.hasPrefix("sha256:") == true)

        let again = skopeo(server, ["copy", "--dest-cert-dir", server.certDirectory, "oci:\(first):v1", destination])
        #expect(again.succeeded, "the same image again is fine: \(again.stderr)")
        let moved = skopeo(server, ["copy", "--dest-cert-dir", server.certDirectory, "oci:\(second):v1", destination])
        #expect(!moved.succeeded)
        #expect(moved.stderr.contains("write-once"), "\(moved.stderr)")
        // A tag no rule covers takes the other image.
        let latest = skopeo(server, ["copy", "--dest-cert-dir", server.certDirectory, "oci:\(second):v1",
                                     "docker://\(server.host)/release/app:latest"])
        #expect(latest.succeeded, "\(latest.stderr)")

        let delete = server.curl(["-X", "DELETE", "\(server.baseURL)/v2/release/app/manifests/v1"])
        #expect(delete.status == 403 && delete.errorCode == "DENIED")
        #expect(delete.text.contains("immutable_tags = release/** v*"), "\(delete.text)")
        if let tagged {
            let byDigest = server.curl(["-X", "DELETE", "\(server.baseURL)/v2/release/app/manifests/\(tagged)"])
            #expect(byDigest.status == 403 && byDigest.errorCode == "DENIED")
        }
        #expect(server.curl(["-I", "\(server.baseURL)/v2/release/app/manifests/v1"]).header("Docker-Content-Digest") == tagged)
    }

    @Test func racingPushesOfDifferentManifestsToOneWriteOnceTagThroughTwoWorkersHaveOneWinner() throws {
        let server = try RegistryServer(workerEnvironment: Self.rule, listening: .inheritedOnStandardInput, workerCount: 2)
        defer { server.stop() }
        let base = server.baseURL
        let contenders = 8
        var files: [String] = []
        var digests: [String] = []
        for index in 0..<contenders {
            let config = Data("{\"architecture\":\"amd64\",\"os\":\"linux\",\"contender\":\(index)}".utf8)
            let configFile = "\(server.directory.path)/config-\(index)"
            _ = FileManager.default.createFile(atPath: configFile, contents: config)
            let configDigest = sha256(config)
            let blob = server.curl(["-X", "POST", "--data-binary", "@\(configFile)",
                                    "\(base)/v2/release/race/blobs/uploads/?digest=\(configDigest)"])
            #expect(blob.status == 201)
            let manifest = Data("""
                {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(configDigest)","size":\(config.count)},"layers":[]}
                """.utf8)
            let file = "\(server.directory.path)/manifest-\(index)"
            _ = FileManager.default.createFile(atPath: file, contents: manifest)
            files.append(file)
            digests.append(sha256(manifest))
        }
        let manifests = files
        let collected = Answers()
        DispatchQueue.concurrentPerform(iterations: contenders) { index in
            let answer = server.curl(["-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json",
                                      "--data-binary", "@\(manifests[index])", "\(base)/v2/release/race/manifests/v1"])
            collected.record(index, answer.status, answer.errorCode)
        }
        let answers = collected.all
        let winners = answers.filter { $0.value.0 == 201 }.map(\.key)
        #expect(winners.count == 1, "\(answers)")
        #expect(answers.values.allSatisfy { $0.0 == 201 || ($0.0 == 403 && $0.1 == "DENIED") }, "\(answers)")
        if let winner = winners.first {
            let head = server.curl(["-I", "\(base)/v2/release/race/manifests/v1"])
            #expect(head.header("Docker-Content-Digest") == digests[winner])
        }
    }
}

/// Answers of concurrent requests, by contender.
private final class Answers: @unchecked Sendable {
    private let lock = NSLock()
    private var answers: [Int: (Int, String?)] = [:]

    func record(_ index: Int, _ status: Int, _ code: String?) { lock.withLock { answers[index] = (status, code) } }
    var all: [Int: (Int, String?)] { lock.withLock { answers } }
}
