import Foundation
import Testing
import IntegrationSupport

/// Abuse through the real front door: limits, nonsense headers, oversized input.
@Suite(.serialized) struct HostileRequestTests {
    @Test func oversizedAndMalformedRequestsGetOCIErrorsAndNever5xx() throws {
        let server = try RegistryServer(workerArguments: ["--max-upload-sessions", "3"])
        defer { server.stop() }
        let base = server.baseURL
        // Over HTTP/1.1 nginx answers these itself (over HTTP/2 the stream is refused).
        let hugeQuery = server.curl(["--http1.1", "\(base)/v2/app/tags/list?n=1&" + String(repeating: "x=y&", count: 5_000)])
        #expect(hugeQuery.status == 414)
        #expect(hugeQuery.errorCode != nil)
        let hugeHeader = server.curl(["--http1.1", "-H", "X-Junk: " + String(repeating: "j", count: 20_000), "\(base)/v2/"])
        #expect([400, 494].contains(hugeHeader.status))
        #expect(hugeHeader.errorCode != nil)

        let plainHTTP = server.curl(["http://\(server.host)/v2/"])
        #expect(plainHTTP.status == 400)
        #expect(plainHTTP.errorCode == "UNSUPPORTED", "\(plainHTTP.text)")

        let location = try #require(server.curl(["-X", "POST", "\(base)/v2/app/blobs/uploads/"]).header("Location"))
        let payload = "\(server.directory.path)/payload"
        _ = FileManager.default.createFile(atPath: payload, contents: Data("0123456789".utf8))
        for range in ["bytes=0-9, 10-19", "0-9", "-5", "0-99999999999999999999999999", "9-0", "🙂"] {
            let answer = server.curl(["-X", "PATCH", "-H", "Content-Range: \(range)", "-H", "Content-Range: 0-3",
                                      "--data-binary", "@\(payload)", "\(base)\(location)"])
            #expect((200..<500).contains(answer.status), "\(range): \(answer.status)")
        }
        // Numbers past every integer type: a 4xx naming the header, and the worker lives on.
        let digest = "sha256:" + String(repeating: "a", count: 64)
        for (method, uri) in [("PATCH", "\(base)\(location)"), ("PUT", "\(base)\(location)?digest=\(digest)")] {
            for range in ["0-18446744073709551615", "18446744073709551615-18446744073709551615", "0-9223372036854775808"] {
                let answer = server.curl(["-X", method, "-H", "Content-Range: \(range)", "--data-binary", "x", uri])
                #expect(answer.status == 400, "\(method) \(range): \(answer.text)")
                #expect(answer.errorCode == "BLOB_UPLOAD_INVALID", "\(method) \(range)")
                #expect(answer.text.contains("Content-Range"), "\(method) \(range)")
            }
        }
        // Range is nginx's to answer (the worker never parses it): at the edges too.
        let abc = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        _ = FileManager.default.createFile(atPath: "\(server.directory.path)/abc", contents: Data("abc".utf8))
        #expect(server.curl(["-X", "POST", "--data-binary", "@\(server.directory.path)/abc", "\(base)/v2/app/blobs/uploads/?digest=\(abc)"]).status == 201)
        for range in ["bytes=0-18446744073709551615", "bytes=18446744073709551615-", "bytes=-18446744073709551616",
                      "bytes=1-0", "bytes=0-0,1-1,2-2", "bytes=9223372036854775807-9223372036854775808"] {
            let answer = server.curl(["-H", "Range: \(range)", "\(base)/v2/app/blobs/\(abc)"])
            #expect([200, 206, 416].contains(answer.status), "Range \(range): \(answer.status)")
        }
        #expect(server.curl(["\(base)/v2/"]).status == 200, "the worker is still there")
        #expect(server.curl(["\(base)\(location)"]).status == 204, "the session survived")

        let bigManifest = "\(server.directory.path)/big"
        _ = FileManager.default.createFile(atPath: bigManifest, contents: Data(repeating: 32, count: (4 << 20) + 10))
        let tooBig = server.curl(["-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json",
                                  "--data-binary", "@\(bigManifest)", "\(base)/v2/app/manifests/v1"])
        #expect(tooBig.status == 413)
        #expect(tooBig.errorCode == "MANIFEST_INVALID")
        let chunkedTooBig = server.curl(["-X", "PUT", "-H", "Transfer-Encoding: chunked", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json",
                                         "--data-binary", "@\(bigManifest)", "\(base)/v2/app/manifests/v1"])
        #expect(chunkedTooBig.status == 413)

        // The cap on open sessions: 3 for this worker, one is open already.
        let opened = (0..<3).map { _ in server.curl(["-X", "POST", "\(base)/v2/app/blobs/uploads/"]).status }
        #expect(opened == [202, 202, 429])
        #expect(server.curl(["-X", "POST", "\(base)/v2/app/blobs/uploads/"]).errorCode == "TOOMANYREQUESTS")
        #expect(server.curl(["-X", "POST", "\(base)/v2/other/blobs/uploads/"]).status == 202)

        #expect(!server.workerLog.contains("\"status\":\"5"), "no 5xx from client mistakes")
    }
}
