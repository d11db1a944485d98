import Foundation
import Testing
import IntegrationSupport

/// Every endpoint of the Distribution API through real nginx and the real worker, with
/// the statuses the spec defines for it.
@Suite(.serialized) struct APIMatrixTests {
    @Test func everyEndpointAnswersTheSpecsStatusesThroughNginx() throws {
        let server = try RegistryServer(workerArguments: ["--automatic-cross-mount"])
        defer { server.stop() }
        let base = server.baseURL
        func file(_ bytes: Data) -> String {
            let path = "\(server.directory.path)/\(UUID().uuidString)"
            _ = FileManager.default.createFile(atPath: path, contents: bytes)
            return path
        }
        func call(_ arguments: [String]) -> RegistryServer.Response { server.curl(arguments) }
        let zero = "sha256:" + String(repeating: "0", count: 64)

        // end-1: base
        #expect(call(["\(base)/v2/"]).status == 200)
        // end-2, end-3: blobs HEAD/GET, 404 before the push
        let layer = Data(SeededBytes(seed: 4).nextArray(10_000))
        let layerDigest = sha256(layer)
        #expect(call(["-I", "\(base)/v2/m/app/blobs/\(layerDigest)"]).status == 404)
        // end-4a/4b: POST opens a session (202), PUT completes (201); end-6 PATCH 202; end-13 GET status 204
        let session = try #require(call(["-X", "POST", "\(base)/v2/m/app/blobs/uploads/"]).header("Location"))
        let patched = call(["-X", "PATCH", "-H", "Content-Range: 0-4999", "--data-binary", "@\(file(layer.prefix(5000)))", "\(base)\(session)"])
        #expect(patched.status == 202)
        #expect(call(["-X", "PATCH", "-H", "Content-Range: 0-4999", "--data-binary", "@\(file(layer.suffix(5000)))", "\(base)\(session)"]).status == 416)
        let status = call(["\(base)\(patched.header("Location") ?? session)"])
        #expect(status.status == 204 && status.header("Range") == "0-4999" && status.header("Docker-Upload-UUID") != nil)
        let put = call(["-X", "PUT", "--data-binary", "@\(file(layer.suffix(5000)))", "\(base)\(patched.header("Location") ?? session)?digest=\(layerDigest)"])
        #expect(put.status == 201 && put.header("Docker-Content-Digest") == layerDigest)
        #expect(call(["\(base)\(session)"]).status == 404, "a finished session is gone")
        // end-4b monolithic POST, including an empty blob
        let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        #expect(call(["-X", "POST", "-H", "Content-Length: 0", "\(base)/v2/m/app/blobs/uploads/?digest=\(empty)"]).status == 201)
        #expect(call(["-I", "\(base)/v2/m/app/blobs/\(empty)"]).header("Content-Length") == "0")
        // end-11: mount 201 (from), 201 (automatic), 202 (blob unknown)
        #expect(call(["-X", "POST", "\(base)/v2/m/copy/blobs/uploads/?mount=\(layerDigest)&from=m/app"]).status == 201)
        #expect(call(["-X", "POST", "\(base)/v2/m/auto/blobs/uploads/?mount=\(layerDigest)"]).status == 201)
        #expect(call(["-X", "POST", "\(base)/v2/m/copy/blobs/uploads/?mount=\(zero)&from=m/app"]).status == 202)
        // DELETE of a session: 204, then 404
        let doomed = try #require(call(["-X", "POST", "\(base)/v2/m/app/blobs/uploads/"]).header("Location"))
        #expect(call(["-X", "DELETE", "\(base)\(doomed)"]).status == 204)
        #expect(call(["\(base)\(doomed)"]).status == 404)

        // end-7: manifests PUT 201 (by tag and by digest); end-3 GET/HEAD 200 and 404
        let config = Data("{}".utf8)
        let configDigest = sha256(config)
        #expect(call(["-X", "POST", "--data-binary", "@\(file(config))", "\(base)/v2/m/app/blobs/uploads/?digest=\(configDigest)"]).status == 201)
        let manifest = Data("""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(configDigest)","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(layerDigest)","size":10000}]}
            """.utf8)
        let manifestDigest = sha256(manifest)
        let manifestFile = file(manifest)
        for tag in ["b", "a", "c", "d"] {
            #expect(call(["-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json", "--data-binary", "@\(manifestFile)",
                          "\(base)/v2/m/app/manifests/\(tag)"]).status == 201)
        }
        #expect(call(["-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json", "--data-binary", "@\(manifestFile)",
                      "\(base)/v2/m/app/manifests/\(manifestDigest)"]).status == 201)
        let head = call(["-I", "\(base)/v2/m/app/manifests/a"])
        #expect(head.status == 200 && head.header("Docker-Content-Digest") == manifestDigest)
        #expect(head.header("Content-Type") == "application/vnd.oci.image.manifest.v1+json")
        #expect(call(["\(base)/v2/m/app/manifests/\(manifestDigest)"]).body == manifest)
        #expect(call(["-I", "\(base)/v2/m/app/manifests/nope"]).status == 404)

        // end-8a/8b: tags list with n and last, Link while more remain
        let page = call(["\(base)/v2/m/app/tags/list?n=2"])
        #expect(page.text == "{\"name\":\"m/app\",\"tags\":[\"a\",\"b\"]}")
        let next = try #require(page.header("Link"))
        #expect(next == "</v2/m/app/tags/list?n=2&last=b>; rel=\"next\"")
        let second = call(["\(base)" + next.dropFirst().prefix { $0 != ">" }])
        #expect(second.text == "{\"name\":\"m/app\",\"tags\":[\"c\",\"d\"]}" && second.header("Link") == nil)
        #expect(call(["\(base)/v2/m/none/tags/list"]).status == 404)
        // catalog with n and last
        let catalog = call(["\(base)/v2/_catalog?n=2"])
        #expect(catalog.text == "{\"repositories\":[\"m/app\",\"m/auto\"]}" && catalog.header("Link") != nil)
        #expect(call(["\(base)/v2/_catalog?n=2&last=m/auto"]).text == "{\"repositories\":[\"m/copy\"]}")

        // end-12a/12b: referrers, 200 even for an unknown subject
        let referrers = call(["\(base)/v2/m/app/referrers/\(zero)"])
        #expect(referrers.status == 200 && referrers.header("Content-Type") == "application/vnd.oci.image.index.v1+json")

        // end-9: delete a tag, end-9 by digest; end-10 delete a blob
        #expect(call(["-X", "DELETE", "\(base)/v2/m/app/manifests/a"]).status == 202)
        #expect(call(["-I", "\(base)/v2/m/app/manifests/a"]).status == 404)
        #expect(call(["-I", "\(base)/v2/m/app/manifests/b"]).status == 200)
        #expect(call(["-X", "DELETE", "\(base)/v2/m/app/manifests/\(manifestDigest)"]).status == 202)
        #expect(call(["-I", "\(base)/v2/m/app/manifests/b"]).status == 404)
        #expect(call(["-X", "DELETE", "\(base)/v2/m/app/manifests/\(manifestDigest)"]).status == 404)
        #expect(call(["-X", "DELETE", "\(base)/v2/m/app/blobs/\(layerDigest)"]).status == 202)
        #expect(call(["-I", "\(base)/v2/m/app/blobs/\(layerDigest)"]).status == 404, "a delete is visible at once")
        #expect(call(["-I", "\(base)/v2/m/copy/blobs/\(layerDigest)"]).status == 200)
        #expect(call(["-X", "DELETE", "\(base)/v2/m/app/blobs/\(layerDigest)"]).status == 404)
    }

    @Test func aDeadWorkerGives502WithAnOCIBody() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        server.killWorker(0)
        let answer = server.curl(["\(server.baseURL)/v2/"])
        #expect(answer.status == 502)
        #expect(answer.errorCode != nil && answer.header("Content-Type") == "application/json")
    }
}
