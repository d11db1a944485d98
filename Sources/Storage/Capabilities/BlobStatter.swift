/// Answers whether a repository holds a blob, and its size. The pull path's only
/// question about blobs; one `stat` on disk.
public protocol BlobStatter: Sendable {
    /// The blob's size when `repository` holds it.
    func size(of digest: Digest, in repository: RepositoryName) -> UInt64?
}
