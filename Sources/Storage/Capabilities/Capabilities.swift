/// What the registry needs from a store, as small capability protocols. `Store` hands
/// out its disk implementations; a decorator (a pull-through mirror, a quota) wraps some
/// of them and passes the others on, and the storage conformance suite runs against
/// whatever bundle it is given.
public struct Capabilities: Sendable {
    /// Where served blobs live, for nginx's `X-Accel-Redirect`.
    public var layout: StoreLayout
    public var blobs: any BlobStatter
    public var links: any BlobLinker
    public var uploads: any BlobIngester
    public var manifests: any ManifestService
    public var tags: any TagService
    public var repositories: any RepositoryCatalog
    public var referrers: any ReferrerIndex
    /// Repositories filled on demand from upstreams; nil: every repository is hosted.
    public var pullThrough: (any PullThrough)?

    public init(layout: StoreLayout, blobs: any BlobStatter, links: any BlobLinker, uploads: any BlobIngester,
                manifests: any ManifestService, tags: any TagService, repositories: any RepositoryCatalog,
                referrers: any ReferrerIndex, pullThrough: (any PullThrough)? = nil) {
        self.layout = layout
        self.blobs = blobs
        self.links = links
        self.uploads = uploads
        self.manifests = manifests
        self.tags = tags
        self.repositories = repositories
        self.referrers = referrers
        self.pullThrough = pullThrough
    }
}
