#if canImport(Glibc)
import Glibc
#endif
import Storage
import Testing
import TestSupport

@Suite struct UploadStoreTests {
    @Test func chunksAppendedByDifferentStoreInstancesCompleteToTheRightBlob() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("team/app")
        var random = SeededBytes(seed: 42)
        let chunks = [random.next(3_000_000), random.next(1), random.next(1_500_000)]
        let whole = chunks.flatMap { $0 }
        let digest = ContentHasher.digest(of: whole)

        let session = try fixture.uploads.start(repository: repo)
        var offset: UInt64 = 0
        for chunk in chunks {
            // A new UploadStore per request: all state must come from disk.
            let store = fixture.otherProcess().uploads
            let progress = try store.append(session.id, repository: repo, startingAt: offset,
                                            expectedLength: UInt64(chunk.count), from: BufferByteSource(chunk))
            offset += UInt64(chunk.count)
            #expect(progress.size == offset)
            #expect(try fixture.otherProcess().uploads.progress(session.id, repository: repo).size == offset)
        }
        let size = try fixture.otherProcess().uploads.complete(session.id, repository: repo, digest: digest, lastChunk: nil)
        #expect(size == UInt64(whole.count))
        #expect(fixture.blobs.size(of: digest, in: repo) == UInt64(whole.count))
        #expect(fixture.fileContents(fixture.layout.blobFile(repo, digest)) == whole)
        #expect(!FileManagerLite.exists(fixture.layout.uploadDirectory(session.id)))
        #expect(throws: StorageError.uploadUnknown(session.id.value)) {
            try fixture.uploads.progress(session.id, repository: repo)
        }
    }

    @Test func aSessionStartedNotDurableSaysSoInItsStateAndCompletesLikeAnyOther() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("mirror/app")
        var random = SeededBytes(seed: 7)
        let first = random.next(16_384), rest = random.next(100_000)
        let digest = ContentHasher.digest(of: first + rest)

        let session = try fixture.uploads.start(repository: repo, algorithm: nil, durable: false)
        let state = { String(decoding: fixture.fileContents(fixture.layout.uploadStateFile(session.id)) ?? [], as: UTF8.self) }
        #expect(state().contains("\"durable\":false"))
        let progress = try fixture.otherProcess().uploads.append(session.id, repository: repo, startingAt: 0, expectedLength: nil,
                                                                 from: BufferByteSource(first))
        #expect(progress.size == UInt64(first.count))
        // Another process reads the mark back with the state and keeps it.
        #expect(state().contains("\"durable\":false"))
        let size = try fixture.otherProcess().uploads.complete(session.id, repository: repo, digest: digest,
                                                               startingAt: UInt64(first.count), expectedLength: UInt64(rest.count),
                                                               lastChunk: BufferByteSource(rest))
        #expect(size == UInt64(first.count + rest.count))
        #expect(fixture.fileContents(fixture.layout.blobFile(repo, digest)) == first + rest)

        // A client's session (durable) writes no mark: its state reads as every earlier Berth wrote it.
        let durable = try fixture.uploads.start(repository: repo)
        let durableState = String(decoding: fixture.fileContents(fixture.layout.uploadStateFile(durable.id)) ?? [], as: UTF8.self)
        #expect(!durableState.contains("durable"))
    }

    @Test func chunkNotStartingAtTheEndIsRefusedAndChangesNothing() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let session = try fixture.uploads.start(repository: repo)
        _ = try fixture.uploads.append(session.id, repository: repo, startingAt: 0, expectedLength: nil, from: BufferByteSource([1, 2, 3]))
        #expect(throws: StorageError.uploadRangeMismatch(currentSize: 3)) {
            try fixture.uploads.append(session.id, repository: repo, startingAt: 2, expectedLength: nil, from: BufferByteSource([9, 9]))
        }
        #expect(try fixture.uploads.progress(session.id, repository: repo).size == 3)
    }

    @Test func digestMismatchMakesNothingVisibleAndKeepsTheSession() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let session = try fixture.uploads.start(repository: repo)
        _ = try fixture.uploads.append(session.id, repository: repo, from: BufferByteSource([1, 2, 3]))
        let wrong = ContentHasher.digest(of: [9])
        #expect(throws: StorageError.self) {
            try fixture.uploads.complete(session.id, repository: repo, digest: wrong, lastChunk: BufferByteSource([4]))
        }
        #expect(fixture.blobs.size(of: wrong, in: repo) == nil)
        #expect(FileManagerLite.exists(fixture.layout.sharedBlobFile(wrong)) == false)
        #expect(try fixture.uploads.progress(session.id, repository: repo).size == 3)
        let right = ContentHasher.digest(of: [1, 2, 3, 4])
        _ = try fixture.uploads.complete(session.id, repository: repo, digest: right, lastChunk: BufferByteSource([4]))
        #expect(fixture.blobs.size(of: right, in: repo) == 4)
    }

    @Test func sizeMismatchAndInterruptedBodiesKeepThePreviousState() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let session = try fixture.uploads.start(repository: repo)
        _ = try fixture.uploads.append(session.id, repository: repo, from: BufferByteSource([1, 2]))
        #expect(throws: StorageError.sizeMismatch(expected: 5, received: 3)) {
            try fixture.uploads.append(session.id, repository: repo, startingAt: nil, expectedLength: 5, from: BufferByteSource([3, 4, 5]))
        }
        #expect(throws: StorageError.bodyInterrupted) {
            try fixture.uploads.append(session.id, repository: repo, from: BrokenByteSource([7, 7, 7, 7]))
        }
        #expect(try fixture.uploads.progress(session.id, repository: repo).size == 2)
        #expect(fixture.fileContents(fixture.layout.uploadDataFile(session.id)) == [1, 2])
        let digest = ContentHasher.digest(of: [1, 2, 3])
        _ = try fixture.uploads.complete(session.id, repository: repo, digest: digest, lastChunk: BufferByteSource([3]))
        #expect(fixture.fileContents(fixture.layout.blobFile(repo, digest)) == [1, 2, 3])
    }

    /// Chunks land at every alignment against the 4096-byte blocks written past the page
    /// cache, in reads of every size, with an interrupted chunk (cut mid-block, after whole
    /// megabytes went out directly) in between: the data file holds exactly the bytes sent.
    @Test func directAndOrdinaryWritesKeepEveryByteAtEveryAlignment() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        var random = SeededBytes(seed: 7)
        let chunks: [(bytes: [UInt8], step: Int)] = [
            (random.next(4095), 4095), (random.next(1), 1), (random.next(3 << 20), 1 << 20),
            (random.next(4096 * 3 + 17), 4096), (random.next((1 << 20) + 4096), 65_537), (random.next(100), 7),
            (random.next(2 << 20), 3 << 20),
        ]
        let session = try fixture.uploads.start(repository: repo)
        var sent: [UInt8] = []
        for (index, chunk) in chunks.enumerated() {
            if index == 3 {
                #expect(throws: StorageError.bodyInterrupted) {
                    try fixture.uploads.append(session.id, repository: repo, from: BrokenByteSource(random.next(2_500_001)))
                }
            }
            let progress = try fixture.uploads.append(
                session.id, repository: repo, startingAt: UInt64(sent.count), expectedLength: nil, from: TricklingByteSource(chunk.bytes, step: chunk.step))
            sent += chunk.bytes
            #expect(progress.size == UInt64(sent.count))
            #expect(fixture.fileContents(fixture.layout.uploadDataFile(session.id)) == sent)
        }
        let digest = ContentHasher.digest(of: sent)
        _ = try fixture.uploads.complete(session.id, repository: repo, digest: digest, lastChunk: nil)
        #expect(fixture.fileContents(fixture.layout.blobFile(repo, digest)) == sent)
    }

    /// A source others follow (a mirror's fetch) finds every byte it gave before in the
    /// data file each time it is read again, not gathered for a later direct write; past
    /// two writeback batches (`SessionDataWriter.writebackBatch`) every byte is still there.
    @Test func aFollowedSourceIsWrittenReadByRead() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        var random = SeededBytes(seed: 8)
        let bytes = random.next((17 << 20) + 333)
        let session = try fixture.uploads.start(repository: repo)
        let source = WatchedByteSource(bytes, step: 100_000, file: fixture.layout.uploadDataFile(session.id))
        let digest = ContentHasher.digest(of: bytes)
        _ = try fixture.uploads.complete(session.id, repository: repo, digest: digest, lastChunk: source)
        #expect(source.lagging == 0, "\(source.lagging) reads found earlier bytes not written yet")
        #expect(fixture.fileContents(fixture.layout.blobFile(repo, digest)) == bytes)
    }

    @Test func sessionBelongsToItsRepository() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let session = try fixture.uploads.start(repository: fixture.name("one"))
        #expect(throws: StorageError.uploadUnknown(session.id.value)) {
            try fixture.uploads.progress(session.id, repository: fixture.name("two"))
        }
    }

    @Test func sha512DigestsAreVerifiedToo() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let bytes = Array("hello sha512".utf8)
        let digest = ContentHasher.digest(of: bytes, algorithm: .sha512)
        let session = try fixture.uploads.start(repository: repo)
        _ = try fixture.uploads.complete(session.id, repository: repo, digest: digest, lastChunk: BufferByteSource(bytes))
        #expect(fixture.blobs.size(of: digest, in: repo) == UInt64(bytes.count))
    }

    @Test func sha512SessionResumesFromItsSavedStateAcrossStoreInstances() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        var random = SeededBytes(seed: 512)
        let chunks = [random.next(1_000_003), random.next(4_097), random.next(70_000)]
        let digest = ContentHasher.digest(of: chunks.flatMap { $0 }, algorithm: .sha512)
        let session = try fixture.uploads.start(repository: repo, algorithm: .sha512)
        for chunk in chunks.dropLast() {
            _ = try fixture.otherProcess().uploads.append(session.id, repository: repo, from: BufferByteSource(chunk))
        }
        let wrong = ContentHasher.digest(of: chunks.flatMap { $0 })
        #expect(throws: StorageError.algorithmMismatch(session: .sha512, digest: wrong)) {
            try fixture.otherProcess().uploads.complete(session.id, repository: repo, digest: wrong,
                                                             lastChunk: BufferByteSource(chunks[2]))
        }
        #expect(try fixture.uploads.progress(session.id, repository: repo).size == UInt64(chunks[0].count + chunks[1].count))
        _ = try fixture.otherProcess().uploads.complete(session.id, repository: repo, digest: digest,
                                                             lastChunk: BufferByteSource(chunks[2]))
        #expect(fixture.fileContents(fixture.layout.blobFile(repo, digest)) == chunks.flatMap { $0 })
        #expect(fixture.fileContents(fixture.layout.sharedBlobFile(digest)) != nil)
    }

    /// A state file as earlier Berth versions wrote it (no algorithm, sha256State only)
    /// still loads, and one whose saved state does not fit is rebuilt from the data.
    @Test func legacyAndForeignStateFilesStillLoad() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let bytes = SeededBytes(seed: 3).nextArray(5000)
        for algorithm in Digest.Algorithm.allCases {
            let session = try fixture.uploads.start(repository: repo, algorithm: algorithm == .sha256 ? nil : algorithm)
            _ = try fixture.uploads.append(session.id, repository: repo, from: BufferByteSource(Array(bytes[..<3000])))
            let key = algorithm == .sha256 ? "" : "\"algorithm\":\"sha512\","
            let field = algorithm == .sha256 ? "sha256State" : "sha512State"
            let record = "{\"repository\":\"app\",\"size\":3000,\(key)\"\(field)\":\"00ff\",\"updated\":0}"
            let file = fopen(fixture.layout.uploadStateFile(session.id), "w")
            fputs(record, file)
            fclose(file)
            let digest = ContentHasher.digest(of: bytes, algorithm: algorithm)
            _ = try fixture.uploads.complete(session.id, repository: repo, digest: digest,
                                             lastChunk: BufferByteSource(Array(bytes[3000...])))
            #expect(fixture.blobs.size(of: digest, in: repo) == 5000, "\(algorithm)")
        }
    }

    @Test func cancelRemovesTheSession() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let session = try fixture.uploads.start(repository: repo)
        try fixture.uploads.cancel(session.id, repository: repo)
        #expect(!FileManagerLite.exists(fixture.layout.uploadDirectory(session.id)))
    }
}

@Suite struct BlobStoreTests {
    @Test func sameBlobInTwoRepositoriesIsOneInode() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let bytes = SeededBytes(seed: 3).nextArray(4096)
        let digest = try fixture.pushBlob(bytes, to: "one")
        try fixture.pushBlob(bytes, to: "two/nested")
        let first = FileManagerLite.inode(fixture.layout.blobFile(fixture.name("one"), digest))
        let second = FileManagerLite.inode(fixture.layout.blobFile(fixture.name("two/nested"), digest))
        #expect(first != nil && first == second)
        #expect(FileManagerLite.linkCount(fixture.layout.sharedBlobFile(digest)) == 3)
    }

    @Test func mountLinksOnlyWhatTheSourceHolds() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let digest = try fixture.pushBlob([1, 2, 3], to: "source")
        let absent = ContentHasher.digest(of: [4])
        #expect(try fixture.blobs.mount(digest, from: fixture.name("source"), into: fixture.name("target")))
        #expect(fixture.blobs.size(of: digest, in: fixture.name("target")) == 3)
        #expect(try !fixture.blobs.mount(absent, from: fixture.name("source"), into: fixture.name("target")))
        #expect(try !fixture.blobs.mount(digest, from: fixture.name("nowhere"), into: fixture.name("other")))
        #expect(try fixture.blobs.mountFromAnywhere(digest, into: fixture.name("third")))
    }
}

extension SeededBytes {
    func nextArray(_ count: Int) -> [UInt8] {
        var copy = self
        return copy.next(count)
    }
}

/// Small stat helpers for assertions.
enum FileManagerLite {
    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    static func inode(_ path: String) -> UInt64? {
        var info = stat()
        return stat(path, &info) == 0 ? UInt64(info.st_ino) : nil
    }

    static func linkCount(_ path: String) -> UInt64? {
        var info = stat()
        return stat(path, &info) == 0 ? UInt64(info.st_nlink) : nil
    }

    /// Names in a directory (without . and ..); empty when it does not exist.
    static func entries(_ path: String) -> [String] {
        guard let handle = opendir(path) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != ".", name != ".." { names.append(name) }
        }
        return names
    }
}

@Suite struct UploadLimitTests {
    @Test func openSessionsPerRepositoryAreCappedAndFreedByFinishingOrGC() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let store = { var options = Store.Options(); options.maximumUploadSessions = 2; return Store(layout: fixture.layout, options: options).uploads }()
        let first = try store.start(repository: repo)
        let second = try store.start(repository: repo)
        #expect(throws: StorageError.tooManyUploads(limit: 2)) { try store.start(repository: repo) }
        _ = try store.start(repository: fixture.name("other"))
        try store.cancel(first.id, repository: repo)
        let third = try store.start(repository: repo)
        _ = try store.complete(third.id, repository: repo, digest: ContentHasher.digest(of: [1]), lastChunk: BufferByteSource([1]))
        _ = try store.start(repository: repo)
        #expect(throws: StorageError.tooManyUploads(limit: 2)) { try store.start(repository: repo) }
        // Idle sessions expire with gc, and their places are free again.
        _ = try fixture.store.garbageCollector().run(now: Int(time(nil)) + 100_000)
        #expect(throws: StorageError.uploadUnknown(second.id.value)) { try store.progress(second.id, repository: repo) }
        _ = try store.start(repository: repo)
        _ = try store.start(repository: repo)
    }
}
