/// When each manifest was last pulled and pushed, and each mirrored blob last pulled, as
/// every process of every node recorded it (`PullRecorder`): the merge of the compacted
/// file and every segment under `_berth/pulls/`, keeping the latest time of each.
///
/// The files are lines `<time> <kind> <repository> <digest>` (time: the store's clock,
/// seconds; kind: `pull`, `push` or `blob`) after a header line; a line that does not
/// parse is skipped. Times are as coarse as the recorders' flush interval.
public struct PullHistory: Sendable {
    static let header = "# berth pull records 1\n"

    private var times: [PullRecorder.Key: Int] = [:]

    public init() {}

    /// The last time `digest` was read from `repository` (a manifest pull).
    public func lastPulled(_ digest: Digest, in repository: RepositoryName) -> Int? {
        times[PullRecorder.Key(kind: .pull, repository: repository, digest: digest)]
    }

    /// The last time `digest` was pushed to `repository`, if a recorder saw it.
    public func lastPushed(_ digest: Digest, in repository: RepositoryName) -> Int? {
        times[PullRecorder.Key(kind: .push, repository: repository, digest: digest)]
    }

    /// The last time blob `digest` was read from the mirrored `repository`.
    public func lastPulledBlob(_ digest: Digest, in repository: RepositoryName) -> Int? {
        times[PullRecorder.Key(kind: .blob, repository: repository, digest: digest)]
    }

    /// Number of distinct things recorded.
    public var count: Int { times.count }

    /// Takes in one record (the later time wins).
    public mutating func note(_ kind: PullRecorder.Kind, _ digest: Digest, in repository: RepositoryName, at time: Int) {
        let key = PullRecorder.Key(kind: kind, repository: repository, digest: digest)
        if let known = times[key], known >= time { return }
        times[key] = time
    }

    /// Every record of the store, merged. Segments first, the compacted file last: a
    /// segment that vanishes meanwhile (folded by a compaction) is in the compacted file
    /// read after it.
    public static func load(_ layout: StoreLayout) throws(StorageError) -> PullHistory {
        var history = PullHistory()
        for name in try segmentNames(layout) {
            if let bytes = try FileSystem.readFile(layout.pullRecordsFile(named: name)) { history.parse(bytes) }
        }
        if let bytes = try FileSystem.readFile(layout.compactedPullRecordsFile) { history.parse(bytes) }
        return history
    }

    /// Folds every segment into the compacted file and removes them, dropping records of
    /// content that is no longer stored (its repository no longer links the digest).
    /// Under the store-wide `_pulls` lock (two compactions never race); the compacted
    /// file is replaced whole before any segment goes, so a crash at any instant loses
    /// nothing (a segment folded twice changes nothing).
    public static func compact(_ store: Store) throws(StorageError) -> PullHistory {
        let layout = store.layout
        return try store.options.locks.withExclusiveLock(path: layout.pullRecordsLockFile) { () throws(StorageError) -> PullHistory in
            var history = PullHistory()
            if let bytes = try FileSystem.readFile(layout.compactedPullRecordsFile) { history.parse(bytes) }
            let names = try segmentNames(layout)
            // Nothing new to fold in: the compacted file stays as it is.
            if names.isEmpty { return history }
            for name in names {
                if let bytes = try FileSystem.readFile(layout.pullRecordsFile(named: name)) { history.parse(bytes) }
            }
            history.times = history.times.filter { key, _ in
                FileSystem.exists(layout.blobFile(key.repository, key.digest))
            }
            var text = header
            for (key, time) in history.times.sorted(by: { ($0.key.repository, $0.key.digest, $0.key.kind.rawValue) < ($1.key.repository, $1.key.digest, $1.key.kind.rawValue) }) {
                appendLine(time: time, kind: key.kind, repository: key.repository, digest: key.digest, to: &text)
            }
            try FileSystem.makeDirectories(layout.pullRecordsDirectory)
            try FileSystem.makeDirectories(layout.temporaryDirectory)
            try FileSystem.writeAtomically(Array(text.utf8), to: layout.compactedPullRecordsFile,
                                           temporaryDirectory: layout.temporaryDirectory)
            for name in names { try FileSystem.remove(layout.pullRecordsFile(named: name)) }
            return history
        }
    }

    private static func segmentNames(_ layout: StoreLayout) throws(StorageError) -> [String] {
        try FileSystem.listDirectory(layout.pullRecordsDirectory).filter { !$0.isDirectory && StoreLayout.isPullRecordSegment($0.name) }
            .map(\.name)
    }

    static func appendLine(time: Int, kind: PullRecorder.Kind, repository: RepositoryName, digest: Digest, to text: inout String) {
        text += "\(time) \(kind.rawValue) \(repository.value) \(digest)\n"
    }

    private mutating func parse(_ bytes: [UInt8]) {
        for line in bytes.split(separator: 10) {
            let fields = line.split(separator: 32)
            guard fields.count == 4, let time = Int(String(decoding: fields[0], as: UTF8.self)),
                  let kind = PullRecorder.Kind(rawValue: String(decoding: fields[1], as: UTF8.self)),
                  let repository = RepositoryName(String(decoding: fields[2], as: UTF8.self)),
                  let digest = Digest(String(decoding: fields[3], as: UTF8.self)) else { continue }
            note(kind, digest, in: repository, at: time)
        }
    }
}
