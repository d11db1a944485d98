import Storage
import Testing
import TestSupport

@Suite struct ManifestStoreTests {
    @Test(arguments: [MediaType.ociManifest, MediaType.dockerManifest])
    func imageManifestIsStoredByteExactAndTagged(_ mediaType: String) throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("team/app")
        let body = try fixture.imageManifest(in: "team/app", mediaType: mediaType)
        let pushed = try fixture.manifests.put(body, contentType: mediaType, reference: .tag(Tag("v1")!), repository: repo)
        #expect(pushed.digest == ContentHasher.digest(of: body))
        let resolved = try fixture.manifests.resolve(.tag(Tag("v1")!), in: repo)
        #expect(resolved.digest == pushed.digest)
        #expect(resolved.mediaType == mediaType)
        #expect(fixture.fileContents(fixture.layout.blobFile(repo, pushed.digest)) == body)
        #expect(try fixture.manifests.tags(of: repo) == ["v1"])
    }

    @Test(arguments: [MediaType.ociIndex, MediaType.dockerManifestList])
    func indexNeedsItsChildrenInTheRepository(_ mediaType: String) throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("multi")
        let child = try fixture.imageManifest(in: "multi")
        let childDigest = ContentHasher.digest(of: child)
        let index = fixture.indexManifest(children: [(childDigest, child.count)], mediaType: mediaType)
        #expect(throws: StorageError.manifestBlobUnknown(childDigest)) {
            try fixture.manifests.put(index, contentType: mediaType, reference: .tag(Tag("latest")!), repository: repo)
        }
        _ = try fixture.manifests.put(child, contentType: nil, reference: .digest(childDigest), repository: repo)
        let pushed = try fixture.manifests.put(index, contentType: mediaType, reference: .tag(Tag("latest")!), repository: repo)
        #expect(try fixture.manifests.resolve(.tag(Tag("latest")!), in: repo).mediaType == mediaType)
        #expect(try fixture.manifests.resolve(.digest(childDigest), in: repo).digest == childDigest)
        #expect(pushed.document.children.map(\.digest) == [childDigest])
    }

    @Test func artifactWithCustomConfigAndSubjectIsAccepted() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("artifacts")
        let subject = ContentHasher.digest(of: [1])
        let body = try fixture.imageManifest(in: "artifacts", layerCount: 1, configMediaType: "application/vnd.example.sbom",
                                             subject: (subject, 1))
        let pushed = try fixture.manifests.put(body, contentType: MediaType.ociManifest, reference: .tag(Tag("sbom")!), repository: repo)
        #expect(pushed.document.subject?.digest == subject)
        #expect(pushed.document.artifactType == "application/vnd.example.sbom")
    }

    @Test func manifestNamingAMissingBlobIsRefusedAndNothingIsWritten() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let missing = ContentHasher.digest(of: [42])
        let body = Array("""
            {"schemaVersion":2,"mediaType":"\(MediaType.ociManifest)","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(missing)","size":1},"layers":[]}
            """.utf8)
        #expect(throws: StorageError.manifestBlobUnknown(missing)) {
            try fixture.manifests.put(body, contentType: nil, reference: .tag(Tag("v1")!), repository: repo)
        }
        #expect(!fixture.repositories.exists(repo))
    }

    @Test(arguments: [
        ("{\"schemaVersion\":1,\"name\":\"x\",\"tag\":\"v1\",\"fsLayers\":[]}", nil as String?),
        ("{}", MediaType.dockerSchema1Signed),
        ("not json", MediaType.ociManifest),
        ("{\"schemaVersion\":3,\"mediaType\":\"\(MediaType.ociManifest)\"}", nil),
        ("{\"schemaVersion\":2,\"mediaType\":\"\(MediaType.ociManifest)\",\"layers\":[]}", nil),
        ("{\"schemaVersion\":2,\"mediaType\":\"\(MediaType.ociIndex)\"}", nil),
        ("{\"schemaVersion\":2,\"mediaType\":\"\(MediaType.ociIndex)\",\"manifests\":[]}", MediaType.dockerManifestList),
        ("{\"schemaVersion\":2,\"mediaType\":\"application/x-unknown\",\"manifests\":[]}", nil),
        ("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"a/b\",\"digest\":\"sha256:zz\",\"size\":1}]}", nil),
        ("{\"schemaVersion\":2,\"manifests\":\"nope\"}", MediaType.ociIndex),
    ])
    func invalidManifestsAreRefusedWithAReason(_ body: String, _ contentType: String?) {
        #expect(throws: StorageError.self) {
            try ManifestDocument(body: Array(body.utf8), contentType: contentType)
        }
        do {
            _ = try ManifestDocument(body: Array(body.utf8), contentType: contentType)
        } catch {
            guard case .manifestInvalid(let reason) = error else {
                Issue.record("expected manifestInvalid, got \(error)")
                return
            }
            #expect(!reason.isEmpty)
        }
    }

    @Test func digestReferenceMustMatchTheBody() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let body = try fixture.imageManifest(in: "app")
        let other = ContentHasher.digest(of: [0])
        #expect(throws: StorageError.digestMismatch(expected: other, computed: ContentHasher.digest(of: body))) {
            try fixture.manifests.put(body, contentType: nil, reference: .digest(other), repository: fixture.name("app"))
        }
    }

    @Test func movingATagKeepsTheOldManifestListedUntagged() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let first = try fixture.imageManifest(in: "app", seed: 1)
        let second = try fixture.imageManifest(in: "app", seed: 2)
        let tag = Tag("latest")!
        let one = try fixture.manifests.put(first, contentType: nil, reference: .tag(tag), repository: repo).digest
        let two = try fixture.manifests.put(second, contentType: nil, reference: .tag(tag), repository: repo).digest
        let index = try fixture.manifests.readIndex(repo)
        #expect(index.manifests.count == 2)
        #expect(index.descriptor(for: tag)?.digest == two.description)
        #expect(index.descriptor(for: one)?.tag == nil)
        #expect(try fixture.manifests.resolve(.digest(one), in: repo).digest == one)
        // Tagging the untagged manifest replaces its untagged entry.
        _ = try fixture.manifests.put(first, contentType: nil, reference: .tag(Tag("old")!), repository: repo)
        #expect(try fixture.manifests.readIndex(repo).manifests.count == 2)
        #expect(try fixture.manifests.tags(of: repo) == ["latest", "old"])
    }
}

@Suite struct RepositoryStoreTests {
    @Test func nestedNameInsideALayoutIsRefusedInBothOrders() throws {
        let first = StoreFixture()
        defer { first.directory.remove() }
        try first.pushBlob([1], to: "team")
        #expect(throws: StorageError.self) { try first.pushBlob([2], to: "team/blobs") }
        #expect(throws: StorageError.self) { try first.pushBlob([2], to: "team/index.json") }
        try first.pushBlob([3], to: "team/app")

        let second = StoreFixture()
        defer { second.directory.remove() }
        try second.pushBlob([1], to: "team/blobs")
        #expect(throws: StorageError.self) { try second.pushBlob([2], to: "team") }
        try second.pushBlob([1], to: "org/blobs")
        try second.pushBlob([1], to: "x/tags")
    }

    @Test func catalogListsNestedRepositoriesSorted() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        for name in ["team/app", "team", "alpha", "team/app/api", "org/blobs"] {
            try fixture.pushBlob([1], to: name)
        }
        #expect(try fixture.repositories.catalog().map(\.value) == ["alpha", "org/blobs", "team", "team/app", "team/app/api"])
    }

    @Test func newLayoutIsAValidOCIImageLayout() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        try fixture.pushBlob([1], to: "app")
        let repo = fixture.name("app")
        #expect(fixture.fileContents(fixture.layout.layoutFile(repo)).map { String(decoding: $0, as: UTF8.self) }
            == "{\"imageLayoutVersion\":\"1.0.0\"}")
        let index = try #require(fixture.fileContents(fixture.layout.indexFile(repo)))
        #expect(try ImageIndex.decode(index, path: "index.json").schemaVersion == 2)
    }
}

@Suite struct IndexCacheTests {
    @Test func cachedIndexNeverHidesALaterWrite() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let first = try fixture.imageManifest(in: "app", seed: 1)
        let second = try fixture.imageManifest(in: "app", seed: 2)
        let store = fixture.manifests
        let tag = Reference.tag(Tag("latest")!)
        let one = try store.put(first, contentType: nil, reference: tag, repository: repo).digest
        // Age the file so the cache keeps it, and read it through the cache twice.
        var times = [timeval(tv_sec: time(nil) - 60, tv_usec: 0), timeval(tv_sec: time(nil) - 60, tv_usec: 0)]
        #expect(utimes(fixture.layout.indexFile(repo), &times) == 0)
        #expect(try store.resolve(tag, in: repo).digest == one)
        #expect(try store.resolve(tag, in: repo).digest == one)
        // Many quick rewrites (inode numbers get reused): every read sees the latest.
        for round in 0..<50 {
            let body = round % 2 == 0 ? second : first
            let pushed = try store.put(body, contentType: nil, reference: tag, repository: repo).digest
            #expect(try store.resolve(tag, in: repo).digest == pushed)
            #expect(try store.tags(of: repo) == ["latest"])
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
