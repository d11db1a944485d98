#if canImport(Glibc)
import Glibc
#endif

/// Blobs: one shared copy per digest under `_berth/blobs`, hard-linked into each
/// repository that holds it, so a blob in many repositories costs its bytes once.
/// A blob becomes visible in a repository only complete and verified.
public struct BlobStore: BlobStatter, BlobLinker {
    public let layout: StoreLayout
    private let repositories: RepositoryStore
    private let trash: Trash

    /// Built by `Store`.
    init(layout: StoreLayout, repositories: RepositoryStore, trash: Trash) {
        self.layout = layout
        self.repositories = repositories
        self.trash = trash
    }

    /// The blob's size if `repository` holds it.
    public func size(of digest: Digest, in repository: RepositoryName) -> UInt64? {
        FileSystem.regularFileSize(layout.blobFile(repository, digest))
    }

    /// Makes the verified file at `path` the blob `digest` of `repository`. An existing
    /// shared copy is linked and the file dropped; otherwise the file becomes the shared
    /// copy (linked, never renamed over one that appeared meanwhile). Linking first means
    /// a garbage collection that removes the shared copy concurrently loses nothing.
    /// The caller guarantees the file is fsynced and hashes to `digest`. A file whose
    /// content the store already has goes to the trash, to be freed off the request path.
    func commit(verifiedFile path: String, as digest: Digest, into repository: RepositoryName) throws(StorageError) {
        try repositories.create(repository)
        if try linkSharedIfPresent(digest, into: repository) {
            try trash.discard(path)
            return
        }
        try FileSystem.makeDirectories(layout.sharedBlobsDirectory(digest.algorithm))
        try FileSystem.link(path, layout.sharedBlobFile(digest))
        try FileSystem.fsyncDirectory(layout.sharedBlobsDirectory(digest.algorithm))
        try FileSystem.remove(path)
        try linkShared(digest, into: repository)
    }

    /// Stores small bytes (a manifest) as the blob `digest` of `repository`.
    func put(_ bytes: [UInt8], as digest: Digest, into repository: RepositoryName) throws(StorageError) {
        try repositories.create(repository)
        if try linkSharedIfPresent(digest, into: repository) { return }
        try FileSystem.makeDirectories(layout.sharedBlobsDirectory(digest.algorithm))
        try FileSystem.writeAtomically(bytes, to: layout.sharedBlobFile(digest), temporaryDirectory: layout.temporaryDirectory)
        try linkShared(digest, into: repository)
    }

    /// Links the blob from `source` into `repository` without copying. Returns false
    /// (changing nothing) when `source` does not hold it.
    public func mount(_ digest: Digest, from source: RepositoryName, into repository: RepositoryName) throws(StorageError) -> Bool {
        guard size(of: digest, in: source) != nil else { return false }
        if size(of: digest, in: repository) != nil { return true }
        try repositories.create(repository)
        guard try FileSystem.linkIfSourceExists(layout.blobFile(source, digest), layout.blobFile(repository, digest)) else {
            return false
        }
        try FileSystem.fsyncDirectory(layout.blobsDirectory(repository, digest.algorithm))
        return true
    }

    /// Links a blob that exists anywhere in the store into `repository` (automatic
    /// cross-repository mount). False when the store does not have it.
    public func mountFromAnywhere(_ digest: Digest, into repository: RepositoryName) throws(StorageError) -> Bool {
        guard FileSystem.regularFileSize(layout.sharedBlobFile(digest)) != nil else { return false }
        try repositories.create(repository)
        guard try FileSystem.linkIfSourceExists(layout.sharedBlobFile(digest), layout.blobFile(repository, digest)) else {
            return false
        }
        try FileSystem.fsyncDirectory(layout.blobsDirectory(repository, digest.algorithm))
        return true
    }

    /// Removes the blob from `repository` (other repositories keep their links; the
    /// shared copy goes with garbage collection).
    public func delete(_ digest: Digest, from repository: RepositoryName) throws(StorageError) {
        let path = layout.blobFile(repository, digest)
        guard FileSystem.regularFileSize(path) != nil else { throw .blobUnknown(digest) }
        try FileSystem.remove(path)
        try FileSystem.fsyncDirectory(layout.blobsDirectory(repository, digest.algorithm))
    }

    /// Links the shared copy into `repository`; false when there is no shared copy.
    private func linkSharedIfPresent(_ digest: Digest, into repository: RepositoryName) throws(StorageError) -> Bool {
        guard try FileSystem.linkIfSourceExists(layout.sharedBlobFile(digest), layout.blobFile(repository, digest)) else {
            return false
        }
        try FileSystem.fsyncDirectory(layout.blobsDirectory(repository, digest.algorithm))
        return true
    }

    private func linkShared(_ digest: Digest, into repository: RepositoryName) throws(StorageError) {
        try FileSystem.link(layout.sharedBlobFile(digest), layout.blobFile(repository, digest))
        try FileSystem.fsyncDirectory(layout.blobsDirectory(repository, digest.algorithm))
    }
}
