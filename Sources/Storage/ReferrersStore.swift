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
public struct ReferrersStore: ReferrerIndex {
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
        try replaceStamp(subject: subject, repository: repository)
    }

    /// Forgets `referrer` under `subject`; absent entries are not an error. Called under
    /// the repository lock.
    func remove(_ referrer: Digest, subject: Digest, repository: RepositoryName) throws(StorageError) {
        try FileSystem.remove(layout.referrerFile(repository, subject: subject, referrer: referrer))
        if FileSystem.isDirectory(layout.referrersDirectory(repository, subject: subject)) {
            try replaceStamp(subject: subject, repository: repository)
        }
    }

    /// The descriptors of the manifests whose subject is `subject`, ordered by digest.
    public func referrers(of subject: Digest, in repository: RepositoryName) throws(StorageError) -> [Descriptor] {
        let directory = layout.referrersDirectory(repository, subject: subject)
        let stampPath = layout.referrersStampFile(repository, subject: subject)
        let stamp = try FileSystem.readFile(stampPath, limit: 4096)
        if let stamp, let cached = cache.list(directory, stamp: stamp) { return cached }
        var found: [Descriptor] = []
        for entry in try FileSystem.listDirectory(directory) where !entry.isDirectory {
            guard let referrer = StoreLayout.referrer(fromFileName: entry.name) else { continue }
            let path = layout.referrerFile(repository, subject: subject, referrer: referrer)
            guard let bytes = try FileSystem.readFile(path, limit: 1 << 20),
                  let descriptor = try? JSONDecoder().decode(Descriptor.self, from: Data(bytes)) else { continue }
            found.append(descriptor)
        }
        found.sort { $0.digest < $1.digest }
        // The list is at least as new as the stamp read before it: a change made while
        // listing replaces the stamp after its file, so the next request lists again.
        if let stamp { cache.store(found, directory, stamp: stamp) }
        return found
    }

    private func replaceStamp(subject: Digest, repository: RepositoryName) throws(StorageError) {
        try FileSystem.writeAtomically(Array(UploadID.random().value.utf8),
                                       to: layout.referrersStampFile(repository, subject: subject),
                                       temporaryDirectory: layout.temporaryDirectory)
    }
}

/// Sorted referrer lists per subject folder, valid while the folder's stamp is the one
/// they were listed under (compared by content, so safe across processes and nodes).
final class ReferrersCache: Sendable {
    private let entries = ReadWriteLock<[String: (stamp: [UInt8], list: [Descriptor])]>([:])
    private let capacity: Int

    init(capacity: Int = 1024) { self.capacity = capacity }

    func list(_ directory: String, stamp: [UInt8]) -> [Descriptor]? {
        entries.read { entries in
            guard let entry = entries[directory], entry.stamp == stamp else { return nil }
            return entry.list
        }
    }

    func store(_ list: [Descriptor], _ directory: String, stamp: [UInt8]) {
        entries.write { entries in
            if entries.count >= capacity, entries[directory] == nil { entries.removeAll(keepingCapacity: true) }
            entries[directory] = (stamp, list)
        }
    }
}
