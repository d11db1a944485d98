/// Manifests of a repository: validated on push and stored byte-exact, resolved by tag
/// or digest on pull, deleted by tag (the manifest stays) or by digest (with its tags).
public protocol ManifestService: Sendable {
    /// The manifest a tag or digest names (`manifestUnknown` otherwise).
    func resolve(_ reference: Reference, in repository: RepositoryName) throws(StorageError) -> ResolvedManifest
    /// Validates `body` and stores it under `reference`; every blob and child it names
    /// must already be in `repository`.
    func put(_ body: [UInt8], contentType: String?, reference: Reference,
             repository: RepositoryName) throws(StorageError) -> PushedManifest
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

    public init(digest: Digest, document: ManifestDocument) {
        self.digest = digest
        self.document = document
    }
}
