import Foundation
import Locks
@testable import Mirror
import Storage
import Testing
import TestSupport

/// A request that follows another's fetch of the same blob reads the bytes from that
/// fetch's upload session as they arrive, and ends as the fetch ends.
@Suite struct FetchFollowingTests {
    let bytes: [UInt8] = {
        var random = SeededBytes(seed: 41)
        return random.next(3 << 20)
    }()
    let repository = RepositoryName("hub/team/app")!

    /// Starts a follower on its own thread once the leader has announced its session.
    func follow(_ store: Store, digest: Digest) throws -> (result: Locked<(bytes: [UInt8], error: StorageError?)?>, done: DispatchSemaphore) {
        guard case .following(let session, let size, let watch) = try FetchLock.take(store.layout, repository, digest, patience: 5) else {
            throw StorageError.unsupported("expected to follow the held lock")
        }
        let blob = FollowingBlob(digest: digest, size: size, session: session, watch: watch, layout: store.layout,
                                 blobs: store.blobs, repository: repository, namespace: "hub")
        let result = Locked<(bytes: [UInt8], error: StorageError?)?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            var received: [UInt8] = []
            var failure: StorageError?
            do throws(StorageError) {
                try blob.deliver { received.append(contentsOf: $0); return true }
            } catch {
                failure = error
            }
            let outcome = (received, failure)
            result.withLock { $0 = outcome }
            done.signal()
        }
        return (result, done)
    }

    @Test func aFollowerGetsEveryByteOfACompletedFetch() throws {
        let directory = TemporaryDirectory(prefix: "berth-follow")
        defer { directory.remove() }
        let store = Store(root: directory.path)
        let digest = ContentHasher.digest(of: bytes)
        guard case .leading(let lock) = try FetchLock.take(store.layout, repository, digest) else {
            Issue.record("the first taker must lead")
            return
        }
        let session = try store.uploads.start(repository: repository)
        lock.announce(session: session.id, size: UInt64(bytes.count))
        let half = bytes.count / 2
        _ = try store.uploads.append(session.id, repository: repository, from: BufferByteSource(Array(bytes[..<half])))
        let (result, done) = try follow(store, digest: digest)
        _ = try store.uploads.complete(session.id, repository: repository, digest: digest,
                                       lastChunk: BufferByteSource(Array(bytes[half...])))
        lock.release()
        #expect(done.wait(timeout: .now() + 30) == .success)
        let outcome = try #require(result.withLock { $0 })
        #expect(outcome.error == nil)
        #expect(outcome.bytes == bytes)
        // The lock is free again: the next taker leads (and finds the blob stored).
        guard case .leading = try FetchLock.take(store.layout, repository, digest) else {
            Issue.record("a released lock must be taken")
            return
        }
    }

    @Test func aFollowerOfAFailedFetchIsCutShort() throws {
        let directory = TemporaryDirectory(prefix: "berth-follow")
        defer { directory.remove() }
        let store = Store(root: directory.path)
        let digest = ContentHasher.digest(of: bytes)
        guard case .leading(let lock) = try FetchLock.take(store.layout, repository, digest) else {
            Issue.record("the first taker must lead")
            return
        }
        let session = try store.uploads.start(repository: repository)
        lock.announce(session: session.id, size: UInt64(bytes.count))
        _ = try store.uploads.append(session.id, repository: repository, from: BufferByteSource(Array(bytes[..<1000])))
        let (result, done) = try follow(store, digest: digest)
        try store.uploads.cancel(session.id, repository: repository)
        lock.release()
        #expect(done.wait(timeout: .now() + 30) == .success)
        let outcome = try #require(result.withLock { $0 })
        #expect(outcome.bytes.count < bytes.count)
        guard case .upstreamUnavailable = outcome.error else {
            Issue.record("expected the follower to fail, got \(String(describing: outcome.error))")
            return
        }
        #expect(store.blobs.size(of: digest, in: repository) == nil)
    }

    /// Fetches run on pool threads, at most `limit` at once, each to its end, and the
    /// caller never waits for one.
    @Test func thePoolRunsEveryFetchOnItsOwnThreadsAtMostLimitAtOnce() {
        let pool = FetchPool(limit: 2)
        let state = Locked((running: 0, most: 0, done: 0))
        let release = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        for _ in 0..<6 {
            pool.run {
                state.withLock { $0.running += 1; $0.most = max($0.most, $0.running) }
                release.wait()
                state.withLock { $0.running -= 1; $0.done += 1 }
                finished.signal()
            }
        }
        // Six fetches were handed over while none could finish: run() did not wait.
        #expect(pool.pending == 6)
        for _ in 0..<6 { release.signal() }
        for _ in 0..<6 { #expect(finished.wait(timeout: .now() + 30) == .success) }
        let outcome = state.withLock { $0 }
        #expect(outcome.done == 6 && outcome.most <= 2 && outcome.most >= 1)
        for _ in 0..<200 where pool.pending > 0 { usleep(5_000) }
        #expect(pool.pending == 0)
    }
}
