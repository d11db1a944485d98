import Locks

/// What was pulled (and pushed) in this process since the last flush, kept in memory:
/// the pull path only inserts into a set under a lock (no clock, no system call, no
/// allocation once a key has been seen). `flush` (the worker's background loop, every
/// `pull_record_interval` seconds, and at shutdown) writes what came in since the last
/// flush as one new segment file named for this process (`StoreLayout.pullRecordSegment`),
/// crash-safely, stamped with the store's clock. So a recorded time is the flush that
/// followed the pull: as precise as the interval, and a SIGKILL loses at most one
/// interval of records. Readers merge every segment (`PullHistory`).
public final class PullRecorder: Sendable {
    /// One thing a request did to content, as recorded.
    public enum Kind: String, Sendable, CaseIterable {
        /// A manifest read (GET or HEAD, by tag or digest).
        case pull
        /// A manifest pushed (or pushed again, or tagged again).
        case push
        /// A blob read from a mirrored repository.
        case blob

        /// A byte for fingerprints.
        var code: UInt8 {
            switch self {
            case .pull: 1
            case .push: 2
            case .blob: 3
            }
        }
    }

    struct Key: Hashable, Sendable {
        let kind: Kind
        let repository: RepositoryName
        let digest: Digest
    }

    private let layout: StoreLayout
    private let clock: StoreClock
    private let process: ProcessInstance
    private let pending = Locked<Set<Key>>([])
    /// What `pending` holds already, checked without its lock.
    private let recorded = RecordedFingerprints()
    /// Segments this process wrote so far, for the next one's name.
    private let written = Locked<Int>(0)

    /// Built by `Store.pullRecorder()`.
    init(layout: StoreLayout, clock: StoreClock, process: ProcessInstance = .current) {
        self.layout = layout
        self.clock = clock
        self.process = process
    }

    /// Notes that `repository`'s `digest` was just read (or pushed). Cheap: a fingerprint
    /// and one atomic load when it was noted since the last flush; else one set insert.
    public func record(_ kind: Kind, _ digest: Digest, in repository: RepositoryName) {
        let fingerprint = RecordedFingerprints.fingerprint(kind: kind.code, repository: repository.value, digest: digest)
        if recorded.contains(fingerprint) { return }
        let key = Key(kind: kind, repository: repository, digest: digest)
        pending.withLock {
            _ = $0.insert(key)
            recorded.note(fingerprint)
        }
    }

    /// Writes what was recorded since the last flush as a new segment (nothing when
    /// nothing was). On failure the records are kept for the next flush.
    public func flush() throws(StorageError) {
        let taken = pending.withLock { keys in
            defer {
                keys = []
                recorded.forgetAll()
            }
            return keys
        }
        guard !taken.isEmpty else { return }
        let now = clock.now()
        var text = PullHistory.header
        for key in taken.sorted(by: { ($0.repository, $0.digest, $0.kind.rawValue) < ($1.repository, $1.digest, $1.kind.rawValue) }) {
            PullHistory.appendLine(time: now, kind: key.kind, repository: key.repository, digest: key.digest, to: &text)
        }
        let sequence = written.withLock { count in
            defer { count += 1 }
            return count
        }
        do {
            try FileSystem.makeDirectories(layout.pullRecordsDirectory)
            try FileSystem.makeDirectories(layout.temporaryDirectory)
            try FileSystem.writeAtomically(Array(text.utf8), to: layout.pullRecordSegment(process, sequence: sequence),
                                           temporaryDirectory: layout.temporaryDirectory)
        } catch {
            pending.withLock { $0.formUnion(taken) }
            throw error
        }
    }
}
