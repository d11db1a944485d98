/// The store of one storage root, built once per process (`berth serve`, `gc`, `scrub`,
/// a test): it owns the layout, the per-process caches (the catalog and parsed
/// `index.json` files), the trash and the lock policy, and wires the disk
/// implementations of the capability protocols to them. Nothing else constructs them,
/// so every part of a process sees the same caches, and a different lock policy is a
/// change of `Options` here.
public final class Store: Sendable {
    /// Choices an operator makes about the store itself.
    public struct Options: Sendable {
        /// Open upload sessions allowed per repository.
        public var maximumUploadSessions = Defaults.maximumUploadSessions
        public var locks = LockPolicy()
        /// Write-once tags (`immutable_tags`), checked in every index commit.
        public var immutableTags: [ImmutableTagRule] = []
        /// Every manifest push, tag move and delete queues a CloudEvent in the outbox, in
        /// its commit (`EventOutbox`). On when webhooks are configured.
        public var recordsEvents = false
        /// Byte quotas (`quota`), enforced by the capabilities this store hands out.
        public var quotas: [QuotaRule] = []
        /// Namespaces no quota meters (pull-through mirrors: filled by pulls, not pushes).
        public var unmeteredNamespaces: [String] = []

        public init() {}
    }

    public let layout: StoreLayout
    public let options: Options
    public let repositories: RepositoryStore
    public let blobs: BlobStore
    public let uploads: UploadStore
    public let manifests: ManifestStore
    public let referrers: ReferrersStore
    public let trash: Trash
    /// The events queued for delivery (read by `berth events` whether or not this process
    /// records any).
    public let events: EventOutbox
    /// The files behind `/metrics` (worker counters, gc and scrub reports, totals).
    public let metricsFiles: MetricsFiles
    /// The byte quotas' accounts (read by `berth quota`, reconciled by scrub and gc).
    public let quotas: QuotaBook
    /// The filesystem's clock, which ages of files in the store are measured against.
    public let clock: StoreClock

    public init(layout: StoreLayout, options: Options = Options()) {
        self.layout = layout
        self.options = options
        clock = StoreClock(layout: layout)
        trash = Trash(layout: layout)
        repositories = RepositoryStore(layout: layout, locks: options.locks, catalogCache: CatalogCache())
        blobs = BlobStore(layout: layout, repositories: repositories, trash: trash)
        uploads = UploadStore(layout: layout, blobs: blobs, repositories: repositories, locks: options.locks, trash: trash,
                              maximumSessionsPerRepository: options.maximumUploadSessions)
        referrers = ReferrersStore(layout: layout, cache: ReferrersCache())
        events = EventOutbox(layout: layout, repositories: repositories)
        manifests = ManifestStore(layout: layout, blobs: blobs, repositories: repositories, referrers: referrers,
                                  cache: IndexCache(clock: clock), committer: IndexCommitter(), immutableTags: options.immutableTags,
                                  outbox: events, recordsEvents: options.recordsEvents)
        metricsFiles = MetricsFiles(layout: layout, repositories: repositories)
        quotas = QuotaBook(rules: options.quotas, unmeteredNamespaces: options.unmeteredNamespaces, layout: layout,
                           locks: options.locks, repositories: repositories)
    }

    /// A store at `root` with the default options.
    public convenience init(root: String) { self.init(layout: StoreLayout(root: root)) }

    /// The disk implementations of what the registry needs, with the byte quotas in
    /// front (`metered(by:)`), ready to be decorated further.
    public var capabilities: Capabilities {
        Capabilities(layout: layout, blobs: blobs, links: blobs, uploads: uploads, manifests: manifests, tags: manifests,
                     repositories: repositories, referrers: referrers).metered(by: quotas)
    }

    /// A garbage collection over this store (its locks, its caches).
    public func garbageCollector(options: GarbageCollector.Options = .init()) -> GarbageCollector {
        GarbageCollector(store: self, options: options)
    }

    /// A scrub over this store.
    public func scrubber(repair: Bool = false) -> Scrubber {
        Scrubber(store: self, repair: repair)
    }
}
