#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The referrers index, kept on write: one small descriptor file per manifest that has
/// a `subject`, in a folder per subject. Answering the referrers API lists one folder;
/// it never scans the repository's manifests.
public struct ReferrersStore: ReferrerIndex {
    public let layout: StoreLayout

    /// Built by `Store`.
    init(layout: StoreLayout) { self.layout = layout }

    /// Records `referrer` (a descriptor carrying artifactType and annotations) under `subject`.
    func record(_ referrer: Descriptor, subject: Digest, repository: RepositoryName) throws(StorageError) {
        guard let referrerDigest = Digest(referrer.digest) else { return }
        try FileSystem.makeDirectories(layout.referrersDirectory(repository, subject: subject))
        try FileSystem.writeAtomically(
            JSONText.encode(referrer), to: layout.referrerFile(repository, subject: subject, referrer: referrerDigest),
            temporaryDirectory: layout.temporaryDirectory)
    }

    /// Forgets `referrer` under `subject`; absent entries are not an error.
    func remove(_ referrer: Digest, subject: Digest, repository: RepositoryName) throws(StorageError) {
        try FileSystem.remove(layout.referrerFile(repository, subject: subject, referrer: referrer))
    }

    /// The descriptors of the manifests whose subject is `subject`, ordered by digest.
    public func referrers(of subject: Digest, in repository: RepositoryName) throws(StorageError) -> [Descriptor] {
        let directory = layout.referrersDirectory(repository, subject: subject)
        var found: [Descriptor] = []
        for entry in try FileSystem.listDirectory(directory) where !entry.isDirectory {
            guard let referrer = StoreLayout.referrer(fromFileName: entry.name) else { continue }
            let path = layout.referrerFile(repository, subject: subject, referrer: referrer)
            guard let bytes = try FileSystem.readFile(path, limit: 1 << 20),
                  let descriptor = try? JSONDecoder().decode(Descriptor.self, from: Data(bytes)) else { continue }
            found.append(descriptor)
        }
        return found.sorted { $0.digest < $1.digest }
    }
}
