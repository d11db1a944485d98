@testable import Storage
import Testing
import TestSupport

/// The referrers index across processes: a reader whose list is a few changes behind
/// catches up from the stamp's change log, one far behind lists the folder again, and
/// either way it answers exactly what the writer committed.
@Suite struct ReferrersStoreTests {
    @Test func anotherProcessSeesEveryChangeWhetherFewOrManyBehind() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repository = fixture.name("app")
        let writer = fixture.store, reader = fixture.otherProcess()
        let base = try fixture.imageManifest(in: "app", seed: 1)
        let baseDigest = try writer.manifests.put(base, contentType: nil, reference: .tag(Tag("v1")!), repository: repository, tags: []).digest
        var expected: [String] = []
        func listed(_ store: Store) throws -> [String] { try store.referrers.referrers(of: baseDigest, in: repository).map(\.digest) }
        #expect(try listed(reader) == [])

        func pushReferrer(_ seed: UInt64) throws -> Digest {
            let body = try fixture.imageManifest(in: "app", seed: seed, layerCount: 0, subject: (baseDigest, base.count))
            let digest = ContentHasher.digest(of: body)
            _ = try writer.manifests.put(body, contentType: nil, reference: .digest(digest), repository: repository, tags: [])
            expected.append(digest.description)
            expected.sort()
            return digest
        }
        // One behind each time: the reader applies the stamp's last change.
        var pushed: [Digest] = []
        for seed in 100..<140 {
            pushed.append(try pushReferrer(UInt64(seed)))
            #expect(try listed(reader) == expected, "after referrer \(seed)")
        }
        // More than the stamp keeps: the reader lists the folder again.
        for seed in 200..<(200 + ReferrersStamp.kept + 5) { pushed.append(try pushReferrer(UInt64(seed))) }
        #expect(try listed(reader) == expected)
        // Removals (the referrer manifests deleted), a few behind.
        for digest in pushed.prefix(5) {
            try writer.manifests.delete(.digest(digest), in: repository)
            expected.removeAll { $0 == digest.description }
        }
        #expect(try listed(reader) == expected)
        #expect(try listed(writer) == expected)
        #expect(expected.count == pushed.count - 5)
    }

    @Test func theStampRoundTripsAndKnowsWhatItNoLongerHolds() throws {
        let digests = (0..<40).map { number in Digest("sha256:" + String(repeating: String(number % 10), count: 64))! }
        var stamp: ReferrersStamp? = nil
        for (number, digest) in digests.enumerated() {
            stamp = ReferrersStamp.after(stamp, number % 3 == 0 ? .removed(digest) : .added(digest))
        }
        let last = try #require(stamp)
        #expect(last.changes.count == ReferrersStamp.kept && last.sequence == 40)
        #expect(ReferrersStamp.parse(last.encoded) == last)
        #expect(last.changes(after: 40) == [])
        #expect(last.changes(after: 38)?.count == 2)
        #expect(last.changes(after: 8)?.count == 32, "8 is the last change before the kept ones")
        #expect(last.changes(after: 7) == nil, "change 8 is no longer in the stamp")
        #expect(last.changes(after: 41) == nil, "a reader ahead of the stamp (another epoch's numbers) lists again")
        for garbage in ["", "not-hex\n1 +sha256:\(String(repeating: "a", count: 64))\n", "ab\n2 +x\n", "ab\n2 *sha256:\(String(repeating: "a", count: 64))\n",
                        "ab\n3 +sha256:\(String(repeating: "a", count: 64))\n2 -sha256:\(String(repeating: "a", count: 64))\n", "3f2a9c1b"] {
            if garbage == "3f2a9c1b" { #expect(ReferrersStamp.parse(Array(garbage.utf8))?.changes == []) ; continue }
            #expect(ReferrersStamp.parse(Array(garbage.utf8)) == nil, "\(garbage)")
        }
    }
}
