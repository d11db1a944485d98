#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Registry
import Storage
import Testing
import TestSupport

/// Drives `Registry.handle` in process, as nginx would through FastCGI.
struct RegistryFixture {
    let directory: TemporaryDirectory
    /// Built once, as `berth serve` does: the store's caches are the ones every request uses.
    let registry: Registry

    init(options: Registry.Options = Registry.Options()) {
        directory = TemporaryDirectory(prefix: "berth-registry")
        registry = Registry(store: Store(root: directory.path), options: options)
    }

    /// A fixture over a registry built by the test (other store options).
    init(registry: Registry, directory: TemporaryDirectory) {
        self.directory = directory
        self.registry = registry
    }

    func send(_ method: String, _ uri: String, headers: [String: String] = [:], body: [UInt8] = []) -> RegistryResponse {
        var allHeaders = headers
        if allHeaders["content-length"] == nil, !body.isEmpty { allHeaders["content-length"] = String(body.count) }
        return registry.handle(RegistryRequest(method: method, uri: uri, headers: allHeaders, body: BufferByteSource(body)))
    }

    /// Pushes a blob with POST + PATCH + PUT and returns its digest.
    @discardableResult
    func pushBlob(_ bytes: [UInt8], to name: String) -> Digest {
        let digest = ContentHasher.digest(of: bytes)
        let started = send("POST", "/v2/\(name)/blobs/uploads/")
        let location = started.header("Location") ?? ""
        _ = send("PATCH", location, body: bytes)
        _ = send("PUT", "\(location)?digest=\(digest)")
        return digest
    }

    func imageManifest(in name: String, seed: UInt8 = 1) -> [UInt8] {
        let config = Array("{\"seed\":\(seed)}".utf8)
        let layer = [UInt8](repeating: seed, count: 500)
        let configDigest = pushBlob(config, to: name)
        let layerDigest = pushBlob(layer, to: name)
        return Array("""
            {"schemaVersion":2,"mediaType":"\(MediaType.ociManifest)","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(configDigest)","size":\(config.count)},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(layerDigest)","size":500}]}
            """.utf8)
    }

    /// The OCI error code of an answer, checking the body is the spec's error document.
    func errorCode(_ response: RegistryResponse) -> String? {
        struct Body: Decodable {
            struct Entry: Decodable {
                let code: String
                let message: String
            }
            let errors: [Entry]
        }
        guard response.header("Content-Type") == "application/json",
              let body = try? JSONDecoder().decode(Body.self, from: Data(response.body)) else { return nil }
        return body.errors.first?.code
    }
}

@Suite struct RegistryFlowTests {
    @Test func chunkedPushThenPullAnswersWithAccelRedirects() throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let bytes = SeededBytes(seed: 9).nextBytes(10_000)
        let digest = ContentHasher.digest(of: bytes)

        let started = fixture.send("POST", "/v2/team/app/blobs/uploads/")
        #expect(started.status == 202)
        #expect(started.header("Range") == "0-0")
        let location = try #require(started.header("Location"))
        #expect(location.hasPrefix("/v2/team/app/blobs/uploads/"))
        #expect(started.header("Docker-Upload-UUID").map { location.hasSuffix($0) } == true)

        let first = fixture.send("PATCH", location, headers: ["content-range": "0-5999"], body: Array(bytes[0..<6000]))
        #expect(first.status == 202)
        #expect(first.header("Range") == "0-5999")
        let stale = fixture.send("PATCH", location, headers: ["content-range": "0-3999"], body: Array(bytes[6000...]))
        #expect(stale.status == 416)
        #expect(stale.header("Range") == "0-5999")
        let second = fixture.send("PATCH", location, headers: ["content-range": "bytes=6000-9999"], body: Array(bytes[6000...]))
        #expect(second.status == 202)
        let status = fixture.send("GET", location)
        #expect(status.status == 204)
        #expect(status.header("Range") == "0-9999")
        let done = fixture.send("PUT", "\(location)?digest=\(digest.description.replacingOccurrences(of: ":", with: "%3A"))")
        #expect(done.status == 201)
        #expect(done.header("Docker-Content-Digest") == digest.description)
        #expect(done.header("Location") == "/v2/team/app/blobs/\(digest)")

        let head = fixture.send("HEAD", "/v2/team/app/blobs/\(digest)")
        #expect(head.status == 200)
        #expect(head.header("X-Accel-Redirect") == "/_berth/store/team/app/blobs/sha256/\(digest.hex)")
        #expect(head.header("Docker-Content-Digest") == digest.description)

        let manifest = fixture.imageManifest(in: "team/app")
        let put = fixture.send("PUT", "/v2/team/app/manifests/v1", headers: ["content-type": MediaType.ociManifest], body: manifest)
        #expect(put.status == 201)
        let manifestDigest = ContentHasher.digest(of: manifest)
        #expect(put.header("Docker-Content-Digest") == manifestDigest.description)
        let get = fixture.send("GET", "/v2/team/app/manifests/v1")
        #expect(get.status == 200)
        #expect(get.header("Content-Type") == MediaType.ociManifest)
        #expect(get.header("X-Accel-Redirect") == "/_berth/store/team/app/blobs/sha256/\(manifestDigest.hex)")
        #expect(fixture.send("GET", "/v2/team/app/manifests/\(manifestDigest)").header("Docker-Content-Digest") == manifestDigest.description)

        let tags = fixture.send("GET", "/v2/team/app/tags/list")
        #expect(String(decoding: tags.body, as: UTF8.self) == "{\"name\":\"team/app\",\"tags\":[\"v1\"]}")
        let catalog = fixture.send("GET", "/v2/_catalog")
        #expect(String(decoding: catalog.body, as: UTF8.self) == "{\"repositories\":[\"team/app\"]}")
    }

    @Test func monolithicPostAndMountComplete() throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let bytes = Array("monolithic".utf8)
        let digest = ContentHasher.digest(of: bytes)
        let posted = fixture.send("POST", "/v2/one/blobs/uploads/?digest=\(digest)", body: bytes)
        #expect(posted.status == 201)
        #expect(posted.header("Docker-Content-Digest") == digest.description)
        let mounted = fixture.send("POST", "/v2/two/blobs/uploads/?mount=\(digest)&from=one")
        #expect(mounted.status == 201)
        #expect(fixture.send("HEAD", "/v2/two/blobs/\(digest)").status == 200)
        let fallback = fixture.send("POST", "/v2/three/blobs/uploads/?mount=\(digest)&from=nowhere")
        #expect(fallback.status == 202)
        let noFrom = fixture.send("POST", "/v2/three/blobs/uploads/?mount=\(digest)")
        #expect(noFrom.status == 202)
    }

    @Test func listingsPaginateWithLinkHeaders() {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let manifest = fixture.imageManifest(in: "app")
        for tag in ["c", "a", "b", "d"] {
            _ = fixture.send("PUT", "/v2/app/manifests/\(tag)", body: manifest)
        }
        let first = fixture.send("GET", "/v2/app/tags/list?n=2")
        #expect(String(decoding: first.body, as: UTF8.self) == "{\"name\":\"app\",\"tags\":[\"a\",\"b\"]}")
        #expect(first.header("Link") == "</v2/app/tags/list?n=2&last=b>; rel=\"next\"")
        let second = fixture.send("GET", "/v2/app/tags/list?n=2&last=b")
        #expect(String(decoding: second.body, as: UTF8.self) == "{\"name\":\"app\",\"tags\":[\"c\",\"d\"]}")
        #expect(second.header("Link") == nil)
    }

    /// Every code the spine promises, each provoked once, each a 4xx with the OCI body.
    @Test func everyClientMistakeGetsItsOCIErrorCode() {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let known = fixture.pushBlob([1, 2, 3], to: "app")
        let absent = ContentHasher.digest(of: [9, 9])
        let session = fixture.send("POST", "/v2/app/blobs/uploads/").header("Location") ?? ""
        let manifest = fixture.imageManifest(in: "app")
        let missingLayer = Array("""
            {"schemaVersion":2,"mediaType":"\(MediaType.ociManifest)","config":{"mediaType":"a/b","digest":"\(known)","size":3},"layers":[{"mediaType":"a/c","digest":"\(absent)","size":2}]}
            """.utf8)
        let cases: [(String, RegistryResponse, String, Int)] = [
            ("bad name", fixture.send("GET", "/v2/Bad/tags/list"), "NAME_INVALID", 400),
            ("bad digest", fixture.send("HEAD", "/v2/app/blobs/sha256:1234"), "DIGEST_INVALID", 400),
            ("wrong digest", fixture.send("POST", "/v2/app/blobs/uploads/?digest=\(absent)", body: [1]), "DIGEST_INVALID", 400),
            ("unknown blob", fixture.send("GET", "/v2/app/blobs/\(absent)"), "BLOB_UNKNOWN", 404),
            ("unknown upload", fixture.send("GET", "/v2/app/blobs/uploads/0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"), "BLOB_UPLOAD_UNKNOWN", 404),
            ("bad range", fixture.send("PATCH", session, headers: ["content-range": "x-y"], body: [1]), "BLOB_UPLOAD_INVALID", 400),
            ("range gap", fixture.send("PATCH", session, headers: ["content-range": "5-5"], body: [1]), "BLOB_UPLOAD_INVALID", 416),
            ("short body", fixture.send("PATCH", session, headers: ["content-range": "0-9"], body: [1, 2]), "SIZE_INVALID", 400),
            ("schema1", fixture.send("PUT", "/v2/app/manifests/v1", headers: ["content-type": MediaType.dockerSchema1Signed], body: Array("{}".utf8)), "MANIFEST_INVALID", 400),
            ("missing layer", fixture.send("PUT", "/v2/app/manifests/v1", body: missingLayer), "MANIFEST_BLOB_UNKNOWN", 400),
            ("unknown tag", fixture.send("GET", "/v2/app/manifests/nope"), "MANIFEST_UNKNOWN", 404),
            ("impossible tag", fixture.send("HEAD", "/v2/app/manifests/.INVALID"), "MANIFEST_UNKNOWN", 404),
            ("push to impossible tag", fixture.send("PUT", "/v2/app/manifests/-x", body: manifest), "MANIFEST_INVALID", 400),
            ("unknown repo tags", fixture.send("GET", "/v2/nobody/tags/list"), "NAME_UNKNOWN", 404),
            ("wrong method", fixture.send("POST", "/v2/app/manifests/v1", body: manifest), "UNSUPPORTED", 405),
            ("too large", fixture.send("PUT", "/v2/app/manifests/big", headers: ["content-length": "5000000"]), "MANIFEST_INVALID", 413),
            ("put without digest", fixture.send("PUT", session), "DIGEST_INVALID", 400),
            ("bad n", fixture.send("GET", "/v2/_catalog?n=-1"), "UNSUPPORTED", 400),
        ]
        for (label, response, code, status) in cases {
            #expect(fixture.errorCode(response) == code, "\(label)")
            #expect(response.status == status, "\(label)")
        }
    }

    @Test func everyStorageFailureMapsToOneAnswerAndOnlyRegistryFaultsAre5xx() {
        let digest = ContentHasher.digest(of: [1])
        let name = RepositoryName("a")!
        let clientMistakes: [StorageError] = [
            .repositoryUnknown(name), .blobUnknown(digest), .manifestUnknown(.digest(digest)), .uploadUnknown("x"),
            .uploadRangeMismatch(currentSize: 4), .sizeMismatch(expected: 1, received: 2),
            .digestMismatch(expected: digest, computed: digest), .algorithmMismatch(session: .sha512, digest: digest),
            .manifestInvalid("x"), .manifestBlobUnknown(digest),
            .nameCollision(name, reason: "x"), .unsupported("x"), .bodyInterrupted, .lockTimeout(path: "/x"),
            .tagImmutable(Tag("v1")!, repository: name, rule: "a v*"),
            .quotaExceeded(rule: "a 1GiB", used: 1, adding: 2, limit: 3),
        ]
        for error in clientMistakes { #expect((400..<500).contains(RegistryError(error).status), "\(error)") }
        #expect(RegistryError(.io(operation: "write", path: "/x", errno: 28)).status == 507)
        #expect(RegistryError(.io(operation: "write", path: "/x", errno: 5)).status == 500)
        #expect(RegistryError(.corrupt(path: "/x", reason: "y")).status == 500)
    }
}

extension SeededBytes {
    func nextBytes(_ count: Int) -> [UInt8] {
        var copy = self
        return copy.next(count)
    }
}
