#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The events of one `index.json` commit, as queued: the CloudEvents and how their
/// delivery goes.
public struct EventBatch: Codable, Sendable, Equatable {
    public var repository: String
    /// The generation of the commit (`org.berth.generation` of the index it wrote).
    public var generation: String
    public var events: [RegistryEvent]
    /// Delivery attempts that failed so far.
    public var attempts = 0
    /// Unix seconds before which the next attempt is not made.
    public var notBefore = 0
    /// The webhooks (by `Webhook.id`) that took every event of the batch.
    public var delivered: [String] = []
    /// Why the last attempt failed (never a secret: a status or a curl error).
    public var lastError: String?
}

/// One batch in a repository's queue (or its dead letters).
public struct QueuedEvents: Sendable {
    public let repository: RepositoryName
    public let name: EventBatchName
    public var batch: EventBatch
    public let dead: Bool
}

/// The on-disk outbox of repository events, written inside the `index.json` commit.
///
/// **Commit protocol.** Every step runs under the repository's lock, in the commit that
/// replaces `index.json` with a new generation G (`ManifestStore`):
/// 1. *settle* what a crashed commit may have left: a `_prepared.json` whose generation is
///    the one `index.json` carries now did commit, and is queued; any other did not, and
///    is removed;
/// 2. *prepare*: the commit's events, keyed by G, are written to `_prepared.json`
///    (temp file, fsync, rename, directory fsync);
/// 3. *commit*: `index.json` with generation G is written the same way; only after its
///    directory fsync is the change acknowledged to the client;
/// 4. *confirm*: `_prepared.json` is renamed to `_queue/<G>.json` and the directory fsynced.
/// A SIGKILL before 3's rename leaves a prepared file for a generation that never became
/// visible: settled away (no event for a change that did not happen). A SIGKILL after it
/// leaves a prepared file whose generation is on disk: settled into the queue (no
/// acknowledged change without its event). A failed write settles at once the same way.
/// Settling happens at the next commit of the repository, or in the deliverer, which
/// takes the repository's lock for a prepared file older than a few seconds. Generations
/// carry 64 random bits, so a generation on disk names exactly one commit; a counter
/// incremented per commit orders the queue.
///
/// Only the deliverer (one per store: `claimDelivery`) changes or removes queued
/// batches, and prunes the folders of drained queues (under the repository's lock, so
/// no commit is between making its folder and queuing into it; a parent pruned under a
/// nested repository's commit is made again by `makeDirectories`). `replay` moves dead
/// ones back.
public struct EventOutbox: Sendable {
    public let layout: StoreLayout
    private let repositories: RepositoryStore

    init(layout: StoreLayout, repositories: RepositoryStore) {
        self.layout = layout
        self.repositories = repositories
    }

    // MARK: The commit (under the repository lock)

    /// Step 1: queues or removes a prepared batch left by an earlier commit, by whether
    /// `currentGeneration` (that of the `index.json` on disk) is its generation.
    func settleLocked(_ repository: RepositoryName, currentGeneration: String?) throws(StorageError) {
        let prepared = layout.preparedEventsFile(repository)
        guard FileSystem.regularFileSize(prepared) != nil else { return }
        guard let bytes = try FileSystem.readFile(prepared),
              let batch = try? JSONDecoder().decode(EventBatch.self, from: Data(bytes)),
              let name = EventBatchName(generation: batch.generation), batch.generation == currentGeneration else {
            try FileSystem.remove(prepared)
            try FileSystem.fsyncDirectory(FileSystem.parent(of: prepared))
            return
        }
        try confirmLocked(repository, name)
    }

    /// Step 2: the events of the commit that will write `generation`, durable.
    func prepareLocked(_ events: [IndexEvent], repository: RepositoryName, generation: String) throws(StorageError) {
        let time = RFC3339.now()
        let batch = EventBatch(repository: repository.value, generation: generation, events: events.enumerated().map {
            $0.element.event(repository: repository, generation: generation, position: $0.offset, time: time)
        })
        try FileSystem.makeDirectories(layout.eventQueueDirectory(repository))
        try FileSystem.writeAtomically(JSONText.encode(batch), to: layout.preparedEventsFile(repository),
                                       temporaryDirectory: layout.temporaryDirectory)
    }

    /// Step 4: the prepared batch of the commit `name` joins the queue.
    func confirmLocked(_ repository: RepositoryName, _ name: EventBatchName) throws(StorageError) {
        let destination = layout.queuedEventsFile(repository, name)
        try FileSystem.makeDirectories(layout.eventQueueDirectory(repository))
        try FileSystem.rename(layout.preparedEventsFile(repository), destination)
        try FileSystem.fsyncDirectory(layout.eventQueueDirectory(repository))
        try FileSystem.fsyncDirectory(FileSystem.parent(of: layout.preparedEventsFile(repository)))
    }

    // MARK: Delivery

    /// Settles every prepared batch older than `seconds` (a commit cut off by a crash,
    /// with no commit of that repository since), each under its repository's lock.
    /// Returns how many it settled; a repository that fails (its lock busy past the bounded
    /// wait) does not keep the others from being settled, and its error is thrown at the end.
    @discardableResult
    public func settleInterrupted(olderThan seconds: Int) throws(StorageError) -> Int {
        var settled = 0
        var failure: StorageError?
        for repository in try repositories(dead: false) {
            let prepared = layout.preparedEventsFile(repository)
            guard let status = FileSystem.status(prepared), status.lastChange <= time(nil) - seconds else { continue }
            do throws(StorageError) {
                try self.repositories.withLock(repository) { () throws(StorageError) in
                    try settleLocked(repository, currentGeneration: IndexGeneration.peek(layout.indexFile(repository))?.value)
                }
                settled += 1
            } catch {
                failure = failure ?? error
            }
        }
        if let failure { throw failure }
        return settled
    }

    /// Every repository with queued batches or a prepared one (or, `dead`, dead letters), sorted.
    public func repositories(dead: Bool) throws(StorageError) -> [RepositoryName] {
        var found: [(RepositoryName, Bool)] = []
        try collect(dead ? layout.deadEventsDirectory : layout.outboxDirectory, prefix: nil, into: &found)
        return found.filter(\.1).map(\.0).sorted { $0.value < $1.value }
    }

    /// Removes the outbox folders of repositories with nothing queued or prepared (and
    /// their parents while empty), each under the repository's lock, so that the
    /// deliverer's walk stays as small as the work waiting. Returns how many it removed.
    @discardableResult
    public func pruneEmpty() throws(StorageError) -> Int {
        var found: [(RepositoryName, Bool)] = []
        try collect(layout.outboxDirectory, prefix: nil, into: &found)
        var pruned = 0
        for (repository, _) in found.filter({ !$0.1 }) {
            try repositories.withLock(repository) { () throws(StorageError) in
                // Under the lock no commit is between creating the folder and queuing into it.
                guard !hasPrepared(repository) else { return }
                if removeEmptyFolders(from: layout.eventQueueDirectory(repository), upTo: layout.outboxDirectory) { pruned += 1 }
            }
        }
        return pruned
    }

    /// `rmdir` of `directory`, then of each parent below `top`, while they are empty; true
    /// when `directory` went (or was not there).
    private func removeEmptyFolders(from directory: String, upTo top: String) -> Bool {
        guard rmdir(directory) == 0 || errno == ENOENT else { return false }
        var parent = FileSystem.parent(of: directory)
        while parent.hasPrefix(top + "/"), rmdir(parent) == 0 { parent = FileSystem.parent(of: parent) }
        return true
    }

    /// How many batches wait for delivery (or, `dead`, were given up on), from the folder
    /// listings alone (no batch is read): for the metrics.
    public func batchCount(dead: Bool) throws(StorageError) -> Int {
        var count = 0
        for repository in try repositories(dead: dead) {
            for entry in try FileSystem.listDirectory(layout.eventQueueDirectory(repository, dead: dead))
            where !entry.isDirectory && EventBatchName(fileName: entry.name) != nil {
                count += 1
            }
        }
        return count
    }

    /// True when a commit of `repository` left a prepared batch not settled yet.
    public func hasPrepared(_ repository: RepositoryName) -> Bool {
        FileSystem.regularFileSize(layout.preparedEventsFile(repository)) != nil
    }

    /// The repository's queued (or dead) batches, oldest commit first. A file that does
    /// not parse is reported as `corrupt`, never skipped silently.
    public func queued(_ repository: RepositoryName, dead: Bool = false) throws(StorageError) -> [QueuedEvents] {
        let directory = layout.eventQueueDirectory(repository, dead: dead)
        var names: [EventBatchName] = []
        for entry in try FileSystem.listDirectory(directory) where !entry.isDirectory {
            if let name = EventBatchName(fileName: entry.name) { names.append(name) }
        }
        var batches: [QueuedEvents] = []
        for name in names.sorted() {
            let path = layout.queuedEventsFile(repository, name, dead: dead)
            guard let bytes = try FileSystem.readFile(path) else { continue }  // delivered meanwhile
            guard let batch = try? JSONDecoder().decode(EventBatch.self, from: Data(bytes)) else {
                throw .corrupt(path: path, reason: "not an event batch")
            }
            batches.append(QueuedEvents(repository: repository, name: name, batch: batch, dead: dead))
        }
        return batches
    }

    /// Records a failed attempt (or a partial delivery) of a queued batch.
    public func update(_ queued: QueuedEvents) throws(StorageError) {
        try FileSystem.writeAtomically(JSONText.encode(queued.batch),
                                       to: layout.queuedEventsFile(queued.repository, queued.name, dead: queued.dead),
                                       temporaryDirectory: layout.temporaryDirectory)
    }

    /// Removes a batch every webhook took.
    public func remove(_ queued: QueuedEvents) throws(StorageError) {
        try FileSystem.remove(layout.queuedEventsFile(queued.repository, queued.name, dead: queued.dead))
    }

    /// Moves a batch to the dead letters, as it is now (attempts and last error kept).
    public func bury(_ queued: QueuedEvents) throws(StorageError) {
        try move(queued, dead: true, batch: queued.batch)
    }

    /// Moves every dead batch (of `repository`, or of all) back to its queue with its
    /// attempts reset; returns how many. Webhooks that took it already do not get it again.
    @discardableResult
    public func replay(_ repository: RepositoryName? = nil) throws(StorageError) -> Int {
        var moved = 0
        let names: [RepositoryName]
        if let repository { names = [repository] } else { names = try repositories(dead: true) }
        for name in names {
            for dead in try queued(name, dead: true) {
                var batch = dead.batch
                batch.attempts = 0
                batch.notBefore = 0
                batch.lastError = nil
                try move(dead, dead: false, batch: batch)
                moved += 1
            }
            _ = removeEmptyFolders(from: layout.eventQueueDirectory(name, dead: true), upTo: layout.deadEventsDirectory)
        }
        return moved
    }

    /// Writes `batch` to the other folder, then removes the old file: a crash between
    /// the two leaves both, which delivers (at least once) rather than losing it.
    private func move(_ queued: QueuedEvents, dead: Bool, batch: EventBatch) throws(StorageError) {
        try FileSystem.makeDirectories(layout.eventQueueDirectory(queued.repository, dead: dead))
        try FileSystem.writeAtomically(JSONText.encode(batch), to: layout.queuedEventsFile(queued.repository, queued.name, dead: dead),
                                       temporaryDirectory: layout.temporaryDirectory)
        try FileSystem.remove(layout.queuedEventsFile(queued.repository, queued.name, dead: queued.dead))
    }

    /// The store's one delivery claim, or nil while another process holds it. Held until
    /// the claim is released (or its process dies).
    public func claimDelivery() -> DeliveryClaim? {
        let path = layout.eventDeliveryLockFile
        guard (try? FileSystem.makeDirectories(FileSystem.parent(of: path))) != nil,
              let fd = try? FileSystem.open(path, O_RDWR | O_CREAT, mode: 0o644) else { return nil }
        guard FileSystem.tryLock(fd) else {
            close(fd)
            return nil
        }
        return DeliveryClaim(descriptor: fd)
    }

    /// Every repository folder under `directory`, and whether it holds work (a prepared
    /// batch, or a non-empty queue).
    private func collect(_ directory: String, prefix: String?, into found: inout [(RepositoryName, Bool)]) throws(StorageError) {
        let entries = try FileSystem.listDirectory(directory)
        if let prefix, let name = RepositoryName(prefix) {
            let queue = "\(directory)/\(StoreLayout.eventQueueDirectoryName)"
            let prepared = entries.contains { $0.name == StoreLayout.preparedEventsFileName }
            let hasQueue = entries.contains { $0.name == StoreLayout.eventQueueDirectoryName }
            var queued = false
            if hasQueue { queued = try !FileSystem.listDirectory(queue).isEmpty }
            if prepared || hasQueue { found.append((name, prepared || queued)) }
        }
        for entry in entries where entry.isDirectory && RepositoryName.isValidComponent(entry.name) {
            try collect("\(directory)/\(entry.name)", prefix: prefix.map { "\($0)/\(entry.name)" } ?? entry.name, into: &found)
        }
    }
}

/// The flock that makes one process the store's event deliverer; released when the claim
/// goes away or its process ends.
public final class DeliveryClaim: Sendable {
    private let descriptor: Int32

    init(descriptor: Int32) { self.descriptor = descriptor }

    deinit { close(descriptor) }
}
