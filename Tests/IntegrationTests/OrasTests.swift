import Foundation
import Testing
import IntegrationSupport

/// oras-py (PyPI `oras`) pushes artifacts and referrers to Berth and pulls them back,
/// through real nginx with TLS verified against the test CA.
@Suite(.serialized) struct OrasTests {
    /// The client script: one JSON command in argv[1], one JSON result on the last line
    /// of stdout, with every request oras sent and what Berth answered.
    static let script = #"""
    import json, sys
    import oras.oci, oras.provider

    command = json.loads(sys.argv[1])
    registry = oras.provider.Registry(hostname=command["host"], tls_verify=command["ca"])
    seen = []
    def record(response, *args, **kwargs):
        request = response.request
        seen.append({"method": request.method, "url": request.url, "status": response.status_code,
                     "contentRange": request.headers.get("Content-Range"),
                     "contentLength": request.headers.get("Content-Length"),
                     "transferEncoding": request.headers.get("Transfer-Encoding"),
                     "range": response.headers.get("Range"), "location": response.headers.get("Location")})
    registry.session.hooks["response"].append(record)

    if command["op"] == "push":
        subject = command.get("subject")
        response = registry.push(
            target=command["target"], files=command["files"], manifest_config=command.get("config"),
            manifest_annotations=command.get("annotations"),
            subject=oras.oci.Subject(**subject) if subject else None,
            do_chunked=command.get("chunked", False), chunk_size=command.get("chunkSize", 16 * 1024 * 1024),
            disable_path_validation=True, quiet=True)
        result = {"status": response.status_code, "digest": response.headers.get("Docker-Content-Digest"),
                  "subject": response.headers.get("OCI-Subject")}
    elif command["op"] == "pull":
        result = {"files": sorted(registry.pull(target=command["target"], outdir=command["outdir"]))}
    result["requests"] = seen
    print(json.dumps(result))
    """#

    struct Result: Decodable {
        let status: Int?
        let digest: String?
        let subject: String?
        let files: [String]?
        let requests: [RecordedRequest]
    }

    /// Runs one command of the client script (written into the server's folder).
    func oras(_ server: RegistryServer, _ command: [String: Any]) throws -> Result {
        let python = try ClientTools.python(importing: "oras")
        let path = "\(server.directory.path)/oras_client.py"
        if !FileManager.default.fileExists(atPath: path) { try Self.script.write(toFile: path, atomically: true, encoding: .utf8) }
        var full = command
        full["host"] = server.host
        full["ca"] = "\(server.certDirectory)/ca.crt"
        let argument = String(decoding: try JSONSerialization.data(withJSONObject: full), as: UTF8.self)
        let run = Shell.run(python, [path, argument], environment: ["HOME": server.directory.path], timeout: 120)
        try #require(run.succeeded, "oras \(command["op"] ?? ""): \(run.stderr)")
        let last = run.stdout.split(separator: "\n").last.map(String.init) ?? ""
        return try JSONDecoder().decode(Result.self, from: Data(last.utf8))
    }

    /// Writes `data` to `name` in a fresh folder and returns the path.
    func file(_ server: RegistryServer, _ name: String, _ data: Data) throws -> String {
        let folder = "\(server.directory.path)/files-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: "\(folder)/\(name)"))
        return "\(folder)/\(name)"
    }

    func random(_ count: Int, seed: UInt64) -> Data {
        var bytes = SeededBytes(seed: seed)
        return Data(bytes.next(count))
    }

    func json(_ data: Data) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    @Test func pushedArtifactKeepsItsConfigTypeLayerTypesAndAnnotationsAndPullsBackByteIdentical() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let data = random(400_000, seed: 61)
        let readme = Data("An artifact that is not an image.\n".utf8)
        let config = Data("{\"kind\":\"example\",\"version\":1}".utf8)
        let dataFile = try file(server, "data.bin", data)
        let readmeFile = try file(server, "README.txt", readme)
        let configFile = try file(server, "config.json", config)

        let push = try oras(server, [
            "op": "push", "target": "\(server.host)/artifacts/demo:v1",
            "files": ["\(dataFile):application/vnd.example.data.v1", "\(readmeFile):application/vnd.example.readme.v1+text"],
            "config": "\(configFile):application/vnd.example.config", "annotations": ["org.example.purpose": "test"],
        ])
        #expect(push.status == 201)
        // Each blob went up as POST then one PUT with the whole body; Berth took each at once.
        let blobRequests = push.requests.filter { $0.url.contains("/blobs/uploads/") }
        #expect(blobRequests.map(\.method) == ["POST", "PUT", "POST", "PUT", "POST", "PUT"], "\(push.requests)")
        #expect(blobRequests.map(\.status) == [202, 201, 202, 201, 202, 201], "\(push.requests)")
        #expect(blobRequests.filter { $0.method == "PUT" }.compactMap(\.contentLength)
            == [String(data.count), String(readme.count), String(config.count)])

        let answer = server.curl(["\(server.baseURL)/v2/artifacts/demo/manifests/v1"])
        #expect(answer.status == 200)
        #expect(answer.header("Content-Type") == "application/vnd.oci.image.manifest.v1+json")
        let digest = Shell.sha256Digest(answer.body)
        #expect(answer.header("Docker-Content-Digest") == digest)
        #expect(push.digest == digest)
        let manifest = json(answer.body)
        let configDescriptor = manifest["config"] as? [String: Any]
        #expect(configDescriptor?["mediaType"] as? String == "application/vnd.example.config")
        #expect(configDescriptor?["digest"] as? String == Shell.sha256Digest(config))
        let layers = manifest["layers"] as? [[String: Any]] ?? []
        #expect(layers.map { $0["mediaType"] as? String }
            == ["application/vnd.example.data.v1", "application/vnd.example.readme.v1+text"])
        #expect(layers.map { ($0["annotations"] as? [String: String])?["org.opencontainers.image.title"] }
            == ["data.bin", "README.txt"])
        #expect(layers.map { $0["digest"] as? String } == [Shell.sha256Digest(data), Shell.sha256Digest(readme)])
        #expect((manifest["annotations"] as? [String: String])?["org.example.purpose"] == "test")
        #expect(server.curl(["\(server.baseURL)/v2/artifacts/demo/blobs/\(Shell.sha256Digest(config))"]).body == config)

        let outdir = "\(server.directory.path)/pulled"
        let pull = try oras(server, ["op": "pull", "target": "\(server.host)/artifacts/demo:v1", "outdir": outdir])
        #expect(pull.files == ["\(outdir)/README.txt", "\(outdir)/data.bin"])
        #expect(FileManager.default.contents(atPath: "\(outdir)/data.bin") == data)
        #expect(FileManager.default.contents(atPath: "\(outdir)/README.txt") == readme)
        #expect(server.curl(["\(server.baseURL)/v2/artifacts/demo/tags/list"]).text
            == "{\"name\":\"artifacts/demo\",\"tags\":[\"v1\"]}")
    }

    @Test func referrersAttachedToAnImageAreListedWithArtifactTypeAndAnnotationsAndFilteredByType() throws {
        try ClientTools.require("skopeo", debianPackage: "skopeo")
        let server = try RegistryServer()
        defer { server.stop() }
        let source = try ImageBuilder.build(layout: "\(server.directory.path)/source", tag: "v1", layerSizes: [200_000], seed: 62)
        let push = Shell.run("skopeo", ["copy", "--dest-cert-dir", server.certDirectory, "oci:\(source):v1",
                                        "docker://\(server.host)/team/app:v1"],
                             environment: ["XDG_DATA_HOME": "\(server.directory.path)/xdg", "_CONTAINERS_ROOTLESS_UID": "1000"],
                             timeout: 300)
        try #require(push.succeeded, "\(push.stderr)")
        let head = server.curl(["-I", "\(server.baseURL)/v2/team/app/manifests/v1"])
        let imageDigest = try #require(head.header("Docker-Content-Digest"))
        let subject: [String: Any] = ["mediaType": try #require(head.header("Content-Type")), "digest": imageDigest,
                                      "size": Int(try #require(head.header("Content-Length")))!]

        let signature = Data("signed by alice\n".utf8)
        let sbom = Data("{\"spdxVersion\":\"SPDX-2.3\",\"packages\":[]}".utf8)
        let attached = [
            ("sig", "signature.txt", signature, "application/vnd.example.signature", "org.example.signer", "alice"),
            ("sbom", "sbom.spdx.json", sbom, "application/vnd.example.sbom", "org.example.format", "spdx"),
        ]
        var digests: [String: String] = [:]
        for (tag, name, data, artifactType, key, value) in attached {
            let configFile = try file(server, "config.json", Data("{\"for\":\"\(tag)\"}".utf8))
            let result = try oras(server, [
                "op": "push", "target": "\(server.host)/team/app:\(tag)",
                "files": ["\(try file(server, name, data)):application/vnd.example.payload"],
                "config": "\(configFile):\(artifactType)", "annotations": [key: value], "subject": subject,
            ])
            #expect(result.status == 201)
            // Berth says it took the subject into account.
            #expect(result.subject == imageDigest)
            digests[tag] = result.digest
        }

        let referrers = server.curl(["\(server.baseURL)/v2/team/app/referrers/\(imageDigest)"])
        #expect(referrers.status == 200)
        #expect(referrers.header("Content-Type") == "application/vnd.oci.image.index.v1+json")
        #expect(referrers.header("OCI-Filters-Applied") == nil)
        let index = json(referrers.body)
        #expect(index["schemaVersion"] as? Int == 2)
        #expect(index["mediaType"] as? String == "application/vnd.oci.image.index.v1+json")
        let entries = index["manifests"] as? [[String: Any]] ?? []
        #expect(entries.map { $0["digest"] as? String } == [digests["sig"], digests["sbom"]].compactMap { $0 }.sorted())
        for (tag, _, _, artifactType, key, value) in attached {
            let entry = entries.first { $0["digest"] as? String == digests[tag] }
            #expect(entry?["mediaType"] as? String == "application/vnd.oci.image.manifest.v1+json")
            #expect(entry?["artifactType"] as? String == artifactType)
            #expect((entry?["annotations"] as? [String: String])?[key] == value)
            let body = server.curl(["\(server.baseURL)/v2/team/app/manifests/\(digests[tag]!)"]).body
            #expect(entry?["size"] as? Int == body.count)
        }

        let referrersURL = "\(server.baseURL)/v2/team/app/referrers/\(imageDigest)"
        let filtered = server.curl(["\(referrersURL)?artifactType=application/vnd.example.sbom"])
        #expect(filtered.status == 200)
        #expect(filtered.header("OCI-Filters-Applied") == "artifactType")
        #expect((json(filtered.body)["manifests"] as? [[String: Any]])?.map { $0["digest"] as? String } == [digests["sbom"]])
        let none = server.curl(["\(referrersURL)?artifactType=application/vnd.example.none"])
        #expect(none.status == 200)
        #expect(none.header("OCI-Filters-Applied") == "artifactType")
        #expect((json(none.body)["manifests"] as? [Any])?.isEmpty == true)
        let unrelated = server.curl(["\(server.baseURL)/v2/team/app/referrers/\(digests["sig"]!)"])
        #expect(unrelated.status == 200)
        #expect((json(unrelated.body)["manifests"] as? [Any])?.isEmpty == true)

        // Both referrers pull back byte-identical, by tag and by digest.
        for (tag, name, data, _, _, _) in attached {
            for reference in [":\(tag)", "@\(digests[tag]!)"] {
                let outdir = "\(server.directory.path)/pulled-\(UUID().uuidString)"
                let pull = try oras(server, ["op": "pull", "target": "\(server.host)/team/app\(reference)", "outdir": outdir])
                #expect(pull.files == ["\(outdir)/\(name)"])
                #expect(FileManager.default.contents(atPath: "\(outdir)/\(name)") == data, "\(reference)")
            }
        }

        // Deleting a referrer takes it out of the list.
        #expect(server.curl(["-X", "DELETE", "\(server.baseURL)/v2/team/app/manifests/\(digests["sig"]!)"]).status == 202)
        let after = json(server.curl(["\(server.baseURL)/v2/team/app/referrers/\(imageDigest)"]).body)
        #expect((after["manifests"] as? [[String: Any]])?.map { $0["digest"] as? String } == [digests["sbom"]])
    }

    @Test func chunkedPushSendsContentRangePatchesWithoutBytesPrefixAndTheBlobArrivesWhole() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let data = random(2_500_000, seed: 63)
        let dataFile = try file(server, "big.bin", data)
        let push = try oras(server, [
            "op": "push", "target": "\(server.host)/artifacts/big:v1", "files": ["\(dataFile):application/vnd.example.data.v1"],
            "chunked": true, "chunkSize": 1_000_000,
        ])
        #expect(push.status == 201)

        // The layer went up in three PATCHes, each acknowledged with the Range so far and
        // a Location for the next, then a PUT ?digest= without body.
        let layerDigest = Shell.sha256Digest(data)
        let start = try #require(push.requests.firstIndex { $0.method == "POST" && $0.url.contains("/blobs/uploads/") })
        let session = Array(push.requests[start...].prefix(5))
        #expect(session.map(\.method) == ["POST", "PATCH", "PATCH", "PATCH", "PUT"], "\(push.requests)")
        #expect(session.map(\.status) == [202, 202, 202, 202, 201], "\(push.requests)")
        #expect(session.dropFirst().dropLast().map(\.contentRange) == ["0-999999", "1000000-1999999", "2000000-2499999"])
        #expect(session.dropFirst().dropLast().map(\.range) == ["0-999999", "0-1999999", "0-2499999"])
        #expect(session.dropLast().allSatisfy { $0.location?.contains("/v2/artifacts/big/blobs/uploads/") == true })
        #expect(session.last?.url.contains("digest=\(layerDigest.replacingOccurrences(of: ":", with: "%3A"))") == true)
        let patches = ClientTools.workerRequests(server).filter { $0.method == "PATCH" }
        #expect(patches.count >= 3 && patches.allSatisfy { $0.status == 202 }, "\(patches)")

        let blob = server.curl(["\(server.baseURL)/v2/artifacts/big/blobs/\(layerDigest)"])
        #expect(blob.status == 200)
        #expect(blob.body == data)
        let outdir = "\(server.directory.path)/pulled"
        let pull = try oras(server, ["op": "pull", "target": "\(server.host)/artifacts/big:v1", "outdir": outdir])
        #expect(pull.files == ["\(outdir)/big.bin"])
        #expect(FileManager.default.contents(atPath: "\(outdir)/big.bin") == data)
    }
}

/// One request a Python client sent, as its `requests` session saw it with the answer.
struct RecordedRequest: Decodable, CustomStringConvertible {
    let method: String
    let url: String
    let status: Int
    let contentRange: String?
    let contentLength: String?
    let transferEncoding: String?
    let range: String?
    let location: String?

    var description: String { "\(method) \(url) -> \(status)" }
}
