#if canImport(Glibc)
import Glibc
#endif
import Locks

/// The sorted list of repositories, kept per process, so that a catalog request costs a
/// read of the small `_berth/catalog-stamp` instead of a walk of the whole store.
///
/// Repository creation rewrites the stamp (under the creation lock, after the new layout
/// is complete) as a `CatalogStamp`: an epoch and the last creations with their sequence
/// numbers. A cached list that is behind by creations still in the stamp takes them in
/// by binary insertion; only a list too far behind (or a new epoch) walks the store. A
/// list is walked again after `maximumAge` seconds anyway, so that a repository an
/// operator adds or removes by hand still shows within seconds.
final class CatalogCache: Sendable {
    static let maximumAge = 10

    private struct Entry: Sendable {
        let epoch: String
        let sequence: UInt64
        let taken: Int
        let names: [RepositoryName]
    }

    private let entry = Locked<Entry?>(nil)

    /// The cached list brought up to date with `stamp`, else `walk()`'s.
    func names(
        stamp: CatalogStamp?, walk: () throws(StorageError) -> [RepositoryName]
    ) throws(StorageError) -> [RepositoryName] {
        let now = Int(time(nil))
        let cached = entry.withLock { $0 }
        if let cached, now - cached.taken < Self.maximumAge {
            guard let stamp else { return cached.names }
            if stamp.epoch == cached.epoch, stamp.sequence == cached.sequence { return cached.names }
            if stamp.epoch == cached.epoch, let created = stamp.creations(after: cached.sequence) {
                var names = cached.names
                for name in created {
                    let position = Self.insertionPoint(of: name, in: names)
                    if position == names.count || names[position] != name { names.insert(name, at: position) }
                }
                entry.withLock { current in
                    if current.map({ $0.epoch != stamp.epoch || $0.sequence < stamp.sequence }) ?? true {
                        current = Entry(epoch: stamp.epoch, sequence: stamp.sequence, taken: cached.taken, names: names)
                    }
                }
                return names
            }
        }
        let names = try walk()
        entry.withLock { $0 = Entry(epoch: stamp?.epoch ?? "", sequence: stamp?.sequence ?? 0, taken: now, names: names) }
        return names
    }

    static func insertionPoint(of name: RepositoryName, in sorted: [RepositoryName]) -> Int {
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = low + (high - low) / 2
            if sorted[middle] < name { low = middle + 1 } else { high = middle }
        }
        return low
    }
}

/// The content of `_berth/catalog-stamp`: a line with a random epoch, then one line
/// `<sequence> <repository>` per recent creation, oldest first, at most `kept` of them.
struct CatalogStamp: Sendable {
    static let kept = 64

    let epoch: String
    let entries: [(sequence: UInt64, name: RepositoryName)]

    var sequence: UInt64 { entries.last?.sequence ?? 0 }

    /// The names created after `sequence`, or nil when the stamp no longer holds them all.
    func creations(after known: UInt64) -> [RepositoryName]? {
        guard known <= sequence else { return nil }
        guard let first = entries.first else { return [] }
        guard first.sequence - 1 <= known else { return nil }
        return entries.filter { $0.sequence > known }.map(\.name)
    }

    /// The stamp after creating `name`: this one's history plus `name`, or a new epoch.
    static func after(_ previous: CatalogStamp?, creating name: RepositoryName) -> CatalogStamp {
        guard let previous, !previous.epoch.isEmpty else {
            let random = String(UInt64.random(in: .min ... .max), radix: 16)
            return CatalogStamp(epoch: random, entries: [(1, name)])
        }
        let (next, overflow) = previous.sequence.addingReportingOverflow(1)
        if overflow { return after(nil, creating: name) }
        return CatalogStamp(epoch: previous.epoch, entries: Array((previous.entries + [(next, name)]).suffix(kept)))
    }

    var encoded: [UInt8] {
        var text = "\(epoch)\n"
        for entry in entries { text += "\(entry.sequence) \(entry.name.value)\n" }
        return Array(text.utf8)
    }

    /// nil for a missing or unreadable stamp (an older store's stamp holds a bare name).
    static func read(_ path: String) -> CatalogStamp? {
        guard let bytes = try? FileSystem.readFile(path, limit: 1 << 20) else { return nil }
        let lines = bytes.split(separator: UInt8(ascii: "\n")).map { String(decoding: $0, as: UTF8.self) }
        guard let epoch = lines.first, !epoch.isEmpty, epoch.allSatisfy(\.isHexDigit) else { return nil }
        var entries: [(sequence: UInt64, name: RepositoryName)] = []
        for line in lines.dropFirst() {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let sequence = UInt64(parts[0]), let name = RepositoryName(String(parts[1])),
                  sequence > (entries.last?.sequence ?? 0) else { return nil }
            entries.append((sequence, name))
        }
        return CatalogStamp(epoch: epoch, entries: entries)
    }
}
