/// Manifests of a repository: validated on push and stored byte-exact, resolved by tag
/// or digest on pull, deleted by tag (the manifest stays) or by digest (with its tags).
public protocol ManifestService: Sendable {
    /// The manifest a tag or digest names (`manifestUnknown` otherwise).
    func resolve(_ reference: Reference, in repository: RepositoryName) throws(StorageError) -> ResolvedManifest
    /// Validates `body` and stores it under `reference`, and points each of `tags` at it,
    /// all in one commit; every blob and child it names must already be in `repository`.
    func put(_ body: [UInt8], contentType: String?, reference: Reference,
             repository: RepositoryName, tags: [Tag]) throws(StorageError) -> PushedManifest
    /// Stores `body` as `put` does (validated, byte-exact, under `reference`), except that
    /// the blobs and children it names need not be in `repository` yet: content filled
    /// on demand (a pull-through mirror), whose blobs arrive when they are pulled.
    func putFetched(_ body: [UInt8], contentType: String?, reference: Reference,
                    repository: RepositoryName) throws(StorageError) -> PushedManifest
    func delete(_ reference: Reference, in repository: RepositoryName) throws(StorageError)
    /// Records that a pull-through mirror stored `digest` (`size` bytes) as a blob of
    /// `repository`: with events on, one `org.berth.mirror.fetched` event in the
    /// repository's next index commit (the caller has stored the blob and not yet
    /// acknowledged it).
    func recordFetched(blob digest: Digest, size: UInt64, in repository: RepositoryName) throws(StorageError)
}

extension ManifestService {
    /// Stores `body` under `reference` alone.
    public func put(_ body: [UInt8], contentType: String?, reference: Reference,
                    repository: RepositoryName) throws(StorageError) -> PushedManifest {
        try put(body, contentType: contentType, reference: reference, repository: repository, tags: [])
    }
}

/// A manifest service wrapped around another that changes only some calls (a quota, the
/// pull records): every call it does not implement itself goes to `inner` unchanged.
protocol ManifestServiceDecorator: ManifestService {
    var inner: any ManifestService { get }
}

extension ManifestServiceDecorator {
    func resolve(_ reference: Reference, in repository: RepositoryName) throws(StorageError) -> ResolvedManifest {
        try inner.resolve(reference, in: repository)
    }

    func put(_ body: [UInt8], contentType: String?, reference: Reference,
             repository: RepositoryName, tags: [Tag]) throws(StorageError) -> PushedManifest {
        try inner.put(body, contentType: contentType, reference: reference, repository: repository, tags: tags)
    }

    func putFetched(_ body: [UInt8], contentType: String?, reference: Reference,
                    repository: RepositoryName) throws(StorageError) -> PushedManifest {
        try inner.putFetched(body, contentType: contentType, reference: reference, repository: repository)
    }

    func delete(_ reference: Reference, in repository: RepositoryName) throws(StorageError) {
        try inner.delete(reference, in: repository)
    }

    func recordFetched(blob digest: Digest, size: UInt64, in repository: RepositoryName) throws(StorageError) {
        try inner.recordFetched(blob: digest, size: size, in: repository)
    }
}
