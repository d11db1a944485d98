#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Locks
import Storage
import Testing
import TestSupport

/// Correctness under size and concurrency: group commit, the generation-validated index
/// cache across store instances, and large indexes.
@Suite struct ScaleTests {
    @Test func everyAcknowledgedTagResolvesAfterConcurrentPushesFromTwoStoresAndManyThreads() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("ci/app")
        let bodies = try (0..<4).map { try fixture.imageManifest(in: "ci/app", seed: UInt64($0 + 1)) }
        let digests = bodies.map { ContentHasher.digest(of: $0) }
        let stores = [fixture.store, fixture.otherProcess()]  // two processes' worth of caches and committers
        let threads = 12, pushes = 20
        let acknowledged = Locked<[String: Digest]>([:])
        let failures = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            let store = stores[thread % stores.count]
            for push in 0..<pushes {
                let tag = "t\(thread)-\(push)"
                let which = (thread + push) % bodies.count
                do {
                    _ = try store.manifests.put(bodies[which], contentType: nil, reference: .tag(Tag(tag)!), repository: repo, tags: [])
                    acknowledged.withLock { $0[tag] = digests[which] }
                    // Readable at once, through this store's cache and the other one's.
                    for reader in stores {
                        let resolved = try reader.manifests.resolve(.tag(Tag(tag)!), in: repo)
                        if resolved.digest != digests[which] { failures.withLock { $0.append("\(tag) read back wrong") } }
                    }
                } catch {
                    failures.withLock { $0.append("\(tag): \(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        let expected = acknowledged.withLock { $0 }
        #expect(expected.count == threads * pushes)
        let fresh = fixture.otherProcess()
        for (tag, digest) in expected {
            #expect(try fresh.manifests.resolve(.tag(Tag(tag)!), in: repo).digest == digest)
            #expect(try fixture.manifests.resolve(.tag(Tag(tag)!), in: repo).digest == digest)
        }
        let bytes = try #require(fixture.fileContents(fixture.layout.indexFile(repo)))
        let index = try ImageIndex.decode(bytes, path: "index.json")
        #expect(Set(index.tags) == Set(expected.keys))
        #expect(index.generation != nil)
        #expect(try fixture.manifests.tags(of: repo) == expected.keys.sorted())
        // Byte-exact canonical encoding: the hand-written encoder agrees with JSONEncoder.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        #expect(Array(try encoder.encode(index)) == bytes)
    }

    @Test func aRewriteKeepingSizeInodeAndMtimeIsSeenByACachingStore() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let first = try fixture.imageManifest(in: "app", seed: 1)
        let second = try fixture.imageManifest(in: "app", seed: 2)
        #expect(first.count == second.count)
        let tag = Reference.tag(Tag("a")!), otherTag = Reference.tag(Tag("b")!)
        let reader = fixture.store
        let writer = fixture.otherProcess()
        let one = try writer.manifests.put(first, contentType: nil, reference: tag, repository: repo, tags: []).digest
        let two = try writer.manifests.put(second, contentType: nil, reference: otherTag, repository: repo, tags: []).digest
        let path = fixture.layout.indexFile(repo)
        // Settled: the old attribute-based cache would trust this file from now on.
        var old = [timespec(tv_sec: time(nil) - 60, tv_nsec: 0), timespec(tv_sec: time(nil) - 60, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, path, &old, 0) == 0)
        var before = stat()
        #expect(stat(path, &before) == 0)
        #expect(try reader.manifests.resolve(tag, in: repo).digest == one)
        #expect(try reader.manifests.resolve(tag, in: repo).digest == one)
        let keep = "\(fixture.directory.path)/kept-inode"
        #expect(link(path, keep) == 0)

        // Swap the two tags: the same entries and sizes, another content.
        _ = try writer.manifests.put(second, contentType: nil, reference: tag, repository: repo, tags: [])
        _ = try writer.manifests.put(first, contentType: nil, reference: otherTag, repository: repo, tags: [])
        let rewritten = try #require(fixture.fileContents(path))
        // Put the new content into the old inode, with the old size and mtime.
        #expect(Int(before.st_size) == rewritten.count)
        let fd = open(keep, O_WRONLY)
        #expect(fd >= 0)
        #expect(rewritten.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) } == rewritten.count)
        close(fd)
        #expect(utimensat(AT_FDCWD, keep, &old, 0) == 0)
        #expect(rename(keep, path) == 0)
        var after = stat()
        #expect(stat(path, &after) == 0)
        #expect(after.st_ino == before.st_ino && after.st_size == before.st_size && after.st_mtim.tv_sec == before.st_mtim.tv_sec)

        #expect(try reader.manifests.resolve(tag, in: repo).digest == two)
        #expect(try reader.manifests.resolve(otherTag, in: repo).digest == one)
    }

    @Test func aDeleteAndAPushInOtherStoresAreSeenAtOnce() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let body = try fixture.imageManifest(in: "app", seed: 3)
        let a = fixture.store, b = fixture.otherProcess()
        for number in 0..<30 {
            _ = try a.manifests.put(body, contentType: nil, reference: .tag(Tag("v\(number)")!), repository: repo, tags: [])
        }
        #expect(try b.manifests.tags(of: repo).count == 30)
        try b.manifests.delete(.tag(Tag("v7")!), in: repo)
        #expect(try a.manifests.tags(of: repo).count == 29)
        #expect(throws: StorageError.self) { try a.manifests.resolve(.tag(Tag("v7")!), in: repo) }
        _ = try a.manifests.put(body, contentType: nil, reference: .tag(Tag("v7")!), repository: repo, tags: [])
        #expect(try b.manifests.resolve(.tag(Tag("v7")!), in: repo).digest == ContentHasher.digest(of: body))
    }
}

extension ScaleTests {
    @Test func anIndexWrittenByAnotherToolIsReadAndTheNextCommitGivesItAGeneration() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let body = try fixture.imageManifest(in: "app", seed: 4)
        _ = try fixture.manifests.put(body, contentType: nil, reference: .tag(Tag("first")!), repository: repo, tags: [])
        let digest = ContentHasher.digest(of: body)
        // As umoci or a hand edit leaves it: no generation, other annotations first.
        var index = ImageIndex()
        index.annotations = ["a.note": "hand made"]
        index.manifests = [Descriptor(mediaType: MediaType.ociManifest, digest: digest, size: Int64(body.count),
                                      annotations: [Descriptor.refNameAnnotation: "by-hand"])]
        let path = fixture.layout.indexFile(repo)
        #expect(FileManager.default.createFile(atPath: "\(path).new", contents: Data(index.encoded())))
        #expect(rename("\(path).new", path) == 0)
        let other = fixture.otherProcess()
        for store in [fixture.store, other] {
            #expect(try store.manifests.resolve(.tag(Tag("by-hand")!), in: repo).digest == digest)
            #expect(throws: StorageError.self) { try store.manifests.resolve(.tag(Tag("first")!), in: repo) }
        }
        _ = try other.manifests.put(body, contentType: nil, reference: .tag(Tag("next")!), repository: repo, tags: [])
        let written = try ImageIndex.decode(try #require(fixture.fileContents(path)), path: path)
        #expect(written.generation != nil && written.annotations?["a.note"] == "hand made")
        #expect(try fixture.manifests.tags(of: repo) == ["by-hand", "next"])
    }
}

extension ScaleTests {
    /// Commits edit the cached index entry by entry; the file must be exactly what
    /// `ImageIndex`'s own rules give for the same operations, encoded canonically.
    @Test func randomTagPushesMovesAndDeletesMatchTheImageIndexRulesByteForByte() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let bodies = try (0..<6).map { try fixture.imageManifest(in: "app", seed: UInt64(10 + $0)) }
        let digests = bodies.map { ContentHasher.digest(of: $0) }
        let stores = [fixture.store, fixture.otherProcess()]
        var model = ImageIndex()
        var random = SeededBytes(seed: 99)
        let path = fixture.layout.indexFile(repo)
        for step in 0..<300 {
            let choice = random.next(3).map(Int.init)
            let store = stores[choice[0] % 2]
            let which = choice[1] % bodies.count
            let tag = Tag("t\(choice[2] % 12)")!
            let descriptor = Descriptor(mediaType: MediaType.ociManifest, digest: digests[which], size: Int64(bodies[which].count))
            switch choice[0] % 7 {
            case 0, 1, 2:
                _ = try store.manifests.put(bodies[which], contentType: nil, reference: .tag(tag), repository: repo, tags: [])
                model.setTag(tag, to: descriptor)
            case 3:
                _ = try store.manifests.put(bodies[which], contentType: nil, reference: .digest(digests[which]), repository: repo, tags: [])
                model.addUntagged(descriptor)
            case 4:
                let extra = Tag("x\(choice[2] % 5)")!
                _ = try store.manifests.put(bodies[which], contentType: nil, reference: .tag(tag), repository: repo, tags: [extra])
                model.setTag(tag, to: descriptor)
                model.setTag(extra, to: descriptor)
            case 5:
                let removed = model.removeTag(tag)
                do { try store.manifests.delete(.tag(tag), in: repo); #expect(removed) } catch { #expect(!removed) }
            default:
                let removed = model.removeManifest(digests[which])
                do { try store.manifests.delete(.digest(digests[which]), in: repo); #expect(removed) } catch { #expect(!removed) }
            }
            let bytes = try #require(fixture.fileContents(path))
            let written = try ImageIndex.decode(bytes, path: path)
            #expect(written.manifests == model.manifests, "step \(step)")
            #expect(written.encoded() == bytes, "step \(step)")
            for reader in stores {
                #expect(try reader.manifests.tags(of: repo) == model.tags, "step \(step)")
            }
        }
    }
}
