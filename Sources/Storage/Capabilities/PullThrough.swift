/// Repositories filled on demand from upstream registries (a pull-through mirror), beside
/// the hosted ones. A mirrored repository is an OCI layout like any other; this says
/// which repositories are mirrored, when an answer has to wait on the upstream, and
/// brings in what the store does not hold yet.
public protocol PullThrough: Sendable {
    /// The mirrored namespaces: repositories `<namespace>/…` are filled from upstreams.
    var namespaces: [String] { get }
    /// The namespace a client's `?ns=` value names (a namespace, or its upstream's host).
    func namespace(named value: String) -> String?
    /// Where a read of a repository that no hosted one has the name of goes; nil: nowhere.
    var defaultNamespace: String? { get }
    /// True when resolving `reference` would ask the upstream (a manifest not stored, or
    /// a tag due for revalidation): the answer may then wait on the network.
    func needsUpstream(_ reference: Reference, in repository: RepositoryName) -> Bool
    /// The size of a blob the repository does not hold, as the upstream states it
    /// (`blobUnknown` when it has none).
    func upstreamSize(of digest: Digest, in repository: RepositoryName) throws(StorageError) -> UInt64?
    /// A blob of a mirrored repository is answered from the store (nginx sends it): a hit.
    func servedFromStore(_ digest: Digest, in repository: RepositoryName)
    /// Starts bringing in a blob the repository does not hold; nil when it is in the store
    /// by now (another fetch finished it; the caller answers it from the store, a hit).
    /// `blobUnknown` when the upstream has none.
    func fetch(_ digest: Digest, in repository: RepositoryName) throws(StorageError) -> (any IncomingBlob)?
}

extension PullThrough {
    /// True when `repository` is in a mirrored namespace.
    public func isMirrored(_ repository: RepositoryName) -> Bool {
        namespaces.contains { repository.value.hasPrefix($0 + "/") }
    }

    public func servedFromStore(_ digest: Digest, in repository: RepositoryName) {}
}

/// A blob on its way from an upstream into the store.
public protocol IncomingBlob: AnyObject, Sendable {
    var digest: Digest { get }
    /// Its length, when the upstream announced it.
    var size: UInt64? { get }
    /// Sends the bytes to `sink` as they arrive while storing them; they become the
    /// repository's blob only once digest and size check out, crash-safe like an upload.
    /// The last bytes are held back until then, so a blob that does not check out
    /// reaches `sink` cut short and nothing is stored. A sink whose client went away
    /// stops the sending, not the storing.
    func deliver(to sink: any BodySink) throws(StorageError)
}

extension IncomingBlob {
    /// `deliver(to:)` into a function that takes each run of bytes (false: stop).
    public func deliver(to write: (UnsafeRawBufferPointer) -> Bool) throws(StorageError) {
        try withoutActuallyEscaping(write) { (escapable) throws(StorageError) in
            try deliver(to: ClosureBodySink(escapable))
        }
    }
}
