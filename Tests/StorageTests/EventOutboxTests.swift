#if canImport(Glibc)
import Glibc
#endif
@testable import Storage
import Testing

/// The outbox written inside each `index.json` commit: what each change queues, that a
/// refused change queues nothing, and how a commit cut off at either side of its rename
/// is settled (queued when its generation is on disk, dropped when not).
@Suite struct EventOutboxTests {
    static func recording() -> Store.Options {
        var options = Store.Options()
        options.recordsEvents = true
        options.immutableTags = [ImmutableTagRule("app locked")].compactMap { $0 }
        return options
    }

    func events(_ fixture: StoreFixture, _ repository: RepositoryName) throws -> [RegistryEvent] {
        try fixture.store.events.queued(repository).flatMap(\.batch.events)
    }

    @Test func pushesTagMovesAndDeletesQueueCloudEventsInCommitOrder() throws {
        let fixture = StoreFixture(options: Self.recording())
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let first = try fixture.imageManifest(in: "app", seed: 1)
        let second = try fixture.imageManifest(in: "app", seed: 2)
        let one = try fixture.manifests.put(first, contentType: nil, reference: .tag(Tag("v1")!), repository: repo,
                                            tags: [Tag("latest")!])
        let two = try fixture.manifests.put(second, contentType: nil, reference: .tag(Tag("latest")!), repository: repo)
        try fixture.manifests.delete(.tag(Tag("latest")!), in: repo)
        try fixture.manifests.delete(.digest(one.digest), in: repo)

        let queued = try fixture.store.events.queued(repo)
        #expect(queued.count == 4)
        #expect(queued.map(\.name) == queued.map(\.name).sorted())
        let all = queued.flatMap(\.batch.events)
        #expect(all.map(\.type) == ["org.berth.manifest.pushed", "org.berth.manifest.pushed", "org.berth.tag.moved",
                                    "org.berth.tag.deleted", "org.berth.manifest.deleted"])
        #expect(all[0].data == .init(repository: "app", digest: one.digest.description, mediaType: MediaType.ociManifest,
                                     size: Int64(first.count), tags: ["v1", "latest"]))
        #expect(all[2].data.tag == "latest" && all[2].data.previousDigest == one.digest.description
                && all[2].data.digest == two.digest.description)
        #expect(all[3].data.digest == two.digest.description && all[3].subject == "latest")
        #expect(all[4].data.tags == ["v1"])
        #expect(Set(all.map(\.id)).count == all.count)
        for event in all {
            #expect(event.specversion == "1.0" && event.source == "/v2/app" && event.datacontenttype == "application/json")
            #expect(event.time.count == 24 && event.time.hasSuffix("Z"), "\(event.time)")
        }
        // Each batch is named by the generation its commit wrote, the last one on disk now.
        #expect(try queued.last?.batch.generation == IndexGeneration.peek(fixture.layout.indexFile(repo))?.value)
        #expect(queued.allSatisfy { $0.name.generation == $0.batch.generation })
    }

    @Test func refusedChangesAndStoresThatDoNotRecordQueueNothing() throws {
        let fixture = StoreFixture(options: Self.recording())
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let first = try fixture.imageManifest(in: "app", seed: 1)
        let second = try fixture.imageManifest(in: "app", seed: 2)
        _ = try fixture.manifests.put(first, contentType: nil, reference: .tag(Tag("locked")!), repository: repo)
        #expect(throws: StorageError.self) {
            try fixture.manifests.put(second, contentType: nil, reference: .tag(Tag("locked")!), repository: repo)
        }
        #expect(throws: StorageError.self) { try fixture.manifests.delete(.tag(Tag("absent")!), in: repo) }
        #expect(try events(fixture, repo).count == 1)

        let silent = StoreFixture()
        defer { silent.directory.remove() }
        let body = try silent.imageManifest(in: "app")
        _ = try silent.manifests.put(body, contentType: nil, reference: .tag(Tag("v1")!), repository: silent.name("app"))
        #expect(try silent.store.events.repositories(dead: false).isEmpty)
    }

    @Test func aBatchPreparedForACommitThatNeverHappenedIsDroppedAtTheNextCommit() throws {
        let fixture = StoreFixture(options: Self.recording())
        defer { fixture.directory.remove() }
        let repo = fixture.name("team/app")
        let body = try fixture.imageManifest(in: "team/app")
        _ = try fixture.manifests.put(body, contentType: nil, reference: .tag(Tag("v1")!), repository: repo)
        // A worker killed between writing its batch and renaming its index.json.
        let current = try IndexGeneration.peek(fixture.layout.indexFile(repo))?.value
        try fixture.store.events.prepareLocked([IndexEvent(.tagDeleted, digest: "sha256:x", tag: "v1")], repository: repo,
                                               generation: IndexGeneration.next(after: current))
        #expect(fixture.store.events.hasPrepared(repo))
        _ = try fixture.manifests.put(body, contentType: nil, reference: .tag(Tag("v2")!), repository: repo)
        #expect(!fixture.store.events.hasPrepared(repo))
        #expect(try events(fixture, repo).map(\.type) == ["org.berth.manifest.pushed", "org.berth.manifest.pushed"])
    }

    @Test func interruptedCommitsAreSettledByTheDelivererByWhetherTheirGenerationIsOnDisk() throws {
        let fixture = StoreFixture(options: Self.recording())
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let outbox = fixture.store.events
        let body = try fixture.imageManifest(in: "app")
        _ = try fixture.manifests.put(body, contentType: nil, reference: .tag(Tag("v1")!), repository: repo)
        // Killed after the rename of index.json, before the batch was queued: it is put back.
        let committed = try #require(try outbox.queued(repo).first)
        try FileSystem.rename(fixture.layout.queuedEventsFile(repo, committed.name), fixture.layout.preparedEventsFile(repo))
        #expect(try outbox.queued(repo).isEmpty)
        #expect(try outbox.settleInterrupted(olderThan: 0) == 1)
        #expect(try outbox.queued(repo).map(\.name) == [committed.name])
        // Killed before the rename: the index still has the old generation; it goes.
        let current = try IndexGeneration.peek(fixture.layout.indexFile(repo))?.value
        try outbox.prepareLocked([IndexEvent(.tagDeleted, digest: "sha256:x", tag: "v1")], repository: repo,
                                 generation: IndexGeneration.next(after: current))
        #expect(try outbox.settleInterrupted(olderThan: 0) == 1)
        #expect(!outbox.hasPrepared(repo))
        #expect(try outbox.queued(repo).map(\.name) == [committed.name])
    }

    @Test func deadBatchesReplayWithTheirAttemptsResetAndOneProcessHoldsTheDeliveryClaim() throws {
        let fixture = StoreFixture(options: Self.recording())
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let outbox = fixture.store.events
        _ = try fixture.manifests.put(try fixture.imageManifest(in: "app"), contentType: nil, reference: .tag(Tag("v1")!),
                                      repository: repo)
        var batch = try #require(try outbox.queued(repo).first)
        batch.batch.attempts = 5
        batch.batch.lastError = "HTTP 500"
        try outbox.bury(batch)
        #expect(try outbox.queued(repo).isEmpty)
        #expect(try outbox.queued(repo, dead: true).first?.batch.attempts == 5)
        #expect(try outbox.repositories(dead: true) == [repo])
        #expect(try outbox.replay() == 1)
        let back = try #require(try outbox.queued(repo).first)
        #expect(back.batch.attempts == 0 && back.batch.lastError == nil && back.name == batch.name)
        #expect(try outbox.queued(repo, dead: true).isEmpty)

        var claim = outbox.claimDelivery()
        #expect(claim != nil)
        // flock is per open file description: a second open conflicts, in this process too.
        #expect(fixture.otherProcess().events.claimDelivery() == nil)
        claim = nil
        #expect(outbox.claimDelivery() != nil)
    }

    @Test func drainedQueuesArePrunedSoTheWalkStaysSmallAndLaterCommitsQueueAgain() throws {
        let fixture = StoreFixture(options: Self.recording())
        defer { fixture.directory.remove() }
        let outbox = fixture.store.events
        let parent = fixture.name("team"), child = fixture.name("team/app")
        for repository in ["team", "team/app"] {
            _ = try fixture.manifests.put(try fixture.imageManifest(in: repository), contentType: nil,
                                          reference: .tag(Tag("v1")!), repository: fixture.name(repository))
        }
        #expect(try outbox.pruneEmpty() == 0, "nothing is pruned while batches wait")
        for queued in try outbox.queued(child) { try outbox.remove(queued) }
        #expect(try outbox.pruneEmpty() == 1)
        #expect(try outbox.repositories(dead: false) == [parent])
        for queued in try outbox.queued(parent) { try outbox.remove(queued) }
        #expect(try outbox.pruneEmpty() == 1)
        #expect(try FileSystem.listDirectory(fixture.layout.outboxDirectory).isEmpty)
        _ = try fixture.manifests.put(try fixture.imageManifest(in: "team/app", seed: 5), contentType: nil,
                                      reference: .tag(Tag("v2")!), repository: child)
        #expect(try outbox.queued(child).count == 1)
        #expect(try outbox.repositories(dead: false) == [child])
    }

    @Test func batchNamesSortByCommitCounterAndParseOnlyTheirOwnFiles() {
        let early = EventBatchName(generation: "9-00000000000000ff")
        let late = EventBatchName(generation: "10-0000000000000001")
        #expect(early != nil && late != nil)
        if let early, let late {
            #expect(early < late && early.fileName < late.fileName)
            #expect(EventBatchName(fileName: late.fileName) == late)
        }
        for bad in ["x.json", "00000000000000000010-0000000000000001.tmp", "1-00000000000000FF", "-1-0000000000000001"] {
            #expect(EventBatchName(fileName: bad) == nil && EventBatchName(generation: bad) == nil, "\(bad)")
        }
    }
}
