/// Makes a blob one repository holds available in another without copying it
/// (cross-repository mount), and takes a blob out of a repository.
public protocol BlobLinker: Sendable {
    /// Links the blob from `source` into `repository`; false (changing nothing) when
    /// `source` does not hold it.
    func mount(_ digest: Digest, from source: RepositoryName, into repository: RepositoryName) throws(StorageError) -> Bool
    /// Links a blob held anywhere in the store into `repository` (automatic mount);
    /// false when the store does not have it.
    func mountFromAnywhere(_ digest: Digest, into repository: RepositoryName) throws(StorageError) -> Bool
    /// Removes the blob from `repository` only (`blobUnknown` when it does not hold it).
    func delete(_ digest: Digest, from repository: RepositoryName) throws(StorageError)
}
