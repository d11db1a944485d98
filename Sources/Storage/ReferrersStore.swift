#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Locks

/// The referrers index, kept on write: one small descriptor file per manifest that has
/// a `subject`, in a folder per subject, and a stamp in that folder replaced after every
/// change. Answering the referrers API reads the stamp and, while it is unchanged,
/// answers from this process's cached list; it never scans the repository's manifests.
/// The stamp also names the last changes (`ReferrersStamp`), so a process whose list is
/// a few changes behind reads those referrers' files only, not the whole folder: a
/// subject with 10,000 signatures costs one file read after a new one, not 10,000.
public struct ReferrersStore: ReferrerIndex {
    /// The largest stamp read; `ReferrersStamp.kept` changes of sha512 digests fit.
    static let stampLimit = 16 << 10

    public let layout: StoreLayout
    private let cache: ReferrersCache

    /// Built by `Store`, which owns the cache.
    init(layout: StoreLayout, cache: ReferrersCache) {
        self.layout = layout
        self.cache = cache
    }

    /// Records `referrer` (a descriptor carrying artifactType and annotations) under `subject`.
    /// Called under the repository lock.
    func record(_ referrer: Descriptor, subject: Digest, repository: RepositoryName) throws(StorageError) {
        guard let referrerDigest = Digest(referrer.digest) else { return }
        try FileSystem.makeDirectories(layout.referrersDirectory(repository, subject: subject))
        try FileSystem.writeAtomically(
            JSONText.encode(referrer), to: layout.referrerFile(repository, subject: subject, referrer: referrerDigest),
            temporaryDirectory: layout.temporaryDirectory)
        try replaceStamp(subject: subject, repository: repository, after: .added(referrerDigest))
    }

    /// Forgets `referrer` under `subject`; absent entries are not an error. Called under
    /// the repository lock.
    func remove(_ referrer: Digest, subject: Digest, repository: RepositoryName) throws(StorageError) {
        try FileSystem.remove(layout.referrerFile(repository, subject: subject, referrer: referrer))
        if FileSystem.isDirectory(layout.referrersDirectory(repository, subject: subject)) {
            try replaceStamp(subject: subject, repository: repository, after: .removed(referrer))
        }
    }

    /// The descriptors of the manifests whose subject is `subject`, ordered by digest.
    public func referrers(of subject: Digest, in repository: RepositoryName) throws(StorageError) -> [Descriptor] {
        let directory = layout.referrersDirectory(repository, subject: subject)
        let stampPath = layout.referrersStampFile(repository, subject: subject)
        let stamp = try FileSystem.readFile(stampPath, limit: Self.stampLimit)
        let parsed = stamp.flatMap(ReferrersStamp.parse)
        if let stamp, let cached = cache.entry(directory) {
            if cached.stamp == stamp { return cached.list }
            if let parsed, let known = cached.parsed, parsed.epoch == known.epoch,
               let changes = parsed.changes(after: known.sequence) {
                var list = cached.list
                for change in changes { try apply(change, to: &list, subject: subject, repository: repository) }
                cache.store(list, directory, stamp: stamp, parsed: parsed)
                return list
            }
        }
        var found: [Descriptor] = []
        for entry in try FileSystem.listDirectory(directory) where !entry.isDirectory {
            guard let referrer = StoreLayout.referrer(fromFileName: entry.name),
                  let descriptor = try descriptor(of: referrer, subject: subject, repository: repository) else { continue }
            found.append(descriptor)
        }
        found.sort { $0.digest < $1.digest }
        // The list is at least as new as the stamp read before it: a change made while
        // listing replaces the stamp after its file, so the next request lists again (or
        // applies that change, which is idempotent).
        if let stamp { cache.store(found, directory, stamp: stamp, parsed: parsed) }
        return found
    }

    /// One change of the stamp applied to a sorted list: an added referrer is read from its
    /// file (gone again: a later change removes it; skipped), a removed one leaves it.
    private func apply(_ change: ReferrersStamp.Change, to list: inout [Descriptor], subject: Digest,
                       repository: RepositoryName) throws(StorageError) {
        let digest: Digest
        switch change {
        case .added(let added): digest = added
        case .removed(let removed): digest = removed
        }
        let key = digest.description
        let position = Self.insertionPoint(of: key, in: list)
        let present = position < list.count && list[position].digest == key
        if case .removed = change {
            if present { list.remove(at: position) }
            return
        }
        guard let descriptor = try descriptor(of: digest, subject: subject, repository: repository) else {
            if present { list.remove(at: position) }
            return
        }
        if present { list[position] = descriptor } else { list.insert(descriptor, at: position) }
    }

    private func descriptor(of referrer: Digest, subject: Digest, repository: RepositoryName) throws(StorageError) -> Descriptor? {
        let path = layout.referrerFile(repository, subject: subject, referrer: referrer)
        guard let bytes = try FileSystem.readFile(path, limit: 1 << 20) else { return nil }
        return try? JSONDecoder().decode(Descriptor.self, from: Data(bytes))
    }

    /// The first position whose digest is not below `key`.
    private static func insertionPoint(of key: String, in list: [Descriptor]) -> Int {
        var low = 0
        var high = list.count
        while low < high {
            let middle = low + (high - low) / 2
            if list[middle].digest < key { low = middle + 1 } else { high = middle }
        }
        return low
    }

    private func replaceStamp(subject: Digest, repository: RepositoryName, after change: ReferrersStamp.Change) throws(StorageError) {
        let path = layout.referrersStampFile(repository, subject: subject)
        let previous = try FileSystem.readFile(path, limit: Self.stampLimit).flatMap(ReferrersStamp.parse)
        try FileSystem.writeAtomically(ReferrersStamp.after(previous, change).encoded, to: path,
                                       temporaryDirectory: layout.temporaryDirectory)
    }
}

/// A subject folder's stamp: an epoch (new when the history cannot go on) and the last
/// `kept` changes, numbered. Text: the epoch on the first line, then `<sequence> +<digest>`
/// or `<sequence> -<digest>` per change. A stamp of another form (an older store's random
/// id) is opaque: it matches only itself.
struct ReferrersStamp: Sendable, Equatable {
    static let kept = 32

    enum Change: Sendable, Equatable {
        case added(Digest)
        case removed(Digest)
    }

    struct Numbered: Sendable, Equatable {
        let sequence: UInt64
        let change: Change
    }

    let epoch: String
    let changes: [Numbered]

    var sequence: UInt64 { changes.last?.sequence ?? 0 }

    /// The changes after `known`, or nil when the stamp no longer holds them all.
    func changes(after known: UInt64) -> [Change]? {
        guard known <= sequence else { return nil }
        guard let first = changes.first else { return [] }
        guard first.sequence - 1 <= known else { return nil }
        return changes.filter { $0.sequence > known }.map(\.change)
    }

    /// The stamp after `change`: this one's history plus it, or a new epoch.
    static func after(_ previous: ReferrersStamp?, _ change: Change) -> ReferrersStamp {
        guard let previous else {
            return ReferrersStamp(epoch: String(UInt64.random(in: .min ... .max), radix: 16), changes: [Numbered(sequence: 1, change: change)])
        }
        let (next, overflow) = previous.sequence.addingReportingOverflow(1)
        if overflow { return after(nil, change) }
        return ReferrersStamp(epoch: previous.epoch,
                              changes: Array((previous.changes + [Numbered(sequence: next, change: change)]).suffix(kept)))
    }

    var encoded: [UInt8] {
        var text = "\(epoch)\n"
        for numbered in changes {
            switch numbered.change {
            case .added(let digest): text += "\(numbered.sequence) +\(digest)\n"
            case .removed(let digest): text += "\(numbered.sequence) -\(digest)\n"
            }
        }
        return Array(text.utf8)
    }

    /// nil for any other form.
    static func parse(_ bytes: [UInt8]) -> ReferrersStamp? {
        let lines = bytes.split(separator: UInt8(ascii: "\n")).map { String(decoding: $0, as: UTF8.self) }
        guard let epoch = lines.first, !epoch.isEmpty, epoch.utf8.count <= 32, epoch.allSatisfy(\.isHexDigit) else { return nil }
        var changes: [Numbered] = []
        for line in lines.dropFirst() {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let sequence = UInt64(parts[0]), sequence > (changes.last?.sequence ?? 0),
                  let sign = parts[1].first, let digest = Digest(String(parts[1].dropFirst())) else { return nil }
            switch sign {
            case "+": changes.append(Numbered(sequence: sequence, change: .added(digest)))
            case "-": changes.append(Numbered(sequence: sequence, change: .removed(digest)))
            default: return nil
            }
        }
        guard changes.count <= kept else { return nil }
        return ReferrersStamp(epoch: epoch, changes: changes)
    }
}

/// Sorted referrer lists per subject folder, valid while the folder's stamp is the one
/// they were listed under (compared by content, so safe across processes and nodes).
final class ReferrersCache: Sendable {
    struct Entry: Sendable {
        let stamp: [UInt8]
        let parsed: ReferrersStamp?
        let list: [Descriptor]
    }

    private let entries = ReadWriteLock<[String: Entry]>([:])
    private let capacity: Int

    init(capacity: Int = 1024) { self.capacity = capacity }

    func entry(_ directory: String) -> Entry? {
        entries.read { $0[directory] }
    }

    func store(_ list: [Descriptor], _ directory: String, stamp: [UInt8], parsed: ReferrersStamp?) {
        entries.write { entries in
            if entries.count >= capacity, entries[directory] == nil { entries.removeAll(keepingCapacity: true) }
            entries[directory] = Entry(stamp: stamp, parsed: parsed, list: list)
        }
    }
}
