import Foundation
import Testing
import IntegrationSupport

/// The upload and pull protocol driven with curl through nginx.
@Suite(.serialized) struct UploadProtocolTests {
    func write(_ bytes: [UInt8], _ path: String) -> String {
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    func sha256(_ path: String) -> String {
        "sha256:" + (Shell.run("sha256sum", [path]).stdout.split(separator: " ").first.map(String.init) ?? "")
    }

    @Test func chunkedUploadInSeveralPatchesThenHeadAndRangeThroughNginx() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        var random = SeededBytes(seed: 5)
        let chunks = [random.next(700_000), random.next(1_300_000), random.next(12_345)]
        let whole = write(chunks.flatMap { $0 }, "\(server.directory.path)/whole")
        let digest = sha256(whole)

        let started = server.curl(["-X", "POST", "\(server.baseURL)/v2/team/app/blobs/uploads/"])
        #expect(started.status == 202)
        var location = try #require(started.header("Location"))
        var offset = 0
        for (position, chunk) in chunks.enumerated() {
            let file = write(chunk, "\(server.directory.path)/chunk\(position)")
            let patched = server.curl(["-X", "PATCH", "-H", "Content-Type: application/octet-stream",
                                       "-H", "Content-Range: \(offset)-\(offset + chunk.count - 1)",
                                       "--data-binary", "@\(file)", "\(server.baseURL)\(location)"])
            offset += chunk.count
            #expect(patched.status == 202)
            #expect(patched.header("Range") == "0-\(offset - 1)")
            location = try #require(patched.header("Location"))
        }
        let status = server.curl(["\(server.baseURL)\(location)"])
        #expect(status.status == 204)
        #expect(status.header("Range") == "0-\(offset - 1)")
        let done = server.curl(["-X", "PUT", "\(server.baseURL)\(location)?digest=\(digest)"])
        #expect(done.status == 201)
        #expect(done.header("Docker-Content-Digest") == digest)

        let blobURL = "\(server.baseURL)/v2/team/app/blobs/\(digest)"
        let head = server.curl(["-I", blobURL])
        #expect(head.status == 200)
        #expect(head.header("Content-Length") == String(offset))
        #expect(head.header("Docker-Content-Digest") == digest)
        #expect(head.header("Docker-Distribution-API-Version") == "registry/2.0")

        let get = server.curl([blobURL])
        #expect(get.status == 200)
        #expect(get.body == Data(chunks.flatMap { $0 }))
        let range = server.curl(["-H", "Range: bytes=700000-700009", blobURL])
        #expect(range.status == 206)
        #expect(range.body == Data(chunks[1][0..<10]))
        #expect(range.header("Content-Range") == "bytes 700000-700009/\(offset)")
        #expect(range.header("Docker-Content-Digest") == digest)
    }

    @Test func transferEncodingChunkedPatchAndPutAreStreamedToTheEnd() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        var random = SeededBytes(seed: 6)
        let first = write(random.next(3_000_000), "\(server.directory.path)/first")
        let last = write(random.next(100_000), "\(server.directory.path)/last")
        let whole = write((FileManager.default.contents(atPath: first).map(Array.init) ?? [])
            + (FileManager.default.contents(atPath: last).map(Array.init) ?? []), "\(server.directory.path)/whole")
        let digest = sha256(whole)

        let location = try #require(server.curl(["-X", "POST", "\(server.baseURL)/v2/app/blobs/uploads/"]).header("Location"))
        // As the docker engine sends it: chunked, no Content-Type, no Content-Range.
        let patched = server.curl(["-X", "PATCH", "-H", "Transfer-Encoding: chunked", "-H", "Content-Type:",
                                   "--data-binary", "@\(first)", "\(server.baseURL)\(location)"])
        #expect(patched.status == 202)
        #expect(patched.header("Range") == "0-2999999")
        // As python-dxf sends the end: one chunked PUT carrying the last bytes.
        let next = try #require(patched.header("Location"))
        let done = server.curl(["-X", "PUT", "-H", "Transfer-Encoding: chunked", "--data-binary", "@\(last)",
                                "\(server.baseURL)\(next)?digest=\(digest)"])
        #expect(done.status == 201)
        let get = server.curl(["\(server.baseURL)/v2/app/blobs/\(digest)"])
        #expect(get.body == FileManager.default.contents(atPath: whole))
    }

    /// A blob pushed again is answered at once and its second copy set aside; the
    /// worker's background loop frees it within a few seconds.
    @Test func secondCopyOfABlobIsFreedInTheBackground() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let file = write([UInt8](repeating: 42, count: 20 << 20), "\(server.directory.path)/blob")
        let digest = sha256(file)
        for repository in ["one", "two"] {
            let posted = server.curl(["-X", "POST", "-H", "Content-Type: application/octet-stream", "--data-binary", "@\(file)",
                                      "\(server.baseURL)/v2/\(repository)/blobs/uploads/?digest=\(digest)"])
            #expect(posted.status == 201)
        }
        let trash = "\(server.store)/_berth/trash"
        var left = (try? FileManager.default.contentsOfDirectory(atPath: trash)) ?? []
        for _ in 0..<50 where !left.isEmpty {
            usleep(100_000)
            left = (try? FileManager.default.contentsOfDirectory(atPath: trash)) ?? []
        }
        #expect(left.isEmpty)
        let pulled = server.curl(["\(server.baseURL)/v2/two/blobs/\(digest)"])
        #expect(pulled.status == 200 && pulled.body == Data(repeating: 42, count: 20 << 20))
    }

    @Test func monolithicPostWithDigestCompletesInOneRequest() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let file = write(Array("single request".utf8), "\(server.directory.path)/blob")
        let digest = sha256(file)
        let posted = server.curl(["-X", "POST", "-H", "Content-Type: application/octet-stream", "--data-binary", "@\(file)",
                                  "\(server.baseURL)/v2/app/blobs/uploads/?digest=\(digest)"])
        #expect(posted.status == 201)
        #expect(posted.header("Location") == "/v2/app/blobs/\(digest)")
        #expect(server.curl(["-I", "\(server.baseURL)/v2/app/blobs/\(digest)"]).status == 200)
    }
}
