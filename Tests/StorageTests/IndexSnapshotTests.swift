@testable import Storage
import Testing
import TestSupport

/// `IndexSnapshot` (chunked entries, sharded lookups) against `ImageIndex`'s rules, with
/// enough tags for many chunks, so that appends into a new chunk, removals from the
/// middle of one, chunks emptied and chunks merged all happen.
@Suite struct IndexSnapshotTests {
    @Test func randomChangesOverManyChunksMatchTheImageIndexRulesByteForByte() throws {
        let digests = (0..<40).map { "sha256:" + String(repeating: String(UInt8($0 % 16), radix: 16), count: 63) + String($0 % 10) }
        var model = ImageIndex()
        var snapshot = IndexSnapshot(model)
        var random = SeededBytes(seed: 2026)
        let tagSpace = 12 * EntryChunks<Box>.capacity
        for step in 0..<6_000 {
            let choice = random.next(4).map(Int.init)
            let digest = digests[choice[1] % digests.count]
            let descriptor = Descriptor(mediaType: MediaType.ociManifest, digest: try #require(Digest(digest)), size: Int64(100 + choice[1]))
            let tag = try #require(Tag("t\((choice[2] << 8 | choice[3]) % tagSpace)"))
            // The first half only pushes and removes tags, so the index grows over many
            // chunks; the second half also removes whole manifests (each takes its tags).
            let growing = step < 3_000
            var kind = choice[0] % 8
            if growing, kind == 5 { kind = 0 }
            if step == 3_000 { #expect(model.manifests.count > 3 * EntryChunks<Box>.capacity, "the index spans several chunks") }
            switch kind {
            case 0, 1, 6, 7:
                model.setTag(tag, to: descriptor)
                snapshot.setTag(tag, to: descriptor)
            case 2:
                model.addUntagged(descriptor)
                snapshot.addUntagged(descriptor)
            case 3, 4:
                #expect(model.removeTag(tag) == snapshot.removeTag(tag), "step \(step)")
            default:
                let manifest = try #require(Digest(digest))
                #expect(model.removeManifest(manifest) == snapshot.removeManifest(manifest), "step \(step)")
            }
            if step % 97 == 0 || step == 5_999 {
                // Compared first, so that a failure names the step, not four megabytes.
                let sameBytes = snapshot.encoded() == model.encoded()
                let sameTags = snapshot.sortedTags == model.tags
                let sameIndex = snapshot.index == model
                #expect(sameBytes && sameTags && sameIndex, "step \(step): bytes \(sameBytes), tags \(sameTags), index \(sameIndex)")
                #expect(snapshot.encodedPieces().reduce(0) { $0 + $1.count } == model.encoded().count)
            }
            #expect(snapshot.descriptor(forTag: tag.value) == model.descriptor(for: tag), "step \(step)")
            #expect(snapshot.descriptor(forDigest: digest) == model.descriptor(for: try #require(Digest(digest))), "step \(step)")
        }
    }

    @Test func aCopyChangedLeavesTheOriginalAsItWas() throws {
        var original = IndexSnapshot(ImageIndex())
        let digest = try #require(Digest("sha256:" + String(repeating: "c", count: 64)))
        for number in 0..<(3 * EntryChunks<Box>.capacity) {
            original.setTag(try #require(Tag("v\(number)")), to: Descriptor(mediaType: MediaType.ociManifest, digest: digest, size: 7))
        }
        let before = original.encoded()
        var copy = original
        #expect(copy.removeTag(try #require(Tag("v5"))))
        copy.setTag(try #require(Tag("new")), to: Descriptor(mediaType: MediaType.ociManifest, digest: digest, size: 7))
        let unchanged = original.encoded() == before
        #expect(unchanged)
        #expect(original.descriptor(forTag: "v5") != nil && original.descriptor(forTag: "new") == nil)
        #expect(copy.descriptor(forTag: "v5") == nil && copy.descriptor(forTag: "new") != nil)
    }

    final class Box: Sendable {}
}
