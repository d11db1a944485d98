#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Registry
import Storage
import Testing
import TestSupport

/// The parts of the distribution spec's main branch beyond v1.1.1: tag parameters on a
/// push by digest (end-7b), sha512 uploads (end-4c), 416 on the final chunk, ETag and
/// If-None-Match, Retry-After on every 429.
@Suite struct SpecFeatureTests {
    func values(_ response: RegistryResponse, _ name: String) -> [String] {
        response.headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    func indexEntries(_ fixture: RegistryFixture, _ repository: String) throws -> [Descriptor] {
        // What another process reads from disk.
        return try Store(root: fixture.directory.path).manifests.readIndex(try #require(RepositoryName(repository))).manifests
    }

    // MARK: end-7b

    @Test func tagParametersApplyEveryTagInOneCommitWithOneOCITagHeaderEach() throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let manifest = fixture.imageManifest(in: "app")
        let digest = ContentHasher.digest(of: manifest)
        let put = fixture.send("PUT", "/v2/app/manifests/\(digest)?tag=1.2.3&tag=latest&tag=1.2.3&tag=v%2D1",
                               headers: ["content-type": MediaType.ociManifest], body: manifest)
        #expect(put.status == 201)
        #expect(values(put, "OCI-Tag") == ["1.2.3", "latest", "v-1"])
        #expect(put.header("Docker-Content-Digest") == digest.description)
        let tags = fixture.send("GET", "/v2/app/tags/list")
        #expect(String(decoding: tags.body, as: UTF8.self) == "{\"name\":\"app\",\"tags\":[\"1.2.3\",\"latest\",\"v-1\"]}")
        // One entry per tag and no untagged entry for the same manifest.
        let entries = try indexEntries(fixture, "app")
        #expect(entries.count == 3 && entries.allSatisfy { $0.digest == digest.description && $0.tag != nil })
        #expect(fixture.send("HEAD", "/v2/app/manifests/latest").header("Docker-Content-Digest") == digest.description)

        // A push by tag reports its tag (and parameters) too.
        let byTag = fixture.send("PUT", "/v2/app/manifests/stable?tag=lts&tag=stable", body: manifest)
        #expect(byTag.status == 201 && values(byTag, "OCI-Tag") == ["stable", "lts"])
        // Without parameters a push by digest stays untagged and sends no OCI-Tag.
        let other = fixture.imageManifest(in: "app", seed: 2)
        let plain = fixture.send("PUT", "/v2/app/manifests/\(ContentHasher.digest(of: other))", body: other)
        #expect(plain.status == 201 && values(plain, "OCI-Tag").isEmpty)
    }

    @Test func tagParametersAreLimitedAndValidatedBeforeAnythingIsStored() throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let manifest = fixture.imageManifest(in: "app")
        let digest = ContentHasher.digest(of: manifest)
        let limit = Registry.maximumTagsPerPush
        let longTag = { (index: Int) in "t\(index)-" + String(repeating: "x", count: Tag.maximumLength - 6) }
        let tooMany = (0...limit).map { "tag=\(longTag($0))" }.joined(separator: "&")
        let refused = fixture.send("PUT", "/v2/app/manifests/\(digest)?\(tooMany)", body: manifest)
        #expect(refused.status == 414 && fixture.errorCode(refused) == "UNSUPPORTED")
        let invalid = fixture.send("PUT", "/v2/app/manifests/\(digest)?tag=ok&tag=-bad", body: manifest)
        #expect(invalid.status == 400 && fixture.errorCode(invalid) == "MANIFEST_INVALID")
        let undecodable = fixture.send("PUT", "/v2/app/manifests/\(digest)?tag=%zz", body: manifest)
        #expect(undecodable.status == 400 && fixture.errorCode(undecodable) == "MANIFEST_INVALID")
        #expect(fixture.send("GET", "/v2/app/manifests/\(digest)").status == 404, "nothing stored by a refused push")
        #expect(fixture.send("GET", "/v2/app/manifests/ok").status == 404)

        let most = (0..<limit).map { "tag=\(longTag($0))" }.joined(separator: "&")
        let accepted = fixture.send("PUT", "/v2/app/manifests/\(digest)?\(most)", body: manifest)
        #expect(accepted.status == 201 && values(accepted, "OCI-Tag").count == limit)
        #expect(try indexEntries(fixture, "app").count == limit)
    }

    // MARK: sha512

    @Test func sha512SessionHashesAsBytesArriveAndIsStoredUnderBlobsSha512() throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let bytes = SeededBytes(seed: 51).nextBytes(300_000)
        let digest = ContentHasher.digest(of: bytes, algorithm: .sha512)
        let started = fixture.send("POST", "/v2/app/blobs/uploads/?digest-algorithm=sha512")
        #expect(started.status == 202)
        let location = try #require(started.header("Location"))
        let id = try #require(UploadID(String(location.split(separator: "/").last ?? "")))
        #expect(fixture.send("PATCH", location, headers: ["content-range": "0-99999"], body: Array(bytes[..<100_000])).status == 202)
        // The session's state is SHA-512's, saved with its algorithm.
        let layout = StoreLayout(root: fixture.directory.path)
        struct Record: Decodable {
            let algorithm: String?
            let sha256State: String?
            let sha512State: String?
        }
        let state = try #require(FileManager.default.contents(atPath: layout.uploadStateFile(id)))
        let record = try JSONDecoder().decode(Record.self, from: state)
        #expect(record.algorithm == "sha512" && record.sha512State != nil && record.sha256State == nil)
        // The final PUT continues the saved SHA-512 state instead of re-reading the data:
        // bytes changed on disk behind its back go unnoticed (test only: proves no re-read).
        let data = fopen(layout.uploadDataFile(id), "r+")
        fputs("XXXX", data)
        fclose(data)
        let done = fixture.send("PUT", "\(location)?digest=\(digest)", body: Array(bytes[100_000...]))
        #expect(done.status == 201 && done.header("Docker-Content-Digest") == digest.description)
        let head = fixture.send("HEAD", "/v2/app/blobs/\(digest)")
        #expect(head.status == 200)
        #expect(head.header("X-Accel-Redirect") == "/_berth/store/app/blobs/sha512/\(digest.hex)")
        #expect(FileManager.default.fileExists(atPath: layout.blobFile(try #require(RepositoryName("app")), digest)))
    }

    @Test func sessionAlgorithmAndFinalDigestMustAgreeWhenTheClientChoseOne() throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let bytes = Array("sixty-four bytes of sha512 test content, or thereabouts".utf8)
        let sha256 = ContentHasher.digest(of: bytes), sha512 = ContentHasher.digest(of: bytes, algorithm: .sha512)

        let chosen = try #require(fixture.send("POST", "/v2/app/blobs/uploads/?digest-algorithm=sha512").header("Location"))
        _ = fixture.send("PATCH", chosen, body: bytes)
        let mismatch = fixture.send("PUT", "\(chosen)?digest=\(sha256)")
        #expect(mismatch.status == 400 && fixture.errorCode(mismatch) == "DIGEST_INVALID")
        #expect(fixture.send("PUT", "\(chosen)?digest=\(sha512)").status == 201, "the session survives the refusal")

        // A session opened without digest-algorithm still takes a sha512 digest (clients
        // need not announce it; the conformance suite does not).
        let plain = try #require(fixture.send("POST", "/v2/other/blobs/uploads/").header("Location"))
        _ = fixture.send("PATCH", plain, body: bytes)
        #expect(fixture.send("PUT", "\(plain)?digest=\(sha512)").status == 201)

        let monolithic = fixture.send("POST", "/v2/third/blobs/uploads/?digest=\(sha512)", body: bytes)
        #expect(monolithic.status == 201 && monolithic.header("Docker-Content-Digest") == sha512.description)
        let contradicting = fixture.send("POST", "/v2/third/blobs/uploads/?digest-algorithm=sha256&digest=\(sha512)", body: bytes)
        #expect(contradicting.status == 400 && fixture.errorCode(contradicting) == "DIGEST_INVALID")
        let unknown = fixture.send("POST", "/v2/third/blobs/uploads/?digest-algorithm=md5")
        #expect(unknown.status == 400 && fixture.errorCode(unknown) == "DIGEST_INVALID")
    }

    @Test func sha512ManifestWithTagParametersPushesAndPulls() throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let manifest = fixture.imageManifest(in: "app")
        let digest = ContentHasher.digest(of: manifest, algorithm: .sha512)
        let put = fixture.send("PUT", "/v2/app/manifests/\(digest)?tag=a&tag=b", headers: ["content-type": MediaType.ociManifest],
                               body: manifest)
        #expect(put.status == 201 && put.header("Docker-Content-Digest") == digest.description)
        #expect(values(put, "OCI-Tag") == ["a", "b"])
        for reference in ["a", "b", digest.description] {
            let get = fixture.send("GET", "/v2/app/manifests/\(reference)")
            #expect(get.header("Docker-Content-Digest") == digest.description, "\(reference)")
            #expect(get.header("X-Accel-Redirect") == "/_berth/store/app/blobs/sha512/\(digest.hex)")
        }
    }

    // MARK: 416 on the final chunk

    @Test func finalChunkOutOfOrderIs416AndLeavesTheSessionUsable() throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let bytes = Array("0123456789abcdefghij".utf8)
        let digest = ContentHasher.digest(of: bytes)
        let location = try #require(fixture.send("POST", "/v2/app/blobs/uploads/").header("Location"))
        #expect(fixture.send("PATCH", location, headers: ["content-range": "0-9"], body: Array(bytes[..<10])).status == 202)
        for range in ["12-21", "0-9", "5-14"] {
            let late = fixture.send("PUT", "\(location)?digest=\(digest)", headers: ["content-range": range], body: Array(bytes[10...]))
            #expect(late.status == 416, "\(range)")
            #expect(fixture.errorCode(late) == "BLOB_UPLOAD_INVALID" && late.header("Range") == "0-9")
        }
        let status = fixture.send("GET", location)
        #expect(status.status == 204 && status.header("Range") == "0-9")
        let done = fixture.send("PUT", "\(location)?digest=\(digest)", headers: ["content-range": "10-19"], body: Array(bytes[10...]))
        #expect(done.status == 201)
    }

    // MARK: ETag, If-None-Match

    @Test func ifNoneMatchWithTheDigestIs304OnBlobsAndManifests() throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let blob = fixture.pushBlob(Array("etag".utf8), to: "app")
        let manifest = fixture.imageManifest(in: "app")
        let manifestDigest = ContentHasher.digest(of: manifest)
        #expect(fixture.send("PUT", "/v2/app/manifests/v1", body: manifest).status == 201)
        let quoted = { (digest: Digest) in "\"\(digest)\"" }

        for (method, uri, digest, cache) in [
            ("GET", "/v2/app/blobs/\(blob)", blob, "max-age=31536000, immutable"),
            ("HEAD", "/v2/app/blobs/\(blob)", blob, "max-age=31536000, immutable"),
            ("GET", "/v2/app/manifests/\(manifestDigest)", manifestDigest, "max-age=31536000, immutable"),
            ("HEAD", "/v2/app/manifests/v1", manifestDigest, "no-cache"),
        ] {
            for condition in [quoted(digest), "W/\(quoted(digest))", "\"other\", \(quoted(digest))", "*"] {
                let answer = fixture.send(method, uri, headers: ["if-none-match": condition])
                #expect(answer.status == 304, "\(method) \(uri) \(condition)")
                #expect(answer.header("ETag") == quoted(digest) && answer.header("Docker-Content-Digest") == digest.description)
                #expect(answer.header("X-Accel-Redirect") == nil && answer.body.isEmpty)
                #expect(answer.header("Cache-Control") == cache)
            }
            let changed = fixture.send(method, uri, headers: ["if-none-match": "\"sha256:\(String(repeating: "0", count: 64))\""])
            #expect(changed.status == 200 && changed.header("X-Accel-Redirect") != nil)
        }
        // Absent content is 404 whatever the condition.
        let absent = ContentHasher.digest(of: [0])
        #expect(fixture.send("GET", "/v2/app/blobs/\(absent)", headers: ["if-none-match": "*"]).status == 404)
    }

    // MARK: Retry-After

    @Test func every429CarriesRetryAfter() throws {
        let directory = TemporaryDirectory(prefix: "berth-registry")
        defer { directory.remove() }
        var options = Store.Options()
        options.maximumUploadSessions = 1
        let registry = Registry(store: Store(layout: StoreLayout(root: directory.path), options: options))
        #expect(registry.handle(RegistryRequest(method: "POST", uri: "/v2/app/blobs/uploads/")).status == 202)
        let refused = registry.handle(RegistryRequest(method: "POST", uri: "/v2/app/blobs/uploads/"))
        #expect(refused.status == 429 && refused.header("Retry-After") != nil)
        let lock = RegistryError(.lockTimeout(path: "/x")).response
        #expect(lock.status == 429 && lock.header("Retry-After") == "1")
        // Any 429, however made, gets one (once).
        let plain = RegistryError(.tooManyRequests, "slow down").response
        #expect(plain.header("Retry-After") == "1")
        let own = RegistryError(.tooManyRequests, "x", headers: [("Retry-After", "30")]).response
        #expect(own.headers.filter { $0.name == "Retry-After" }.map(\.value) == ["30"])
    }
}
