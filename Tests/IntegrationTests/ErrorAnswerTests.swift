import Foundation
import Testing
import IntegrationSupport

/// Every error code of the spine provoked through nginx: right status, OCI JSON body.
@Suite(.serialized) struct ErrorAnswerTests {
    @Test func clientMistakesGetOCIErrorBodiesThroughNginx() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let base = server.baseURL
        let zero = "sha256:" + String(repeating: "0", count: 64)
        let payload = "\(server.directory.path)/payload"
        _ = FileManager.default.createFile(atPath: payload, contents: Data("abc".utf8))
        let abc = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        #expect(server.curl(["-X", "POST", "--data-binary", "@\(payload)", "\(base)/v2/app/blobs/uploads/?digest=\(abc)"]).status == 201)
        let session = server.curl(["-X", "POST", "\(base)/v2/app/blobs/uploads/"]).header("Location") ?? "/missing"
        let schema1 = "\(server.directory.path)/schema1"
        _ = FileManager.default.createFile(atPath: schema1, contents: Data("{\"schemaVersion\":1,\"name\":\"app\"}".utf8))
        let missing = "\(server.directory.path)/missing"
        _ = FileManager.default.createFile(atPath: missing, contents: Data("""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(abc)","size":3},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(zero)","size":1}]}
            """.utf8))

        let cases: [(String, [String], String, Int)] = [
            ("NAME_INVALID", ["\(base)/v2/Team/tags/list"], "NAME_INVALID", 400),
            // nginx itself refuses a path that climbs above the root: still the spec's code.
            ("traversal", ["--path-as-is", "\(base)/v2/%2e%2e/%2e%2e/tags/list"], "NAME_INVALID", 400),
            ("plain traversal", ["--path-as-is", "\(base)/v2/../../../x/tags/list"], "NAME_INVALID", 400),
            ("traversal over HTTP/1.1", ["--http1.1", "--path-as-is", "\(base)/v2/%2e%2e/%2e%2e/tags/list"], "NAME_INVALID", 400),
            ("encoded slash", ["\(base)/v2/a%2Fb/tags/list"], "NAME_INVALID", 400),
            // nginx resolves the dots before choosing a location: it never reaches the worker.
            ("encoded dots", ["\(base)/v2/a%2F..%2F..%2Fetc/tags/list"], "NAME_INVALID", 400),
            ("dots out of /v2/", ["--path-as-is", "\(base)/v2/../x/tags/list"], "NAME_INVALID", 400),
            ("dot segment", ["--path-as-is", "\(base)/v2/a/./b/tags/list"], "NAME_INVALID", 400),
            ("DIGEST_INVALID", ["-I", "\(base)/v2/app/blobs/sha256:xyz"], "", 400),
            ("DIGEST_INVALID body", ["\(base)/v2/app/blobs/sha256:xyz"], "DIGEST_INVALID", 400),
            ("DIGEST_INVALID mismatch", ["-X", "POST", "--data-binary", "@\(payload)", "\(base)/v2/app/blobs/uploads/?digest=\(zero)"], "DIGEST_INVALID", 400),
            ("SIZE_INVALID", ["-X", "PATCH", "-H", "Content-Range: 0-99", "--data-binary", "@\(payload)", "\(base)\(session)"], "SIZE_INVALID", 400),
            ("BLOB_UNKNOWN", ["\(base)/v2/app/blobs/\(zero)"], "BLOB_UNKNOWN", 404),
            ("BLOB_UPLOAD_UNKNOWN", ["\(base)/v2/app/blobs/uploads/0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"], "BLOB_UPLOAD_UNKNOWN", 404),
            ("BLOB_UPLOAD_INVALID", ["-X", "PATCH", "-H", "Content-Range: 10-12", "--data-binary", "@\(payload)", "\(base)\(session)"], "BLOB_UPLOAD_INVALID", 416),
            ("MANIFEST_INVALID", ["-X", "PUT", "-H", "Content-Type: application/vnd.docker.distribution.manifest.v1+prettyjws", "--data-binary", "@\(schema1)", "\(base)/v2/app/manifests/v1"], "MANIFEST_INVALID", 400),
            ("MANIFEST_BLOB_UNKNOWN", ["-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json", "--data-binary", "@\(missing)", "\(base)/v2/app/manifests/v1"], "MANIFEST_BLOB_UNKNOWN", 400),
            ("MANIFEST_UNKNOWN", ["\(base)/v2/app/manifests/nope"], "MANIFEST_UNKNOWN", 404),
            ("NAME_UNKNOWN", ["\(base)/v2/nobody/tags/list"], "NAME_UNKNOWN", 404),
            ("UNSUPPORTED", ["-X", "PATCH", "\(base)/v2/app/manifests/v1"], "UNSUPPORTED", 405),
        ]
        for (label, arguments, code, status) in cases {
            let response = server.curl(arguments)
            #expect(response.status == status, "\(label): \(response.text)")
            if code == "*" {
                #expect(response.errorCode != nil, "\(label): \(response.text)")
            } else if !code.isEmpty {
                #expect(response.errorCode == code, "\(label): \(response.text)")
                #expect(response.header("Content-Type") == "application/json", "\(label)")
            }
        }
        #expect(!server.workerLog.contains("\"status\":\"5"), "no 5xx from client mistakes")
    }

    @Test func storeLocationIsNotReachableFromOutside() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let file = "\(server.directory.path)/payload"
        _ = FileManager.default.createFile(atPath: file, contents: Data("abc".utf8))
        let abc = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        #expect(server.curl(["-X", "POST", "--data-binary", "@\(file)", "\(server.baseURL)/v2/app/blobs/uploads/?digest=\(abc)"]).status == 201)
        for path in ["/_berth/store/app/oci-layout", "/_berth/store/app/blobs/sha256/\(abc.dropFirst(7))", "/_berth/store/_berth/locks/_create"] {
            let response = server.curl(["\(server.baseURL)\(path)"])
            #expect(response.status == 404, "\(path)")
            #expect(!response.text.contains("abc"), "\(path)")
        }
    }
}
