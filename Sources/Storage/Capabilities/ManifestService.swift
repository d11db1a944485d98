/// Manifests of a repository: validated on push and stored byte-exact, resolved by tag
/// or digest on pull, deleted by tag (the manifest stays) or by digest (with its tags).
public protocol ManifestService: Sendable {
    /// The manifest a tag or digest names (`manifestUnknown` otherwise).
    func resolve(_ reference: Reference, in repository: RepositoryName) throws(StorageError) -> ResolvedManifest
    /// Validates `body` and stores it under `reference`, and points each of `tags` at it,
    /// all in one commit; every blob and child it names must already be in `repository`.
    func put(_ body: [UInt8], contentType: String?, reference: Reference,
             repository: RepositoryName, tags: [Tag]) throws(StorageError) -> PushedManifest
    func delete(_ reference: Reference, in repository: RepositoryName) throws(StorageError)
}

/// A stored manifest as the pull path needs it.
public struct ResolvedManifest: Sendable, Equatable {
    public let digest: Digest
    public let mediaType: String
    public let size: Int64

    public init(digest: Digest, mediaType: String, size: Int64) {
        self.digest = digest
        self.mediaType = mediaType
        self.size = size
    }
}

/// What a successful push stored.
public struct PushedManifest: Sendable {
    public let digest: Digest
    public let document: ManifestDocument
    /// Every tag now naming the manifest through this push (the reference's, then the others).
    public let tags: [Tag]

    public init(digest: Digest, document: ManifestDocument, tags: [Tag]) {
        self.digest = digest
        self.document = document
        self.tags = tags
    }
}

extension ManifestService {
    /// Stores `body` under `reference` alone.
    public func put(_ body: [UInt8], contentType: String?, reference: Reference,
                    repository: RepositoryName) throws(StorageError) -> PushedManifest {
        try put(body, contentType: contentType, reference: reference, repository: repository, tags: [])
    }
}
