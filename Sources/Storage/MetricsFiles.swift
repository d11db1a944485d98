#if canImport(Glibc)
import Glibc
#endif
import Locks

/// The files behind `/metrics`: each worker's saved counters, the last gc and scrub
/// results, and store totals counted from the directories (no hashing, no parsing).
/// Repositories come from the store's cached catalog; blob and upload totals are counted
/// at most once per `totalsMaximumAge` seconds per process, however often it is scraped.
public struct MetricsFiles: Sendable {
    public static let totalsMaximumAge = 10
    public let layout: StoreLayout
    private let repositories: RepositoryStore
    private let cachedTotals = TotalsCache()

    private final class TotalsCache: Sendable {
        let entry = Locked<(taken: Int, totals: Totals)?>(nil)
    }

    /// Built by `Store`: totals count repositories from the store's cached catalog.
    init(layout: StoreLayout, repositories: RepositoryStore) {
        self.layout = layout
        self.repositories = repositories
    }

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
        return entries.filter { StoreLayout.isWorkerMetricsFile($0.name) || StoreLayout.isSupervisorMetricsFile($0.name) }
            .compactMap { read(layout.metricsFile(named: $0.name)) }
    }

    /// Store totals: repositories, distinct blobs and their bytes, open upload sessions.
    public struct Totals: Sendable {
        public var repositories = 0
        public var blobs = 0
        public var blobBytes: UInt64 = 0
        public var uploadsInProgress = 0
    }

    /// The store's totals, counted at most `totalsMaximumAge` seconds ago.
    public func totals() -> Totals {
        let now = Int(time(nil))
        if let cached = cachedTotals.entry.withLock({ $0 }), now - cached.taken < Self.totalsMaximumAge {
            return cached.totals
        }
        let totals = countTotals()
        cachedTotals.entry.withLock { $0 = (now, totals) }
        return totals
    }

    private func countTotals() -> Totals {
        var totals = Totals()
        totals.repositories = ((try? repositories.catalog()) ?? []).count
        for algorithm in Digest.Algorithm.allCases {
            let directory = layout.sharedBlobsDirectory(algorithm)
            for entry in (try? FileSystem.listDirectory(directory)) ?? [] where !entry.isDirectory {
                guard let digest = StoreLayout.blob(algorithm, fromFileName: entry.name) else { continue }
                totals.blobs += 1
                totals.blobBytes += FileSystem.regularFileSize(layout.sharedBlobFile(digest)) ?? 0
            }
        }
        totals.uploadsInProgress = ((try? FileSystem.listDirectory(layout.uploadsDirectory)) ?? []).filter(\.isDirectory).count
        return totals
    }
}
