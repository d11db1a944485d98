#if canImport(Glibc)
import Glibc
#endif
import Storage
import Locks
import Testing

/// The per-process caches and the locks under several POSIX threads at once, as the
/// worker's accept and pool threads use them. Run under ThreadSanitizer by scripts/test.
@Suite struct ConcurrencyTests {
    @Test func indexCacheReadersAndAWriterOnManyThreadsAlwaysSeeAPushedManifest() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let bodies = [try fixture.imageManifest(in: "app", seed: 1), try fixture.imageManifest(in: "app", seed: 2)]
        let store = fixture.manifests  // one instance, one cache, shared by every thread
        let tag = Reference.tag(Tag("latest")!)
        let digests = try bodies.map { try store.put($0, contentType: nil, reference: tag, repository: repo).digest }
        let indexFile = fixture.layout.indexFile(repo)
        let failures = Locked<[String]>([])
        onThreads(5) { thread in
            for round in 0..<40 {
                do {
                    if thread == 0 {
                        _ = try store.put(bodies[round % 2], contentType: nil, reference: tag, repository: repo)
                        // Settled, so the readers cache it (the rwlock's write side) and share it.
                        var times = [timespec(tv_sec: time(nil) - 60, tv_nsec: 0), timespec(tv_sec: time(nil) - 60, tv_nsec: 0)]
                        _ = utimensat(AT_FDCWD, indexFile, &times, 0)
                    } else {
                        let found = try store.resolve(tag, in: repo).digest
                        if !digests.contains(found) { failures.withLock { $0.append("resolved \(found)") } }
                        if try store.tags(of: repo) != ["latest"] { failures.withLock { $0.append("tags changed") } }
                    }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
    }

    @Test func catalogCacheServesThreadsWhileOthersCreateRepositories() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let serving = fixture.repositories  // one instance, one cache
        try serving.create(fixture.name("seed"))
        let failures = Locked<[String]>([])
        onThreads(4) { thread in
            for round in 0..<25 {
                do {
                    if thread < 2 {
                        try serving.create(fixture.name("team/t\(thread)-\(round)"))
                    } else if try !serving.catalog().contains(fixture.name("seed")) {
                        failures.withLock { $0.append("seed missing") }
                    }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        #expect(try fixture.otherProcess().repositories.catalog().count == 51)
    }

    @Test func chunksAppendedFromManyThreadsToOneSessionAllLand() throws {
        let fixture = StoreFixture()
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let uploads = fixture.uploads
        let id = try uploads.start(repository: repo).id
        let failures = Locked<[String]>([])
        onThreads(4) { thread in
            for _ in 0..<10 {
                do {
                    // No Content-Range: each chunk goes where the session ends, under its flock.
                    _ = try uploads.append(id, repository: repo, from: BufferByteSource([UInt8](repeating: UInt8(thread), count: 1000)))
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        #expect(try uploads.progress(id, repository: repo).size == 40_000)
    }
}

/// Runs `body(index)` on `count` POSIX threads at once and waits for all of them.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    final class Start: Sendable {
        let body: @Sendable (Int) -> Void
        let index: Int
        init(_ body: @escaping @Sendable (Int) -> Void, _ index: Int) { self.body = body; self.index = index }
    }
    var threads: [pthread_t] = []
    for index in 0..<count {
        var thread = pthread_t()
        let start = Unmanaged.passRetained(Start(body, index)).toOpaque()
        let created = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            let start = Unmanaged<Start>.fromOpaque(raw).takeRetainedValue()
            start.body(start.index)
            return nil
        }, start)
        precondition(created == 0, "pthread_create: \(created)")
        threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
}
