import Foundation
import Storage
import Testing
import TestSupport

@Suite struct PullRecordTests {
    @Test func pullsPushesAndMirroredBlobsReachTheHistoryOnlyThroughTheDecoratorAndAfterAFlush() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repository = fixture.name("team/app")
        let body = try fixture.imageManifest(in: repository.value)
        let recording = fixture.store.capabilities.recordingPulls(into: fixture.store.pullRecorder)
        let pushed = try recording.manifests.put(body, contentType: MediaType.ociManifest, reference: .tag(Tag("v1")!),
                                                 repository: repository, tags: [])
        _ = try recording.manifests.resolve(.tag(Tag("v1")!), in: repository)
        // Not a mirror: blob reads are not recorded.
        let config = try #require(ManifestDocument(body: body, contentType: nil).blobs.first?.digest)
        #expect(recording.blobs.size(of: config, in: repository) != nil)
        // The store's own capabilities record nothing.
        _ = try fixture.store.capabilities.manifests.resolve(.digest(pushed.digest), in: repository)

        #expect(try PullHistory.load(fixture.layout).count == 0, "nothing on disk before the flush")
        try fixture.store.pullRecorder.flush()
        let history = try PullHistory.load(fixture.layout)
        let pulled = try #require(history.lastPulled(pushed.digest, in: repository))
        #expect(abs(pulled - fixture.store.clock.now()) < 60)
        #expect(history.lastPushed(pushed.digest, in: repository) == pulled)
        #expect(history.lastPulledBlob(config, in: repository) == nil)
        #expect(history.count == 2)
        // An empty flush writes nothing.
        try fixture.store.pullRecorder.flush()
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.layout.pullRecordsDirectory).sorted().count == 1)
    }

    @Test func segmentsOfSeveralProcessesMergeToTheLatestTimeAndCompactionDropsWhatIsGone() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repository = fixture.name("team/app")
        let kept = try fixture.manifests.put(try fixture.imageManifest(in: repository.value, seed: 1), contentType: nil,
                                             reference: .tag(Tag("kept")!), repository: repository).digest
        let gone = try fixture.manifests.put(try fixture.imageManifest(in: repository.value, seed: 2), contentType: nil,
                                             reference: .tag(Tag("gone")!), repository: repository).digest
        // Two processes' segments, written by hand as recorders write them.
        try write("# berth pull records 1\n100 pull team/app \(kept)\n100 pull team/app \(gone)\n", to: fixture.layout.pullRecordsFile(named: "node-a-1-1-0.log"))
        try write("# berth pull records 1\n250 pull team/app \(kept)\nnot a record\n90 pull team/app \(gone)\n", to: fixture.layout.pullRecordsFile(named: "node-b-2-2-0.log"))
        var history = try PullHistory.load(fixture.layout)
        #expect(history.lastPulled(kept, in: repository) == 250)
        #expect(history.lastPulled(gone, in: repository) == 100)

        try fixture.manifests.delete(.digest(gone), in: repository)
        try FileManager.default.removeItem(atPath: fixture.layout.blobFile(repository, gone))
        history = try PullHistory.compact(fixture.store)
        #expect(history.lastPulled(kept, in: repository) == 250)
        #expect(history.lastPulled(gone, in: repository) == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.layout.pullRecordsDirectory).sorted() == ["_compacted.log"])
        // What a process flushes after the compaction merges with the compacted file.
        try write("# berth pull records 1\n300 pull team/app \(kept)\n", to: fixture.layout.pullRecordsFile(named: "node-a-1-1-1.log"))
        #expect(try PullHistory.load(fixture.layout).lastPulled(kept, in: repository) == 300)
    }

    @Test func threadsRecordingWhileFlushesRunLoseNothing() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repository = fixture.name("team/app")
        let digests = (0..<64).map { ContentHasher.digest(of: Array("manifest \($0)".utf8)) }
        let recorder = fixture.store.pullRecorder
        let group = DispatchGroup()
        for thread in 0..<4 {
            group.enter()
            Thread.detachNewThread {
                for round in 0..<2000 { recorder.record(.pull, digests[(thread * 16 + round) % digests.count], in: repository) }
                group.leave()
            }
        }
        group.enter()
        Thread.detachNewThread {
            for _ in 0..<20 { try? recorder.flush() }
            group.leave()
        }
        group.wait()
        try recorder.flush()
        let history = try PullHistory.load(fixture.layout)
        #expect(digests.allSatisfy { history.lastPulled($0, in: repository) != nil })
    }

    /// The lock-free memory of what was recorded (`RecordedFingerprints`) forgets at each
    /// flush: a pull after a flush is in the next segment, and the same digest in another
    /// repository or as another kind is a record of its own.
    @Test func aRepeatedPullAfterAFlushIsRecordedAgainAndKeysDifferByRepositoryAndKind() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let first = fixture.name("team/app"), second = fixture.name("team/api")
        let digest = ContentHasher.digest(of: Array("a manifest".utf8))
        let recorder = fixture.store.pullRecorder
        func segmentLines() throws -> [[String]] {
            let names = try FileManager.default.contentsOfDirectory(atPath: fixture.layout.pullRecordsDirectory).sorted()
            return try names.map { name in
                try String(contentsOfFile: "\(fixture.layout.pullRecordsDirectory)/\(name)", encoding: .utf8)
                    .split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
            }
        }
        for _ in 0..<3 { recorder.record(.pull, digest, in: first) }
        recorder.record(.pull, digest, in: second)
        recorder.record(.push, digest, in: first)
        try recorder.flush()
        #expect(try segmentLines().map(\.count) == [3])
        recorder.record(.pull, digest, in: first)
        recorder.record(.pull, digest, in: first)
        try recorder.flush()
        let segments = try segmentLines()
        #expect(segments.map(\.count) == [3, 1], "\(segments)")
        #expect(segments.last?.first?.contains(first.value) == true && segments.last?.first?.contains(digest.description) == true)
        try recorder.flush()
        #expect(try segmentLines().count == 2, "an empty flush writes nothing")
    }

    private func write(_ text: String, to path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }
}
