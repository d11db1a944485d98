#if canImport(Glibc)
import Glibc
#endif
import Storage
import Testing
import TestSupport

@Suite struct GarbageCollectorTests {
    /// Two hours from now: past the default one-hour grace period.
    var later: Int { Int(time(nil)) + 7200 }

    @Test func removesOnlyWhatNoKeptManifestReachesAndFreesBytesWithTheLastLink() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let child = try fixture.imageManifest(in: "app", seed: 1)
        let childDigest = ContentHasher.digest(of: child)
        _ = try fixture.manifests.put(child, contentType: nil, reference: .digest(childDigest), repository: repo)
        let index = fixture.indexManifest(children: [(childDigest, child.count)])
        _ = try fixture.manifests.put(index, contentType: nil, reference: .tag(Tag("latest")!), repository: repo)
        let referrer = try fixture.imageManifest(in: "app", seed: 3, layerCount: 1, subject: (childDigest, child.count))
        let referrerDigest = ContentHasher.digest(of: referrer)
        _ = try fixture.manifests.put(referrer, contentType: nil, reference: .digest(referrerDigest), repository: repo)
        let orphan = try fixture.pushBlob(Array("orphan".utf8), to: "app")
        let shared = try fixture.pushBlob(Array("shared".utf8), to: "app")
        try fixture.pushBlob(Array("shared".utf8), to: "other")
        // A layer the tag reaches in "app", but unreferenced in "other".
        let keptLayer = try ManifestDocument(body: child, contentType: nil).blobs[1]
        let layerBytes = try #require(fixture.fileContents(fixture.layout.blobFile(repo, keptLayer.digest)))
        try fixture.pushBlob(layerBytes, to: "other")

        let dryRun = try fixture.store.garbageCollector(options: { var o = GarbageCollector.Options(); o.dryRun = true; return o }())
            .run(now: later)
        #expect(dryRun.count(.blobLink) == 4)
        #expect(fixture.blobs.size(of: orphan, in: repo) != nil)

        // Within the grace period only the trash goes (the pushes above stored duplicates).
        let young = try fixture.store.garbageCollector().run()
        #expect(young.removals.allSatisfy { $0.kind == .trash })

        let report = try fixture.store.garbageCollector().run(now: later)
        #expect(fixture.blobs.size(of: orphan, in: repo) == nil)
        #expect(fixture.blobs.size(of: shared, in: repo) == nil)
        #expect(fixture.blobs.size(of: shared, in: fixture.name("other")) == nil)
        #expect(fixture.blobs.size(of: keptLayer.digest, in: fixture.name("other")) == nil)
        #expect(fixture.blobs.size(of: keptLayer.digest, in: repo) != nil)
        // Removing a link frees nothing while other links remain; the bytes go with the last one.
        #expect(report.removals.filter { $0.kind == .blobLink }.allSatisfy { $0.bytesFreed == 0 })
        #expect(report.count(.sharedBlob) == 2)
        #expect(report.removals.contains { $0.kind == .sharedBlob && $0.path.hasSuffix(orphan.hex) && $0.bytesFreed == 6 })
        #expect(FileManagerLite.exists(fixture.layout.sharedBlobFile(keptLayer.digest)))
        // Everything the tag reaches survives: index, child, its config and layers, its referrer.
        for digest in [childDigest, referrerDigest, ContentHasher.digest(of: index)] {
            #expect(try fixture.manifests.resolve(.digest(digest), in: repo).digest == digest)
        }
        let childDocument = try ManifestDocument(body: child, contentType: nil)
        for blob in childDocument.blobs { #expect(fixture.blobs.size(of: blob.digest, in: repo) != nil) }
    }

    @Test func mirroredManifestsNotPulledWithinMaxAgeGoWithTheirBlobsAndHostedOnesStay() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let stale = fixture.name("up/team/stale"), pulled = fixture.name("up/team/pulled"), hosted = fixture.name("team/app")
        var digests: [RepositoryName: Digest] = [:]
        for (offset, repository) in [stale, pulled, hosted].enumerated() {
            let body = try fixture.imageManifest(in: repository.value, seed: 40 + UInt64(offset))
            digests[repository] = try fixture.manifests.put(body, contentType: nil, reference: .tag(Tag("v1")!),
                                                            repository: repository).digest
        }
        // Pulled at `later`, an hour before gc runs; the others not since they were stored.
        let record = "# berth pull records 1\n\(later) pull \(pulled.value) \(digests[pulled]!)\n"
        mkdir(fixture.layout.pullRecordsDirectory, 0o755)
        let file = fopen(fixture.layout.pullRecordsFile(named: "node-1-1-0.log"), "w")
        fputs(record, file)
        fclose(file)
        var options = GarbageCollector.Options()
        options.mirrors = [GarbageCollector.MirrorLimit(namespace: "up", maxAge: 2 * 3600, maxBytes: nil)]
        let report = try fixture.store.garbageCollector(options: options).run(now: later + 3600)
        #expect(report.removals.contains { $0.kind == .manifest && $0.path == "up/team/stale@\(digests[stale]!)" && $0.reason?.contains("max_age 2h") == true })
        #expect(throws: StorageError.self) { try fixture.manifests.resolve(.tag(Tag("v1")!), in: stale) }
        #expect(fixture.blobs.size(of: digests[stale]!, in: stale) == nil, "its blobs went with it")
        #expect(try fixture.manifests.resolve(.tag(Tag("v1")!), in: pulled).digest == digests[pulled])
        #expect(try fixture.manifests.resolve(.tag(Tag("v1")!), in: hosted).digest == digests[hosted], "hosted: never evicted")
        // The pull records were folded into one file.
        #expect(FileManagerLite.exists(fixture.layout.compactedPullRecordsFile))
    }

    @Test func untaggedManifestsGoOnlyWhenAskedAndNotWhileAnIndexNeedsThem() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let loose = try fixture.imageManifest(in: "app", seed: 1)
        let looseDigest = ContentHasher.digest(of: loose)
        _ = try fixture.manifests.put(loose, contentType: nil, reference: .digest(looseDigest), repository: repo)
        let child = try fixture.imageManifest(in: "app", seed: 2)
        let childDigest = ContentHasher.digest(of: child)
        _ = try fixture.manifests.put(child, contentType: nil, reference: .digest(childDigest), repository: repo)
        _ = try fixture.manifests.put(fixture.indexManifest(children: [(childDigest, child.count)]), contentType: nil,
                                      reference: .tag(Tag("v1")!), repository: repo)

        _ = try fixture.store.garbageCollector().run(now: later)
        #expect(try fixture.manifests.resolve(.digest(looseDigest), in: repo).digest == looseDigest)

        var options = GarbageCollector.Options()
        options.untaggedManifestAge = 60
        let report = try fixture.store.garbageCollector(options: options).run(now: later)
        #expect(report.count(.manifest) == 1)
        #expect(throws: StorageError.self) { try fixture.manifests.resolve(.digest(looseDigest), in: repo) }
        #expect(try fixture.manifests.resolve(.digest(childDigest), in: repo).digest == childDigest)
    }

    @Test func idleUploadSessionsAndTempFilesGo() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let session = try fixture.uploads.start(repository: fixture.name("app"))
        _ = try fixture.uploads.append(session.id, repository: fixture.name("app"), from: BufferByteSource([1, 2, 3]))
        let report = try fixture.store.garbageCollector().run(now: Int(time(nil)) + 90_000)
        #expect(report.count(.upload) == 1)
        #expect(throws: StorageError.uploadUnknown(session.id.value)) {
            try fixture.uploads.progress(session.id, repository: fixture.name("app"))
        }
    }
}

/// Content the store already had, and cancelled sessions, are set aside by a rename and
/// freed later (by the worker's background loop, or gc): never on the request.
@Suite struct TrashTests {
    @Test func duplicateUploadAndCancelledSessionGoToTheTrashAndAreFreedFromThere() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let bytes = [UInt8](repeating: 7, count: 17 << 20)
        let digest = ContentHasher.digest(of: bytes)
        for name in ["one", "two"] {
            let session = try fixture.uploads.start(repository: fixture.name(name))
            _ = try fixture.uploads.complete(session.id, repository: fixture.name(name), digest: digest,
                                             lastChunk: BufferByteSource(bytes))
        }
        #expect(fixture.fileContents(fixture.layout.blobFile(fixture.name("two"), digest)) == bytes)
        #expect(FileManagerLite.inode(fixture.layout.blobFile(fixture.name("one"), digest))
                == FileManagerLite.inode(fixture.layout.blobFile(fixture.name("two"), digest)))
        let cancelled = try fixture.uploads.start(repository: fixture.name("one"))
        _ = try fixture.uploads.append(cancelled.id, repository: fixture.name("one"), from: BufferByteSource(bytes))
        try fixture.uploads.cancel(cancelled.id, repository: fixture.name("one"))
        #expect(!FileManagerLite.exists(fixture.layout.uploadDirectory(cancelled.id)))
        // A small one is freed at once (on a full disk the room is back for the next request).
        let small = try fixture.uploads.start(repository: fixture.name("one"))
        _ = try fixture.uploads.append(small.id, repository: fixture.name("one"), from: BufferByteSource([1, 2, 3]))
        try fixture.uploads.cancel(small.id, repository: fixture.name("one"))

        let trash = fixture.store.trash
        #expect(FileManagerLite.entries(fixture.layout.trashDirectory).count == 2)
        var options = GarbageCollector.Options()
        options.dryRun = true
        let dryRun = try fixture.store.garbageCollector(options: options).run()
        #expect(dryRun.count(.trash) == 2 && dryRun.bytesFreed >= 2 * UInt64(bytes.count))
        #expect(try trash.empty() >= 2 * UInt64(bytes.count))
        #expect(FileManagerLite.entries(fixture.layout.trashDirectory).isEmpty)
        #expect(fixture.fileContents(fixture.layout.blobFile(fixture.name("one"), digest)) == bytes)
    }
}

@Suite struct ScrubberTests {
    @Test func sha512BlobsAreRehashedCollectedAndKeptLikeSha256Ones() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        func push512(_ bytes: [UInt8]) throws -> Digest {
            let digest = ContentHasher.digest(of: bytes, algorithm: .sha512)
            let session = try fixture.uploads.start(repository: repo, algorithm: .sha512)
            _ = try fixture.uploads.complete(session.id, repository: repo, digest: digest, lastChunk: BufferByteSource(bytes))
            return digest
        }
        let config = Array("{\"architecture\":\"amd64\",\"os\":\"linux\"}".utf8)
        let configDigest = try push512(config)
        let layer = SeededBytes(seed: 5).nextArray(2000)
        let layerDigest = try push512(layer)
        let orphan = try push512(Array("orphan".utf8))
        let manifest = Array("""
            {"schemaVersion":2,"mediaType":"\(MediaType.ociManifest)","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(configDigest)","size":\(config.count)},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(layerDigest)","size":2000}]}
            """.utf8)
        let manifestDigest = ContentHasher.digest(of: manifest, algorithm: .sha512)
        _ = try fixture.manifests.put(manifest, contentType: nil, reference: .digest(manifestDigest), repository: repo,
                                      tags: [Tag("v1")!])
        #expect(try fixture.store.scrubber().run().problems.isEmpty)

        _ = try fixture.store.garbageCollector().run(now: Int(time(nil)) + 7200)
        #expect(fixture.blobs.size(of: orphan, in: repo) == nil)
        for kept in [configDigest, layerDigest, manifestDigest] { #expect(fixture.blobs.size(of: kept, in: repo) != nil) }

        let file = fopen(fixture.layout.blobFile(repo, layerDigest), "r+")
        fputs("X", file)
        fclose(file)
        let found = try fixture.store.scrubber().run()
        #expect(found.unrepaired == 2 && found.problems.allSatisfy { $0.what.contains("does not hash") })
    }

    @Test func findsAndQuarantinesACorruptBlobAndDropsAMissingManifest() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let manifest = try fixture.imageManifest(in: "app")
        let digest = try fixture.manifests.put(manifest, contentType: nil, reference: .tag(Tag("v1")!), repository: repo).digest
        #expect(try fixture.store.scrubber().run().problems.isEmpty)

        let layer = try ManifestDocument(body: manifest, contentType: nil).blobs[1].digest
        let file = fopen(fixture.layout.blobFile(repo, layer), "r+")
        fputs("X", file)
        fclose(file)
        let found = try fixture.store.scrubber().run()
        #expect(found.unrepaired == 2)  // the shared copy and the repository's link
        #expect(found.problems.allSatisfy { $0.what.contains("does not hash") })

        let repaired = try fixture.store.scrubber(repair: true).run()
        let hashProblems = repaired.problems.filter { $0.what.contains("does not hash") }
        #expect(hashProblems.count == 2 && hashProblems.allSatisfy(\.repaired))
        // What is left cannot be repaired: the manifest references the quarantined layer.
        #expect(repaired.unrepaired == 1)
        #expect(fixture.blobs.size(of: layer, in: repo) == nil)
        #expect(FileManagerLite.exists(fixture.layout.quarantineFile(layer)))
        // The manifest now references a missing layer: reported, not repairable.
        let after = try fixture.store.scrubber().run()
        #expect(after.problems.map(\.what).contains { $0.contains("references \(layer)") })

        unlink(fixture.layout.blobFile(repo, digest))
        let dropped = try fixture.store.scrubber(repair: true).run()
        #expect(dropped.problems.contains { $0.repaired && $0.what.contains("tag v1") })
        #expect(try fixture.manifests.tags(of: repo).isEmpty)
    }
}
