import Foundation
import Testing
import IntegrationSupport

/// What the distribution spec's newer parts need from nginx as well as the worker:
/// several OCI-Tag headers, the digest as ETag and 304, sha512 content served from disk,
/// no gzip on any API answer, Retry-After on every 429.
func sha512(_ data: Data) -> String { Shell.sha512Digest(data) }

@Suite(.serialized) struct SpecHeadersTests {
    /// Debian's nginx.conf turns gzip on for the whole http{}; this goes further.
    static let gzipEverything = "gzip on; gzip_types *; gzip_min_length 1; gzip_proxied any;"

    func file(_ server: RegistryServer, _ bytes: Data) -> String {
        let path = "\(server.directory.path)/\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: path, contents: bytes)
        return path
    }

    /// Pushes a config blob and an image manifest naming it; returns the manifest and its sha256 digest.
    func pushImage(_ server: RegistryServer, _ repository: String) -> (Data, String) {
        let base = server.baseURL
        let config = Data("{\"architecture\":\"amd64\",\"os\":\"linux\"}".utf8)
        let configDigest = sha256(config)
        _ = server.curl(["-X", "POST", "--data-binary", "@\(file(server, config))", "\(base)/v2/\(repository)/blobs/uploads/?digest=\(configDigest)"])
        let manifest = Data("""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(configDigest)","size":\(config.count)},"layers":[]}
            """.utf8)
        return (manifest, sha256(manifest))
    }

    @Test func tagParametersDigestETagsSha512AndNoGzipThroughNginx() throws {
        let server = try RegistryServer(workerArguments: ["--max-upload-sessions", "1"], nginxHTTPDirectives: Self.gzipEverything)
        defer { server.stop() }
        let base = server.baseURL
        let (manifest, digest) = pushImage(server, "s/app")
        let manifestFile = file(server, manifest)

        // end-7b: 100 tags of the longest form, over HTTP/2 and HTTP/1.1: one OCI-Tag each.
        let tags = (0..<100).map { "t\($0)-" + String(repeating: "x", count: 122) }
        for (index, version) in ["--http2", "--http1.1"].enumerated() {
            let chosen = tags.map { "\($0)\(index)" }.map { String($0.suffix(128)) }
            let put = server.curl([version, "-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json",
                                   "--data-binary", "@\(manifestFile)",
                                   "\(base)/v2/s/app/manifests/\(digest)?" + chosen.map { "tag=\($0)" }.joined(separator: "&")])
            #expect(put.status == 201, "\(version): \(put.text)")
            #expect(put.headers["oci-tag"] == chosen, "\(version)")
        }
        let tooMany = server.curl(["-X", "PUT", "--data-binary", "@\(manifestFile)",
                                   "\(base)/v2/s/app/manifests/\(digest)?" + (0...100).map { "tag=n\($0)" }.joined(separator: "&")])
        #expect(tooMany.status == 414 && tooMany.errorCode == "UNSUPPORTED")
        #expect(server.curl(["\(base)/v2/s/app/tags/list"]).text.contains("\"t99-"))

        // ETag is the quoted digest (not nginx's mtime-size), If-None-Match answers 304.
        let quoted = "\"\(digest)\""
        for url in ["\(base)/v2/s/app/manifests/\(digest)", "\(base)/v2/s/app/manifests/\(tags[0])0"] {
            let get = server.curl([url])
            #expect(get.status == 200 && get.header("etag") == quoted && get.body == manifest, "\(url)")
            let again = server.curl(["-H", "If-None-Match: \(quoted)", url])
            #expect(again.status == 304 && again.body.isEmpty && again.header("etag") == quoted, "\(url)")
            #expect(server.curl(["-I", "-H", "If-None-Match: \(quoted)", url]).status == 304)
            #expect(server.curl(["-H", "If-None-Match: \"other\"", url]).status == 200)
            // No If-Modified-Since shortcut: a tag may move to an older file.
            #expect(server.curl(["-H", "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT", url]).status == 200)
        }

        // sha512: session opened for it, chunks, final PUT; served from blobs/sha512 by nginx.
        let layer = Data(SeededBytes(seed: 12).nextArray(200_000))
        let layerDigest = sha512(layer)
        let session = try #require(server.curl(["-X", "POST", "\(base)/v2/s/big/blobs/uploads/?digest-algorithm=sha512"]).header("location"))
        let patched = server.curl(["-X", "PATCH", "-H", "Content-Range: 0-99999", "--data-binary", "@\(file(server, layer.prefix(100_000)))",
                                   "\(base)\(session)"])
        #expect(patched.status == 202)
        let finished = server.curl(["-X", "PUT", "-H", "Content-Range: 100000-199999", "--data-binary", "@\(file(server, layer.suffix(100_000)))",
                                    "\(base)\(patched.header("location") ?? session)?digest=\(layerDigest)"])
        #expect(finished.status == 201 && finished.header("docker-content-digest") == layerDigest)
        let pulled = server.curl(["-H", "Accept-Encoding: gzip", "\(base)/v2/s/big/blobs/\(layerDigest)"])
        #expect(pulled.status == 200 && pulled.body == layer)
        #expect(pulled.header("docker-content-digest") == layerDigest && pulled.header("etag") == "\"\(layerDigest)\"")
        #expect(pulled.header("cache-control") == "max-age=31536000, immutable")
        #expect(FileManager.default.fileExists(atPath: "\(server.store)/s/big/blobs/sha512/\(layerDigest.dropFirst(7))"))
        let range = server.curl(["-H", "Range: bytes=10-19", "\(base)/v2/s/big/blobs/\(layerDigest)"])
        #expect(range.status == 206 && range.body == layer.subdata(in: 10..<20))

        // No answer of /v2/ is ever compressed, though the http{} gzips everything.
        for url in ["\(base)/v2/s/app/tags/list", "\(base)/v2/s/app/manifests/\(digest)", "\(base)/v2/s/big/blobs/\(layerDigest)",
                    "\(base)/v2/_catalog", "\(base)/v2/s/app/manifests/missing", "\(base)/v2/"] {
            let answer = server.curl(["-H", "Accept-Encoding: gzip, deflate, br", url])
            #expect(answer.header("content-encoding") == nil, "\(url)")
        }

        // The worker's 429 keeps its Retry-After through nginx.
        #expect(server.curl(["-X", "POST", "\(base)/v2/s/busy/blobs/uploads/"]).status == 202)
        let busy = server.curl(["-X", "POST", "\(base)/v2/s/busy/blobs/uploads/"])
        #expect(busy.status == 429 && busy.errorCode == "TOOMANYREQUESTS" && busy.header("retry-after") != nil)
    }

    /// A 429 nginx makes itself (a limit_req an operator adds) has Retry-After and the OCI body.
    @Test func nginxsOwn429CarriesRetryAfter() throws {
        let server = try RegistryServer(nginxHTTPDirectives:
            "limit_req_zone $binary_remote_addr zone=berth_test:1m rate=1r/m; limit_req zone=berth_test; limit_req_status 429;")
        defer { server.stop() }
        let limited = server.curl(["\(server.baseURL)/v2/"])
        #expect(limited.status == 429)
        #expect(limited.header("retry-after") == "1" && limited.errorCode == "TOOMANYREQUESTS")
        #expect(limited.header("docker-distribution-api-version") == "registry/2.0")
    }
}
