#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Registry
import Storage
import Testing
import TestSupport

@Suite struct DeleteAndReferrersTests {
    @Test func deletingATagKeepsTheManifestDeletingByDigestRemovesEveryTag() {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let manifest = fixture.imageManifest(in: "app")
        let digest = ContentHasher.digest(of: manifest)
        _ = fixture.send("PUT", "/v2/app/manifests/one", body: manifest)
        _ = fixture.send("PUT", "/v2/app/manifests/two", body: manifest)

        #expect(fixture.send("DELETE", "/v2/app/manifests/one").status == 202)
        #expect(fixture.send("GET", "/v2/app/manifests/one").status == 404)
        #expect(fixture.send("GET", "/v2/app/manifests/two").status == 200)
        #expect(fixture.send("GET", "/v2/app/manifests/\(digest)").status == 200)
        #expect(fixture.errorCode(fixture.send("DELETE", "/v2/app/manifests/one")) == "MANIFEST_UNKNOWN")

        #expect(fixture.send("DELETE", "/v2/app/manifests/\(digest)").status == 202)
        #expect(fixture.send("GET", "/v2/app/manifests/two").status == 404)
        #expect(fixture.send("GET", "/v2/app/manifests/\(digest)").status == 404)
        #expect(String(decoding: fixture.send("GET", "/v2/app/tags/list").body, as: UTF8.self) == "{\"name\":\"app\",\"tags\":[]}")
    }

    @Test func deletingABlobRemovesItFromThatRepositoryOnly() {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let digest = fixture.pushBlob([1, 2, 3], to: "one")
        fixture.pushBlob([1, 2, 3], to: "two")
        #expect(fixture.send("DELETE", "/v2/one/blobs/\(digest)").status == 202)
        #expect(fixture.send("HEAD", "/v2/one/blobs/\(digest)").status == 404)
        #expect(fixture.send("HEAD", "/v2/two/blobs/\(digest)").status == 200)
        #expect(fixture.errorCode(fixture.send("DELETE", "/v2/one/blobs/\(digest)")) == "BLOB_UNKNOWN")
    }

    @Test func referrersAreListedFilteredAndForgottenOnDelete() throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let image = fixture.imageManifest(in: "app")
        let subject = ContentHasher.digest(of: image)
        _ = fixture.send("PUT", "/v2/app/manifests/v1", body: image)
        let empty = fixture.send("GET", "/v2/app/referrers/\(subject)")
        #expect(empty.status == 200)
        #expect(empty.header("Content-Type") == MediaType.ociIndex)

        let config = Array("{}".utf8)
        let configDigest = fixture.pushBlob(config, to: "app")
        var referrerDigests: [Digest] = []
        for artifactType in ["application/vnd.example.sbom", "application/vnd.example.signature"] {
            let body = Array("""
                {"schemaVersion":2,"mediaType":"\(MediaType.ociManifest)","artifactType":"\(artifactType)","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"\(configDigest)","size":2},"layers":[],"subject":{"mediaType":"\(MediaType.ociManifest)","digest":"\(subject)","size":\(image.count)},"annotations":{"kind":"\(artifactType)"}}
                """.utf8)
            let put = fixture.send("PUT", "/v2/app/manifests/\(ContentHasher.digest(of: body))",
                                   headers: ["content-type": MediaType.ociManifest], body: body)
            #expect(put.status == 201)
            #expect(put.header("OCI-Subject") == subject.description)
            referrerDigests.append(ContentHasher.digest(of: body))
        }
        struct Index: Decodable {
            struct Entry: Decodable {
                let digest: String
                let artifactType: String?
                let annotations: [String: String]?
            }
            let manifests: [Entry]
        }
        let all = try JSONDecoder().decode(Index.self, from: Data(fixture.send("GET", "/v2/app/referrers/\(subject)").body))
        #expect(Set(all.manifests.map(\.digest)) == Set(referrerDigests.map(\.description)))
        #expect(all.manifests.allSatisfy { $0.annotations?["kind"] == $0.artifactType })

        let filtered = fixture.send("GET", "/v2/app/referrers/\(subject)?artifactType=application/vnd.example.sbom")
        #expect(filtered.header("OCI-Filters-Applied") == "artifactType")
        let sboms = try JSONDecoder().decode(Index.self, from: Data(filtered.body))
        #expect(sboms.manifests.map(\.digest) == [referrerDigests[0].description])

        #expect(fixture.send("DELETE", "/v2/app/manifests/\(referrerDigests[0])").status == 202)
        let after = try JSONDecoder().decode(Index.self, from: Data(fixture.send("GET", "/v2/app/referrers/\(subject)").body))
        #expect(after.manifests.map(\.digest) == [referrerDigests[1].description])
    }
}

@Suite struct WriteOnceTagAnswerTests {
    @Test func movingOrDeletingAWriteOnceTagIs403DeniedNamingTheRule() throws {
        let directory = TemporaryDirectory(prefix: "berth-registry")
        defer { directory.remove() }
        var storeOptions = Store.Options()
        storeOptions.immutableTags = [try #require(ImmutableTagRule("app v*"))]
        let registry = Registry(store: Store(layout: StoreLayout(root: directory.path), options: storeOptions))
        let fixture = RegistryFixture(registry: registry, directory: directory)
        let first = fixture.imageManifest(in: "app", seed: 1)
        let second = fixture.imageManifest(in: "app", seed: 2)
        #expect(fixture.send("PUT", "/v2/app/manifests/v1", body: first).status == 201)
        #expect(fixture.send("PUT", "/v2/app/manifests/v1", body: first).status == 201)
        let moved = fixture.send("PUT", "/v2/app/manifests/v1", body: second)
        #expect(moved.status == 403)
        #expect(fixture.errorCode(moved) == "DENIED")
        #expect(String(decoding: moved.body, as: UTF8.self).contains("immutable_tags = app v*"))
        let deleted = fixture.send("DELETE", "/v2/app/manifests/v1")
        #expect(deleted.status == 403 && fixture.errorCode(deleted) == "DENIED")
        #expect(fixture.send("GET", "/v2/app/manifests/v1").header("Docker-Content-Digest")
                == ContentHasher.digest(of: first).description)
    }
}
