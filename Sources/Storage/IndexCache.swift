#if canImport(Glibc)
import Glibc
#endif
import Locks

/// Parsed `index.json` files, kept per process so a lookup by tag costs a `pread` of the
/// file's head and a dictionary lookup, whatever the number of tags and however often
/// the index changes.
///
/// An entry is used while the file's `IndexGeneration` (read from its content) and size
/// are those it was parsed from. Commits by this process store their result directly, so
/// neither readers nor the next commit parse the file again. A file without a generation
/// (written by another tool) is cached by `FileIdentity` once settled, as before.
final class IndexCache: Sendable {
    private struct Entry: Sendable {
        let generation: IndexGeneration?
        let identity: FileIdentity?
        let snapshot: IndexSnapshot
    }

    /// Per path the newest entry first, and the one before it: a commit stores its result
    /// before the rename, while readers still meet the file it replaces.
    private let entries = ReadWriteLock<[String: [Entry]]>([:])
    private let capacity: Int
    /// Paths being parsed right now, so that the threads that find a changed file wait
    /// for one parse instead of each doing it (only `loadGate` touches it).
    private let loadGate = ConditionLock()
    nonisolated(unsafe) private var loading: Set<String> = []

    /// Decides when a file without a generation is old enough for its identity to be trusted.
    private let clock: StoreClock

    init(capacity: Int = 4096, clock: StoreClock) {
        self.capacity = capacity
        self.clock = clock
    }

    /// Files parsed whole by this cache (the cost a journal replay avoids), for tests.
    let parses = Locked(0)

    /// The index at `path`, from memory when the file is the one cached; an empty index
    /// when there is no file. With a `journal` (`IndexJournal`), a cached index a few
    /// commits behind the file is brought up to it by replaying them, not by a parse.
    func lookup(_ path: String, journal: String? = nil) throws(StorageError) -> IndexSnapshot {
        if let cached = try cachedSnapshot(path) { return cached }
        loadGate.lock()
        while loading.contains(path) { loadGate.wait() }
        let cached: IndexSnapshot?
        do { cached = try cachedSnapshot(path) } catch {
            loadGate.unlock()
            throw error
        }
        if let cached {
            loadGate.unlock()
            return cached
        }
        loading.insert(path)
        loadGate.unlock()
        defer {
            loadGate.lock()
            loading.remove(path)
            loadGate.broadcast()
            loadGate.unlock()
        }
        if let journal, let replayed = try replay(path, journal: journal) { return replayed }
        return try load(path)
    }

    /// The newest cached index of `path` brought up to the file's generation from the
    /// journal; nil when the journal does not lead there, or the result is not the file's size.
    private func replay(_ path: String, journal: String) throws(StorageError) -> IndexSnapshot? {
        guard let current = try IndexGeneration.peek(path),
              let cached = entries.read({ $0[path]?.first { $0.generation != nil } }),
              let from = cached.generation?.value,
              let chain = IndexJournal.chain(from: from, to: current.value, path: journal), !chain.isEmpty else { return nil }
        var snapshot = cached.snapshot
        for entry in chain {
            for operation in entry.operations { snapshot.perform(operation) }
            snapshot.setGeneration(entry.to)
            snapshot.clearPerformed()
        }
        guard let last = chain.last, last.size == current.fileSize, Int64(snapshot.encodedSize) == current.fileSize,
              snapshot.generation == current.value else { return nil }
        insert(Entry(generation: current, identity: nil, snapshot: snapshot), at: path)
        return snapshot
    }

    /// The cached snapshot when it is the file at `path` now; an empty index when there is
    /// no file. A file that cannot be looked at throws: read as "no file", it would make
    /// the next commit drop every tag.
    private func cachedSnapshot(_ path: String) throws(StorageError) -> IndexSnapshot? {
        if let generation = try IndexGeneration.peek(path) {
            return entries.read { $0[path]?.first { $0.generation == generation }?.snapshot }
        }
        guard let identity = try FileIdentity.current(path) else { return IndexSnapshot(ImageIndex()) }
        return entries.read { $0[path]?.first { $0.generation == nil && $0.identity == identity }?.snapshot }
    }

    /// Records what a commit just wrote to `path`.
    func store(_ snapshot: IndexSnapshot, fileSize: Int, at path: String) {
        guard let value = snapshot.generation else { return }
        insert(Entry(generation: IndexGeneration(value: value, fileSize: Int64(fileSize)), identity: nil,
                     snapshot: snapshot), at: path)
    }

    private func load(_ path: String) throws(StorageError) -> IndexSnapshot {
        parses.withLock { $0 += 1 }
        let identity = try FileIdentity.current(path)
        guard let bytes = try FileSystem.readFile(path) else { return IndexSnapshot(ImageIndex()) }
        let snapshot = IndexSnapshot(try ImageIndex.decode(bytes, path: path))
        if let generation = IndexGeneration.parse(bytes.prefix(512), fileSize: Int64(bytes.count)),
           generation.value == snapshot.generation {
            insert(Entry(generation: generation, identity: nil, snapshot: snapshot), at: path)
        } else if let identity, identity.isSettled(now: clock.now()), Int64(bytes.count) == identity.size {
            insert(Entry(generation: nil, identity: identity, snapshot: snapshot), at: path)
        }
        return snapshot
    }

    private func insert(_ entry: Entry, at path: String) {
        // What the insert drops is freed after the lock is released: a snapshot of 20,000
        // tags takes about a millisecond to free, which readers should not wait for.
        let dropped: [String: [Entry]] = entries.write { entries in
            var dropped: [String: [Entry]] = [:]
            if entries.count >= capacity, entries[path] == nil { swap(&dropped, &entries) }
            let kept = [entry] + (entries[path]?.prefix(1) ?? [])
            if let replaced = entries.updateValue(kept, forKey: path) { dropped[path] = replaced }
            return dropped
        }
        withExtendedLifetime(dropped) {}
    }
}
