/// The files behind `/metrics`: each worker's saved counters, the last gc and scrub
/// results, and store totals counted from the directories (no hashing, no parsing).
public struct MetricsFiles: Sendable {
    public let layout: StoreLayout

    public init(layout: StoreLayout) { self.layout = layout }

    /// Replaces one file under `_berth/metrics/` whole.
    public func save(_ bytes: [UInt8], to path: String) throws(StorageError) {
        try FileSystem.makeDirectories(layout.metricsDirectory)
        try FileSystem.makeDirectories(layout.temporaryDirectory)
        try FileSystem.writeAtomically(bytes, to: path, temporaryDirectory: layout.temporaryDirectory)
    }

    public func read(_ path: String) -> [UInt8]? {
        (try? FileSystem.readFile(path, limit: 16 << 20)) ?? nil
    }

    /// The saved counters of every worker process (and supervisor) that ever served this store.
    public func processCounters() -> [[UInt8]] {
        let entries = (try? FileSystem.listDirectory(layout.metricsDirectory)) ?? []
        return entries.filter { ($0.name.hasPrefix("worker-") || $0.name.hasPrefix("supervisor-")) && $0.name.hasSuffix(".json") }
            .compactMap { read("\(layout.metricsDirectory)/\($0.name)") }
    }

    /// Store totals: repositories, distinct blobs and their bytes, open upload sessions.
    public struct Totals: Sendable {
        public var repositories = 0
        public var blobs = 0
        public var blobBytes: UInt64 = 0
        public var uploadsInProgress = 0
    }

    public func totals() -> Totals {
        var totals = Totals()
        totals.repositories = ((try? RepositoryStore(layout: layout).catalog()) ?? []).count
        for algorithm in Digest.Algorithm.allCases {
            let directory = layout.sharedBlobsDirectory(algorithm)
            for entry in (try? FileSystem.listDirectory(directory)) ?? [] where !entry.isDirectory {
                totals.blobs += 1
                totals.blobBytes += FileSystem.regularFileSize("\(directory)/\(entry.name)") ?? 0
            }
        }
        totals.uploadsInProgress = ((try? FileSystem.listDirectory(layout.uploadsDirectory)) ?? []).filter(\.isDirectory).count
        return totals
    }
}
