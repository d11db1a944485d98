import Foundation
import Testing
import IntegrationSupport

/// python-dxf (PyPI `python-dxf`) pushes and pulls blobs and aliases through real nginx
/// with TLS verified against the test CA. Its push from a generator is one chunked
/// `PUT ?digest=` with no PATCH, a sequence no other client here sends.
@Suite(.serialized) struct PythonDXFTests {
    /// The client script: one JSON command in argv[1], one JSON result on the last line
    /// of stdout, with every request python-dxf sent and what Berth answered.
    static let script = #"""
    import json, sys
    import requests
    from dxf import DXF

    command = json.loads(sys.argv[1])
    seen = []
    def record(response, *args, **kwargs):
        request = response.request
        seen.append({"method": request.method, "url": request.url, "status": response.status_code,
                     "contentRange": request.headers.get("Content-Range"),
                     "contentLength": request.headers.get("Content-Length"),
                     "transferEncoding": request.headers.get("Transfer-Encoding"),
                     "range": response.headers.get("Range"), "location": response.headers.get("Location")})

    def chunks(path, size):
        with open(path, "rb") as f:
            while True:
                chunk = f.read(size)
                if not chunk:
                    return
                yield chunk

    result, error = None, None
    with DXF(command["host"], command["repo"], tlsverify=command["ca"]) as dxf:
        dxf._sessions[0].hooks["response"].append(record)
        op = command["op"]
        try:
            if op == "push-generator":
                result = dxf.push_blob(data=chunks(command["file"], command["chunk"]), digest=command["digest"])
            elif op == "push-file":
                result = dxf.push_blob(filename=command["file"])
            elif op == "set-alias":
                result = json.loads(dxf.set_alias(command["alias"], *command["digests"]))
            elif op == "pull":
                with open(command["out"], "wb") as out:
                    for chunk in dxf.pull_blob(command["digest"]):
                        out.write(chunk)
                result = {"size": dxf.blob_size(command["digest"]), "alias": dxf.get_alias(command["alias"]),
                          "aliases": dxf.list_aliases()}
            elif op == "mount":
                result = dxf.mount_blob(command["from"], command["digest"])
            elif op == "delete-alias":
                result = dxf.del_alias(command["alias"])
            elif op == "delete-blob":
                dxf.del_blob(command["digest"])
        except requests.exceptions.HTTPError as failure:
            error = {"status": failure.response.status_code, "body": failure.response.text}
    print(json.dumps({"result": result, "error": error, "requests": seen}))
    """#

    struct Output<Value: Decodable>: Decodable {
        struct Failure: Decodable {
            let status: Int
            let body: String
        }
        let result: Value?
        let error: Failure?
        let requests: [RecordedRequest]
    }

    struct Pulled: Decodable {
        let size: Int
        let alias: [String]
        let aliases: [String]
    }

    /// Runs one command of the client script (written into the server's folder) against
    /// `repository`.
    func dxf<Value: Decodable>(_ server: RegistryServer, _ repository: String, _ command: [String: Any],
                               as: Value.Type) throws -> Output<Value> {
        let python = try ClientTools.python(importing: "dxf")
        let path = "\(server.directory.path)/dxf_client.py"
        if !FileManager.default.fileExists(atPath: path) { try Self.script.write(toFile: path, atomically: true, encoding: .utf8) }
        var full = command
        full["host"] = server.host
        full["repo"] = repository
        full["ca"] = "\(server.certDirectory)/ca.crt"
        let argument = String(decoding: try JSONSerialization.data(withJSONObject: full), as: UTF8.self)
        let run = Shell.run(python, [path, argument], environment: ["HOME": server.directory.path], timeout: 120)
        try #require(run.succeeded, "python-dxf \(command["op"] ?? ""): \(run.stderr)")
        let last = run.stdout.split(separator: "\n").last.map(String.init) ?? ""
        return try JSONDecoder().decode(Output<Value>.self, from: Data(last.utf8))
    }

    func randomFile(_ server: RegistryServer, _ count: Int, seed: UInt64) throws -> (path: String, data: Data, digest: String) {
        var bytes = SeededBytes(seed: seed)
        let data = Data(bytes.next(count))
        let path = "\(server.directory.path)/blob-\(seed).bin"
        try data.write(to: URL(fileURLWithPath: path))
        return (path, data, Shell.sha256Digest(data))
    }

    @Test func pushFromAGeneratorIsOneChunkedPutWithoutPatchAndPullsBackByteIdentical() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let blob = try randomFile(server, 3_000_000, seed: 71)

        let push = try dxf(server, "dxf/blobs", ["op": "push-generator", "file": blob.path, "digest": blob.digest, "chunk": 65_536],
                           as: String.self)
        #expect(push.error == nil, "\(String(describing: push.error))")
        #expect(push.result == blob.digest)
        // What python-dxf sent: the existence check, a session, and the whole blob in one
        // chunked PUT ?digest= (no Content-Length), never a PATCH.
        #expect(push.requests.map(\.method) == ["HEAD", "POST", "PUT"], "\(push.requests)")
        #expect(push.requests.map(\.status) == [404, 202, 201], "\(push.requests)")
        let put = try #require(push.requests.last)
        #expect(put.transferEncoding == "chunked")
        #expect(put.contentLength == nil)
        #expect(put.url.contains("digest=\(blob.digest.replacingOccurrences(of: ":", with: "%3A"))"))
        let uploads = ClientTools.workerRequests(server).filter { $0.uri.contains("/blobs/uploads/") }
        #expect(uploads.map(\.method) == ["POST", "PUT"], "\(uploads)")
        #expect(uploads.map(\.status) == [202, 201], "\(uploads)")

        let alias = try dxf(server, "dxf/blobs", ["op": "set-alias", "alias": "v1", "digests": [blob.digest]],
                            as: ManifestShape.self)
        #expect(alias.error == nil, "\(String(describing: alias.error))")
        let manifest = server.curl(["\(server.baseURL)/v2/dxf/blobs/manifests/v1"])
        #expect(manifest.status == 200)
        #expect(manifest.header("Content-Type") == "application/vnd.docker.distribution.manifest.v2+json")
        #expect(manifest.header("Docker-Content-Digest") == Shell.sha256Digest(manifest.body))

        let out = "\(server.directory.path)/pulled.bin"
        let pull = try dxf(server, "dxf/blobs", ["op": "pull", "digest": blob.digest, "out": out, "alias": "v1"], as: Pulled.self)
        #expect(pull.error == nil, "\(String(describing: pull.error))")
        #expect(FileManager.default.contents(atPath: out) == blob.data)
        #expect(pull.result?.size == blob.data.count)
        #expect(pull.result?.alias == [blob.digest])
        #expect(pull.result?.aliases == ["v1"])
    }

    @Test func generatorPushWithAWrongDigestIsRefusedAndLeavesNoBlob() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let blob = try randomFile(server, 500_000, seed: 72)
        let claimed = Shell.sha256Digest(Data("something else".utf8))

        let push = try dxf(server, "dxf/blobs", ["op": "push-generator", "file": blob.path, "digest": claimed, "chunk": 65_536],
                           as: String.self)
        #expect(push.error?.status == 400, "\(push.requests)")
        #expect(push.error?.body.contains("DIGEST_INVALID") == true, "\(String(describing: push.error))")
        for digest in [claimed, blob.digest] {
            let head = server.curl(["-I", "\(server.baseURL)/v2/dxf/blobs/blobs/\(digest)"])
            #expect(head.status == 404, "\(digest)")
        }
        // The same push with the right digest then succeeds.
        let retry = try dxf(server, "dxf/blobs", ["op": "push-generator", "file": blob.path, "digest": blob.digest, "chunk": 100_000],
                            as: String.self)
        #expect(retry.error == nil && retry.result == blob.digest, "\(String(describing: retry.error))")
        #expect(server.curl(["\(server.baseURL)/v2/dxf/blobs/blobs/\(blob.digest)"]).body == blob.data)
    }

    @Test func filePushIsOnePutWithContentLengthThenExistingBlobsAreSkippedMountedAndDeleted() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let blob = try randomFile(server, 1_200_000, seed: 73)

        let push = try dxf(server, "dxf/one", ["op": "push-file", "file": blob.path], as: String.self)
        #expect(push.result == blob.digest)
        #expect(push.requests.map(\.method) == ["HEAD", "POST", "PUT"], "\(push.requests)")
        #expect(push.requests.last?.contentLength == String(blob.data.count))
        #expect(push.requests.last?.status == 201)
        // Pushing it again stops at the existence check.
        let again = try dxf(server, "dxf/one", ["op": "push-file", "file": blob.path], as: String.self)
        #expect(again.result == blob.digest)
        #expect(again.requests.map(\.description) == ["HEAD \(server.baseURL)/v2/dxf/one/blobs/\(blob.digest) -> 200"])

        // A mount into another repository answers 201 with the digest (python-dxf checks it).
        let mount = try dxf(server, "dxf/two", ["op": "mount", "from": "dxf/one", "digest": blob.digest], as: String.self)
        #expect(mount.error == nil && mount.result == blob.digest, "\(mount.requests)")
        #expect(server.curl(["\(server.baseURL)/v2/dxf/two/blobs/\(blob.digest)"]).body == blob.data)

        // An alias deleted goes by digest; the blob deleted leaves this repository only.
        _ = try dxf(server, "dxf/two", ["op": "set-alias", "alias": "latest", "digests": [blob.digest]], as: ManifestShape.self)
        let deleteAlias = try dxf(server, "dxf/two", ["op": "delete-alias", "alias": "latest"], as: [String].self)
        #expect(deleteAlias.error == nil, "\(deleteAlias.requests)")
        #expect(deleteAlias.result == [blob.digest])
        #expect(deleteAlias.requests.last?.method == "DELETE")
        #expect(deleteAlias.requests.last?.status == 202)
        #expect(server.curl(["\(server.baseURL)/v2/dxf/two/manifests/latest"]).status == 404)
        let deleteBlob = try dxf(server, "dxf/two", ["op": "delete-blob", "digest": blob.digest], as: String.self)
        #expect(deleteBlob.error == nil, "\(deleteBlob.requests)")
        #expect(deleteBlob.requests.map(\.status) == [202])
        #expect(server.curl(["-I", "\(server.baseURL)/v2/dxf/two/blobs/\(blob.digest)"]).status == 404)
        #expect(server.curl(["\(server.baseURL)/v2/dxf/one/blobs/\(blob.digest)"]).body == blob.data)
    }
}

/// The parts of the Docker schema 2 manifest python-dxf writes for an alias.
struct ManifestShape: Decodable {
    let mediaType: String
    let schemaVersion: Int
}
