@testable import Storage
import Testing
import TestSupport

/// Another process catches up with a repository's commits by replaying the index
/// journal, not by parsing `index.json` again, and falls back to the parse whenever the
/// journal cannot take it exactly to the file.
@Suite struct IndexJournalTests {
    struct Setup {
        let fixture = StoreFixture()
        let repository: RepositoryName
        let bodies: [[UInt8]]
        let descriptors: [Descriptor]

        init() throws {
            let fixture = self.fixture
            repository = fixture.name("app")
            let made = try (0..<5).map { try fixture.imageManifest(in: "app", seed: UInt64(30 + $0)) }
            bodies = made
            descriptors = made.map { Descriptor(mediaType: MediaType.ociManifest, digest: ContentHasher.digest(of: $0), size: Int64($0.count)) }
        }

        func push(_ which: Int, tag: String, by store: Store) throws {
            _ = try store.manifests.put(bodies[which], contentType: nil, reference: .tag(Tag(tag)!), repository: repository, tags: [])
        }
    }

    @Test func aReaderAFewCommitsBehindReplaysThemAndAnswersExactlyWhatWasWritten() throws {
        let setup = try Setup()
        defer { setup.fixture.directory.remove() }
        let writer = setup.fixture.store, reader = setup.fixture.otherProcess()
        var model = ImageIndex()
        for number in 0..<300 {
            try setup.push(number % 5, tag: "t\(number)", by: writer)
            model.setTag(Tag("t\(number)")!, to: setup.descriptors[number % 5])
        }
        #expect(try reader.manifests.tags(of: setup.repository) == model.tags)
        let parsesBefore = reader.manifests.cache.parses.withLock { $0 }
        var random = SeededBytes(seed: 404)
        for step in 0..<120 {
            let choice = random.next(3).map(Int.init)
            let which = choice[1] % 5
            let tag = Tag("t\(choice[2] % 320)")!
            switch choice[0] % 6 {
            case 0, 1, 2:
                try setup.push(which, tag: tag.value, by: writer)
                model.setTag(tag, to: setup.descriptors[which])
            case 3:
                _ = try writer.manifests.put(setup.bodies[which], contentType: nil, reference: .digest(ContentHasher.digest(of: setup.bodies[which])),
                                             repository: setup.repository, tags: [])
                model.addUntagged(setup.descriptors[which])
            case 4:
                let removed = model.removeTag(tag)
                do { try writer.manifests.delete(.tag(tag), in: setup.repository); #expect(removed) } catch { #expect(!removed) }
            default:
                if step % 30 == 5 {
                    let digest = ContentHasher.digest(of: setup.bodies[which])
                    let removed = model.removeManifest(digest)
                    do { try writer.manifests.delete(.digest(digest), in: setup.repository); #expect(removed) } catch { #expect(!removed) }
                }
            }
            // Every few commits, the other process answers; it is one to several commits behind.
            if step % 3 == 2 {
                #expect(try reader.manifests.tags(of: setup.repository) == model.tags, "step \(step)")
                let resolved = try? reader.manifests.resolve(.tag(tag), in: setup.repository)
                #expect(resolved?.digest.description == model.descriptor(for: tag)?.digest, "step \(step)")
            }
        }
        #expect(try reader.manifests.tags(of: setup.repository) == model.tags)
        #expect(reader.manifests.cache.parses.withLock { $0 } == parsesBefore, "every commit was replayed, none parsed")
    }

    @Test func aJournalThatCannotLeadToTheFileIsNotUsed() throws {
        let setup = try Setup()
        defer { setup.fixture.directory.remove() }
        let writer = setup.fixture.store, reader = setup.fixture.otherProcess()
        for number in 0..<20 { try setup.push(number % 5, tag: "t\(number)", by: writer) }
        _ = try reader.manifests.tags(of: setup.repository)
        let journal = setup.fixture.layout.indexJournalFile(setup.repository)

        // Too far behind: more commits than the journal keeps.
        for number in 0..<(IndexJournal.keptCommits + 3) { try setup.push(number % 5, tag: "far\(number)", by: writer) }
        var parses = reader.manifests.cache.parses.withLock { $0 }
        #expect(try reader.manifests.tags(of: setup.repository).contains("far\(IndexJournal.keptCommits + 2)"))
        #expect(reader.manifests.cache.parses.withLock { $0 } == parses + 1)

        // A corrupted entry (its operations no longer match their hash).
        try setup.push(1, tag: "after-damage", by: writer)
        let bytes = try #require(setup.fixture.fileContents(journal))
        var damaged = bytes
        if let position = damaged.lastIndex(of: UInt8(ascii: "a")) { damaged[position] = UInt8(ascii: "b") }
        try FileSystem.writeAtomically(damaged, to: journal, temporaryDirectory: setup.fixture.layout.temporaryDirectory)
        parses = reader.manifests.cache.parses.withLock { $0 }
        #expect(try reader.manifests.tags(of: setup.repository).contains("after-damage"))
        #expect(reader.manifests.cache.parses.withLock { $0 } == parses + 1, "the damaged entry was refused")

        // No journal at all.
        try FileSystem.remove(journal)
        try setup.push(2, tag: "no-journal", by: writer)
        try FileSystem.remove(journal)
        #expect(try reader.manifests.tags(of: setup.repository).contains("no-journal"))
    }

    @Test func operationsRoundTripAndMalformedOnesAreRefused() throws {
        let digest = try #require(Digest("sha256:" + String(repeating: "d", count: 64)))
        let descriptor = Descriptor(mediaType: MediaType.ociManifest, digest: digest, size: 12, annotations: ["a": "b"])
        let operations: [IndexOperation] = [.setTag(Tag("v1")!, descriptor), .addUntagged(descriptor), .removeTag(Tag("v1")!), .removeManifest(digest)]
        #expect(IndexOperation.decode(IndexOperation.encode(operations)) == operations)
        for garbage in ["", "{}", "[{\"op\":\"set\",\"tag\":\"v1\"}]", "[{\"op\":\"untag\",\"tag\":\"../x\"}]", "[{\"op\":\"drop\"}]",
                        "[{\"op\":\"remove\",\"digest\":\"sha256:zz\"}]"] {
            #expect(IndexOperation.decode(Array(garbage.utf8)) == nil, "\(garbage)")
        }
    }
}
