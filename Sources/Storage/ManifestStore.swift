import Locks

/// Manifests and tags: validated manifests stored byte-exact as blobs, and the
/// repository's `index.json` naming them. `index.json` is replaced whole under the
/// repository lock; readers never lock.
public struct ManifestStore: ManifestService, TagService {
    public let layout: StoreLayout
    private let blobs: BlobStore
    private let repositories: RepositoryStore
    private let referrers: ReferrersStore
    let cache: IndexCache
    private let committer: IndexCommitter
    private let immutableTags: [ImmutableTagRule]
    /// Where commits record their events, and settle what an interrupted one left (every
    /// writer of `index.json` settles, recording or not: see `EventOutbox`).
    private let outbox: EventOutbox?
    private let recordsEvents: Bool

    /// Built by `Store`, which owns the index cache and the group committer.
    init(layout: StoreLayout, blobs: BlobStore, repositories: RepositoryStore, referrers: ReferrersStore, cache: IndexCache,
         committer: IndexCommitter, immutableTags: [ImmutableTagRule] = [], outbox: EventOutbox? = nil,
         recordsEvents: Bool = false) {
        self.committer = committer
        self.recordsEvents = recordsEvents
        self.immutableTags = immutableTags
        self.outbox = outbox
        self.layout = layout
        self.blobs = blobs
        self.repositories = repositories
        self.referrers = referrers
        self.cache = cache
    }

    public typealias Resolved = ResolvedManifest
    public typealias Pushed = PushedManifest

    /// Validates `body` and stores it under `reference`: a tag now points to it, or
    /// (pushed by digest) it is listed untagged; each of `tags` points to it as well, all
    /// in one `index.json` commit. Every referenced blob and child must already be in
    /// `repository`. A write-once tag (`immutable_tags`) that names another manifest
    /// refuses the whole push (`tagImmutable`), checked under the repository lock.
    public func put(
        _ body: [UInt8], contentType: String?, reference: Reference, repository: RepositoryName, tags: [Tag]
    ) throws(StorageError) -> Pushed {
        try store(body, contentType: contentType, reference: reference, repository: repository, tags: tags, checkingReferences: true)
    }

    /// Stores `body` like `put`, without requiring its blobs and children in `repository`.
    public func putFetched(_ body: [UInt8], contentType: String?, reference: Reference,
                           repository: RepositoryName) throws(StorageError) -> Pushed {
        try store(body, contentType: contentType, reference: reference, repository: repository, tags: [], checkingReferences: false)
    }

    private func store(
        _ body: [UInt8], contentType: String?, reference: Reference, repository: RepositoryName, tags: [Tag],
        checkingReferences: Bool
    ) throws(StorageError) -> Pushed {
        let algorithm: Digest.Algorithm = if case .digest(let wanted) = reference { wanted.algorithm } else { .sha256 }
        let digest = ContentHasher.digest(of: body, algorithm: algorithm)
        if case .digest(let wanted) = reference, wanted != digest {
            throw .digestMismatch(expected: wanted, computed: digest)
        }
        let document = try ManifestDocument(body: body, contentType: contentType)
        if checkingReferences { try checkReferences(of: document, in: repository) }

        try blobs.put(body, as: digest, into: repository)
        let descriptor = Descriptor(mediaType: document.mediaType, digest: digest, size: Int64(body.count))
        var tagsSet: [Tag] = []
        if case .tag(let tag) = reference { tagsSet.append(tag) }
        tagsSet += tags.filter { !tagsSet.contains($0) }
        let applied = tagsSet
        // Filled by the commit (on whichever thread runs the group), read after it.
        let moved = Locked<[Tag: String]>([:])
        let change = IndexChange(apply: { [self] (snapshot: inout IndexSnapshot) throws(StorageError) in
            // Again under the lock: garbage collection (which holds it) may have removed
            // an unreferenced blob since the first check.
            if checkingReferences { try checkReferences(of: document, in: repository) }
            var events: [IndexEvent] = []
            if checkingReferences {
                events.append(IndexEvent(.manifestPushed, digest: descriptor.digest, mediaType: descriptor.mediaType,
                                         size: descriptor.size, tags: applied.map(\.value)))
            } else if snapshot.descriptor(forDigest: descriptor.digest) == nil {
                // A mirror's fetch: an event only for a manifest it did not hold yet.
                events.append(IndexEvent(.mirrorFetched, digest: descriptor.digest, mediaType: descriptor.mediaType,
                                         size: descriptor.size, tags: applied.map(\.value)))
            }
            for tag in applied {
                try checkMovable(tag, to: descriptor.digest, in: snapshot, repository: repository)
                if let previous = snapshot.descriptor(forTag: tag.value), previous.digest != descriptor.digest {
                    events.append(IndexEvent(.tagMoved, digest: descriptor.digest, tag: tag.value, previousDigest: previous.digest))
                    moved.withLock { $0[tag] = previous.digest }
                }
            }
            switch reference {
            case .tag(let tag): snapshot.perform(.setTag(tag, descriptor))
            case .digest: if tags.isEmpty { snapshot.perform(.addUntagged(descriptor)) }
            }
            for tag in tags { snapshot.perform(.setTag(tag, descriptor)) }
            return events
        }, afterWrite: { [self] () throws(StorageError) in
            if let subject = document.subject {
                let referrer = Descriptor(mediaType: document.mediaType, digest: digest, size: Int64(body.count),
                                          artifactType: document.artifactType, annotations: document.annotations)
                try referrers.record(referrer, subject: subject.digest, repository: repository)
            }
        })
        try submit(change, to: repository)
        return Pushed(digest: digest, document: document, tags: applied, moved: moved.withLock { $0 })
    }

    /// With events on, commits one `org.berth.mirror.fetched` event for a blob a mirror
    /// stored (an index commit that changes nothing else, so the event has its place in
    /// the repository's order and the outbox's crash safety).
    public func recordFetched(blob digest: Digest, size: UInt64, in repository: RepositoryName) throws(StorageError) {
        guard recordsEvents, outbox != nil else { return }
        let event = IndexEvent(.mirrorFetched, digest: digest.description, mediaType: "application/octet-stream",
                               size: Int64(clamping: size))
        try submit(IndexChange(apply: { _ in [event] }, afterWrite: {}), to: repository)
    }

    /// Deletes a tag (the manifest stays, reachable by digest and its other tags), or a
    /// manifest by digest (with all its tags and its referrers entry). A write-once tag
    /// is never deleted, neither by itself nor with its manifest (`tagImmutable`).
    public func delete(_ reference: Reference, in repository: RepositoryName) throws(StorageError) {
        guard repositories.exists(repository) else { throw .manifestUnknown(reference) }
        let change = IndexChange(apply: { [self] (snapshot: inout IndexSnapshot) throws(StorageError) in
            let event: IndexEvent
            switch reference {
            case .tag(let tag):
                try checkMovable(tag, to: nil, in: snapshot, repository: repository)
                guard let named = snapshot.descriptor(forTag: tag.value), snapshot.perform(.removeTag(tag)) else {
                    throw .manifestUnknown(reference)
                }
                event = IndexEvent(.tagDeleted, digest: named.digest, tag: tag.value)
            case .digest(let digest):
                let tags = snapshot.tags(forDigest: digest.description)
                for text in tags {
                    if let tag = Tag(text) { try checkMovable(tag, to: nil, in: snapshot, repository: repository) }
                }
                let named = snapshot.descriptor(forDigest: digest.description)
                guard snapshot.perform(.removeManifest(digest)) else { throw .manifestUnknown(reference) }
                event = IndexEvent(.manifestDeleted, digest: digest.description, mediaType: named?.mediaType, size: named?.size,
                                   tags: tags)
            }
            return [event]
        }, afterWrite: { [self] () throws(StorageError) in
            guard case .digest(let digest) = reference else { return }
            if let body = try FileSystem.readFile(layout.blobFile(repository, digest), limit: ManifestDocument.maximumSize),
               let subject = try? ManifestDocument(body: body, contentType: nil).subject {
                try referrers.remove(digest, subject: subject.digest, repository: repository)
            }
        })
        try submit(change, to: repository)
    }

    /// The manifest a tag or digest names in `repository`.
    /// One `stat` on the pull path: a repository that does not exist (or is still being
    /// created) has no `index.json` or an empty one, and names no manifest either way.
    public func resolve(_ reference: Reference, in repository: RepositoryName) throws(StorageError) -> Resolved {
        let index = try cache.lookup(layout.indexFile(repository), journal: layout.indexJournalFile(repository))
        let found: Descriptor? = switch reference {
        case .tag(let tag): index.descriptor(forTag: tag.value)
        case .digest(let digest): index.descriptor(forDigest: digest.description)
        }
        guard let found, let digest = Digest(found.digest) else { throw .manifestUnknown(reference) }
        return Resolved(digest: digest, mediaType: found.mediaType, size: found.size)
    }

    /// The repository's tags, sorted.
    public func tags(of repository: RepositoryName) throws(StorageError) -> [String] {
        guard repositories.exists(repository) else { throw .repositoryUnknown(repository) }
        return try cache.lookup(layout.indexFile(repository), journal: layout.indexJournalFile(repository)).sortedTags
    }

    /// The repository's `index.json`, as last written.
    public func readIndex(_ repository: RepositoryName) throws(StorageError) -> ImageIndex {
        let path = layout.indexFile(repository)
        guard let bytes = try FileSystem.readFile(path) else { return ImageIndex() }
        return try ImageIndex.decode(bytes, path: path)
    }

    /// Replaces the repository's `index.json` with `index` as a new commit. The caller
    /// holds the repository lock (garbage collection and scrub repairs).
    func replaceIndexLocked(_ index: ImageIndex, _ repository: RepositoryName) throws(StorageError) {
        var snapshot = IndexSnapshot(index)
        try outbox?.settleLocked(repository, currentGeneration: IndexGeneration.peek(layout.indexFile(repository))?.value)
        try write(&snapshot, to: layout.indexFile(repository), journal: nil, repository: repository, events: [])
    }

    /// Applies `change` in the next group commit of `repository` (see `IndexCommitter`).
    private func submit(_ change: IndexChange, to repository: RepositoryName) throws(StorageError) {
        try committer.submit(change, key: repository.value) { changes in commit(changes, into: repository) }
    }

    /// One commit: the repository lock, the current index (from the cache when it is the
    /// file on disk), every change that applies, one write, then each change's follow-up.
    private func commit(_ changes: [IndexChange], into repository: RepositoryName) -> [Result<Void, StorageError>] {
        var results = [Result<Void, StorageError>](repeating: .success(()), count: changes.count)
        do throws(StorageError) {
            try repositories.withLock(repository) { () throws(StorageError) in
                let path = layout.indexFile(repository)
                var snapshot = try cache.lookup(path, journal: layout.indexJournalFile(repository))
                snapshot.clearPerformed()
                var accepted: [Int] = []
                var events: [IndexEvent] = []
                for (position, change) in changes.enumerated() {
                    do throws(StorageError) {
                        events += try change.apply(&snapshot)
                        accepted.append(position)
                    } catch {
                        results[position] = .failure(error)
                    }
                }
                guard !accepted.isEmpty else { return }
                try write(&snapshot, to: path, journal: layout.indexJournalFile(repository), repository: repository, events: events)
                for position in accepted {
                    do throws(StorageError) { try changes[position].afterWrite() } catch { results[position] = .failure(error) }
                }
            }
        } catch {
            for position in results.indices {
                if case .success = results[position] { results[position] = .failure(error) }
            }
        }
        return results
    }

    /// Writes `snapshot` under a new generation (temp file, fsync, rename, directory
    /// fsync) and hands it to the cache, so nobody in this process parses it again. With
    /// a `journal`, the operations performed on it since it was read are journaled first,
    /// so other processes replay them instead of parsing the file. With an outbox,
    /// `events` are prepared before and queued after, and a batch an interrupted commit
    /// left is settled first: the protocol of `EventOutbox`. The caller holds the
    /// repository lock.
    private func write(_ snapshot: inout IndexSnapshot, to path: String, journal: String?, repository: RepositoryName,
                       events: [IndexEvent]) throws(StorageError) {
        let previous = snapshot.generation
        // The snapshot is the file on disk (the cache checks its generation).
        try outbox?.settleLocked(repository, currentGeneration: previous)
        let operations = snapshot.performed
        snapshot.clearPerformed()
        let generation = IndexGeneration.next(after: previous)
        snapshot.setGeneration(generation)
        let recorded = events.isEmpty || !recordsEvents ? nil : outbox
        try recorded?.prepareLocked(events, repository: repository, generation: generation)
        let pieces = snapshot.encodedPieces()
        let size = pieces.reduce(0) { $0 + $1.count }
        // Cached before the rename, so readers that meet the new file find it parsed (the
        // one it replaces stays cached beside it until then).
        let written = snapshot
        do {
            try FileSystem.writeAtomically(pieces: pieces, to: path, temporaryDirectory: layout.temporaryDirectory) {
                if let journal, let previous, let next = written.generation, !operations.isEmpty {
                    IndexJournal.append(from: previous, to: next, size: Int64(size), operations: operations, path: journal,
                                        temporaryDirectory: layout.temporaryDirectory)
                }
                cache.store(written, fileSize: size, at: path)
            }
        } catch {
            // The rename may have happened (a failed directory fsync): the file decides.
            try? recorded?.settleLocked(repository, currentGeneration: IndexGeneration.peek(path)?.value)
            throw error
        }
        // Not confirmed here (a failure), the batch is settled into the queue later: its
        // generation is on disk.
        if let recorded, let name = EventBatchName(generation: generation) {
            try? recorded.confirmLocked(repository, name)
        }
    }

    /// Throws `tagImmutable` when `tag` names a manifest other than `digest` (nil: the
    /// tag would go) and a write-once rule covers it. A tag not yet set is always free.
    private func checkMovable(_ tag: Tag, to digest: String?, in snapshot: IndexSnapshot,
                              repository: RepositoryName) throws(StorageError) {
        guard !immutableTags.isEmpty, let current = snapshot.descriptor(forTag: tag.value), current.digest != digest,
              let rule = immutableTags.rule(for: tag, in: repository) else { return }
        throw .tagImmutable(tag, repository: repository, rule: rule.description)
    }

    private func checkReferences(of document: ManifestDocument, in repository: RepositoryName) throws(StorageError) {
        for blob in document.requiredBlobs {
            guard let size = blobs.size(of: blob.digest, in: repository) else { throw .manifestBlobUnknown(blob.digest) }
            guard size == UInt64(max(blob.size, 0)) else {
                throw .manifestInvalid("\(blob.digest) is \(size) bytes in the registry, the manifest says \(blob.size)")
            }
        }
        for child in document.children {
            guard blobs.size(of: child.digest, in: repository) != nil else { throw .manifestBlobUnknown(child.digest) }
        }
    }
}
