#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The sorted list of repositories, kept per process, so that a catalog request costs
/// one `stat` of `_berth/catalog-stamp` instead of a walk of the whole store.
///
/// Repository creation replaces the stamp after the new layout is complete, so a changed
/// stamp means a changed list. A cached list is used while the stamp is the same
/// (settled) file and for at most `maximumAge` seconds, so that a repository an operator
/// adds or removes by hand still shows within seconds.
final class CatalogCache: Sendable {
    static let maximumAge = 10

    private struct Entry: Sendable {
        let stamp: FileIdentity?
        let taken: Int
        let names: [RepositoryName]
    }

    private let entry = Mutex<Entry?>(nil)

    /// The cached list when still valid, else `walk()`'s (cached when the stamp is settled).
    func names(
        stampPath: String, walk: () throws(StorageError) -> [RepositoryName]
    ) throws(StorageError) -> [RepositoryName] {
        let stamp = FileIdentity(of: stampPath)
        let now = Int(time(nil))
        if let cached = entry.withLock({ $0 }), cached.stamp == stamp, now - cached.taken < Self.maximumAge {
            return cached.names
        }
        let names = try walk()
        if stamp?.isSettled(now: now) ?? true {
            entry.withLock { $0 = Entry(stamp: stamp, taken: now, names: names) }
        }
        return names
    }
}
