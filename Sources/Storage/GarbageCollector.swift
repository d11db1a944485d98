#if canImport(Glibc)
import Glibc
#endif

/// Frees what nothing references any more, safely while pushes run:
/// - per repository, under its lock: blobs no kept manifest reaches (following indexes
///   to their children, configs, layers and the referrers of kept manifests), untagged
///   manifests older than `untaggedManifestAge` when that is set, and stale referrer entries;
/// - shared blob copies no repository links any more (the bytes go with the last link);
/// - upload sessions idle longer than `uploadAge`, and leftover temp files;
/// - in pull-through mirrors with limits (`mirrors`), manifests not pulled within
///   `max_age` and, past `max_bytes`, the least recently pulled (`MirrorEviction`);
/// - and it folds the workers' pull records together (`PullHistory.compact`).
/// Nothing changed within `gracePeriod` is touched, so a push in flight keeps the blobs
/// it uploaded but has not referenced yet.
public struct GarbageCollector: Sendable {
    public struct Options: Sendable {
        public var gracePeriod = Defaults.gcGracePeriod
        public var uploadAge = Defaults.uploadAge
        /// nil: untagged manifests are kept.
        public var untaggedManifestAge: Int?
        public var dryRun = false
        /// Pull-through mirrors whose content is evicted by age or size.
        public var mirrors: [MirrorLimit] = []
        /// Called after each repository: repositories done, of how many, bytes freed so far.
        public var progress: (@Sendable (_ repositories: Int, _ of: Int, _ bytesFreed: UInt64) -> Void)?

        public init() {}
    }

    /// The eviction limits of one mirror (`mirror.<name>.max_age`, `.max_bytes`).
    public struct MirrorLimit: Sendable, Equatable {
        /// Repositories `<namespace>/…`.
        public let namespace: String
        public let maxAge: Int?
        public let maxBytes: UInt64?

        public init(namespace: String, maxAge: Int?, maxBytes: UInt64?) {
            self.namespace = namespace
            self.maxAge = maxAge
            self.maxBytes = maxBytes
        }
    }

    /// One thing removed (or, in a dry run, that would be).
    public struct Removal: Sendable, Equatable {
        public enum Kind: String, Sendable { case blobLink = "blob", sharedBlob = "shared-blob", manifest, upload, referrer, temp, trash }
        public let kind: Kind
        public let path: String
        /// Bytes freed on disk by this removal (0 while other links keep the data).
        public let bytesFreed: UInt64
        /// Why, where more than "nothing references it" is to say (a mirror eviction).
        public var reason: String?

        public init(kind: Kind, path: String, bytesFreed: UInt64, reason: String? = nil) {
            self.kind = kind
            self.path = path
            self.bytesFreed = bytesFreed
            self.reason = reason
        }
    }

    public struct Report: Sendable {
        public var removals: [Removal] = []
        public var repositoriesScanned = 0
        /// Time per phase, in the order they ran.
        public var phases: [MaintenancePhase] = []
        public var bytesFreed: UInt64 { removals.reduce(0) { $0 + $1.bytesFreed } }
        public func count(_ kind: Removal.Kind) -> Int { removals.filter { $0.kind == kind }.count }
    }

    public let layout: StoreLayout
    public let options: Options
    private let repositories: RepositoryStore
    private let manifests: ManifestStore
    private let referrers: ReferrersStore
    private let clock: StoreClock
    private let store: Store

    /// Built by `Store.garbageCollector(options:)`.
    init(store: Store, options: Options) {
        self.layout = store.layout
        self.options = options
        repositories = store.repositories
        manifests = store.manifests
        referrers = store.referrers
        clock = store.clock
        self.store = store
    }

    /// Runs once; `now` defaults to the store's clock (`StoreClock`), which the grace
    /// period and upload age are measured on, whichever node's clock is off.
    public func run(now given: Int? = nil) throws(StorageError) -> Report {
        let now = given ?? clock.now()
        var report = Report()
        var clock = PhaseClock()
        let history = options.dryRun ? try PullHistory.load(layout) : try PullHistory.compact(store)
        let evictions = try MirrorEviction(layout: layout, manifests: manifests, repositories: repositories)
            .plan(options.mirrors, history: history, now: now, gracePeriod: options.gracePeriod).evictions
        clock.finish("pull-records")
        let catalog = try repositories.catalog()
        var freed: UInt64 = 0
        for repository in catalog {
            let before = report.removals.count
            try repositories.withLock(repository) { () throws(StorageError) in
                try collect(repository, now: now, evicting: evictions[repository] ?? [:], into: &report)
            }
            report.repositoriesScanned += 1
            freed += report.removals[before...].reduce(0) { $0 + $1.bytesFreed }
            options.progress?(report.repositoriesScanned, catalog.count, freed)
        }
        clock.finish("repositories")
        try collectSharedBlobs(now: now, into: &report)
        clock.finish("shared-blobs")
        try collectUploads(now: now, into: &report)
        try collectSessionMarkers(under: layout.sessionsDirectory, repositoryPath: [], into: &report)
        clock.finish("uploads")
        try collectTemporaryFiles(now: now, into: &report)
        try emptyTrash(into: &report)
        clock.finish("temp-and-trash")
        report.phases = clock.phases
        return report
    }

    // MARK: Repositories

    private func collect(_ repository: RepositoryName, now: Int, evicting evictions: [Digest: String],
                         into report: inout Report) throws(StorageError) {
        var index = try manifests.readIndex(repository)
        let listed = index.manifests.compactMap { Digest($0.digest) }
        var roots: [Digest] = []
        var prunable: Set<Digest> = []
        for descriptor in index.manifests {
            guard let digest = Digest(descriptor.digest) else { continue }
            if evictions[digest] != nil {
                prunable.insert(digest)
            } else if descriptor.tag == nil, let age = options.untaggedManifestAge, isOlder(layout.blobFile(repository, digest), than: age, now: now) {
                prunable.insert(digest)
            } else {
                roots.append(digest)
            }
        }
        let reached = try reachable(from: roots, in: repository)
        let pruned = prunable.subtracting(reached.manifests)
        if !pruned.isEmpty {
            for digest in pruned.sorted() {
                index.removeManifest(digest)
                report.removals.append(Removal(kind: .manifest, path: "\(repository.value)@\(digest)", bytesFreed: 0,
                                               reason: evictions[digest]))
            }
            if !options.dryRun {
                try manifests.replaceIndexLocked(index, repository)
            }
        }
        let kept = reached.blobs
        for algorithm in Digest.Algorithm.allCases {
            let directory = layout.blobsDirectory(repository, algorithm)
            try FileSystem.forEachEntry(directory) { (entry) throws(StorageError) in
                guard !entry.isDirectory, let digest = StoreLayout.blob(algorithm, fromFileName: entry.name),
                      !kept.contains(digest) else { return }
                let path = layout.blobFile(repository, digest)
                guard let status = FileSystem.status(path), now - status.lastChange >= options.gracePeriod else { return }
                report.removals.append(Removal(kind: .blobLink, path: path, bytesFreed: status.linkCount == 1 ? status.size : 0))
                if !options.dryRun { try FileSystem.remove(path) }
            }
        }
        try collectReferrerEntries(repository, listed: Set(listed).subtracting(pruned), into: &report)
    }

    /// Manifests and blobs reachable from `roots`: index children, configs and layers,
    /// and the referrers of every reached manifest.
    private func reachable(from roots: [Digest], in repository: RepositoryName) throws(StorageError) -> (manifests: Set<Digest>, blobs: Set<Digest>) {
        var manifestsSeen: Set<Digest> = []
        var blobs: Set<Digest> = []
        var queue = roots
        while let digest = queue.popLast() {
            guard manifestsSeen.insert(digest).inserted else { continue }
            blobs.insert(digest)
            if let body = try FileSystem.readFile(layout.blobFile(repository, digest), limit: ManifestDocument.maximumSize),
               let document = try? ManifestDocument(body: body, contentType: nil) {
                for blob in document.blobs { blobs.insert(blob.digest) }
                queue.append(contentsOf: document.children.map(\.digest))
            }
            queue.append(contentsOf: try referrers.referrers(of: digest, in: repository).compactMap { Digest($0.digest) })
        }
        return (manifestsSeen, blobs)
    }

    /// Removes referrer entries whose manifest is no longer listed in the repository.
    private func collectReferrerEntries(_ repository: RepositoryName, listed: Set<Digest>, into report: inout Report) throws(StorageError) {
        for algorithm in Digest.Algorithm.allCases {
            for entry in try FileSystem.listDirectory(layout.referrerSubjectsDirectory(repository, algorithm)) where entry.isDirectory {
                guard let subject = StoreLayout.blob(algorithm, fromFileName: entry.name) else { continue }
                for file in try FileSystem.listDirectory(layout.referrersDirectory(repository, subject: subject)) {
                    guard let digest = StoreLayout.referrer(fromFileName: file.name), !listed.contains(digest) else { continue }
                    let path = layout.referrerFile(repository, subject: subject, referrer: digest)
                    report.removals.append(Removal(kind: .referrer, path: path, bytesFreed: 0))
                    if !options.dryRun { try referrers.remove(digest, subject: subject, repository: repository) }
                }
            }
        }
    }

    // MARK: Store-wide

    /// Shared copies that only `_berth/blobs` still links: no repository holds them.
    private func collectSharedBlobs(now: Int, into report: inout Report) throws(StorageError) {
        for algorithm in Digest.Algorithm.allCases {
            let directory = layout.sharedBlobsDirectory(algorithm)
            // Streamed: the folder holds every blob of the store.
            try FileSystem.forEachEntry(directory) { (entry) throws(StorageError) in
                guard !entry.isDirectory, let digest = StoreLayout.blob(algorithm, fromFileName: entry.name) else { return }
                let path = layout.sharedBlobFile(digest)
                guard let status = FileSystem.status(path), status.linkCount == 1,
                      now - status.lastChange >= options.gracePeriod else { return }
                report.removals.append(Removal(kind: .sharedBlob, path: path, bytesFreed: status.size))
                if !options.dryRun { try FileSystem.remove(path) }
            }
        }
    }

    /// Sessions idle past `uploadAge`; a session a request holds right now is skipped.
    private func collectUploads(now: Int, into report: inout Report) throws(StorageError) {
        for entry in try FileSystem.listDirectory(layout.uploadsDirectory) where entry.isDirectory {
            guard let id = UploadID(entry.name) else { continue }
            let directory = layout.uploadDirectory(id)
            // Gone since the listing (finished), or not to be looked at now (ESTALE past its
            // retries): either way not known to be idle.
            guard let directoryStatus = FileSystem.status(directory) else { continue }
            let newest = ([layout.uploadStateFile(id), layout.uploadDataFile(id)]
                .compactMap { FileSystem.status($0)?.lastChange } + [directoryStatus.lastChange]).max() ?? directoryStatus.lastChange
            guard now - newest >= options.uploadAge else { continue }
            let size = FileSystem.status(layout.uploadDataFile(id))?.size ?? 0
            let fd = open(layout.uploadDataFile(id), O_RDWR | O_CLOEXEC)
            defer { if fd >= 0 { close(fd) } }
            if fd >= 0, !FileSystem.tryLock(fd) { continue }
            report.removals.append(Removal(kind: .upload, path: directory, bytesFreed: size))
            if !options.dryRun { try FileSystem.removeTree(directory) }
        }
    }

    /// Open-session markers whose session is gone (finished by a crashed worker, or
    /// removed above). `repositoryPath` holds the name components walked so far.
    private func collectSessionMarkers(under directory: String, repositoryPath: [String], into report: inout Report) throws(StorageError) {
        for entry in try FileSystem.listDirectory(directory) where entry.isDirectory {
            guard entry.name == StoreLayout.openSessionsDirectoryName else {
                guard RepositoryName.isValidComponent(entry.name) else { continue }
                let path = repositoryPath + [entry.name]
                guard let name = RepositoryName(path.joined(separator: "/")) else { continue }
                try collectSessionMarkers(under: "\(layout.sessionsDirectory)/\(name.value)", repositoryPath: path, into: &report)
                continue
            }
            guard let name = RepositoryName(repositoryPath.joined(separator: "/")) else { continue }
            for marker in try FileSystem.listDirectory(layout.openSessionsDirectory(name)) where !marker.isDirectory {
                guard let id = UploadID(marker.name), !FileSystem.isDirectory(layout.uploadDirectory(id)),
                      !options.dryRun else { continue }
                try FileSystem.remove(layout.openSessionMarker(name, id))
            }
        }
    }

    private func collectTemporaryFiles(now: Int, into report: inout Report) throws(StorageError) {
        for entry in try FileSystem.listDirectory(layout.temporaryDirectory) where !entry.isDirectory {
            let path = layout.temporaryFile(named: entry.name)
            guard let status = FileSystem.status(path), now - status.lastChange >= options.gracePeriod else { continue }
            report.removals.append(Removal(kind: .temp, path: path, bytesFreed: status.size))
            if !options.dryRun { try FileSystem.remove(path) }
        }
    }

    /// What requests set aside (workers free it within a second; this covers a worker
    /// that was stopped first).
    private func emptyTrash(into report: inout Report) throws(StorageError) {
        for entry in try FileSystem.listDirectory(layout.trashDirectory) {
            let path = layout.trashEntry(entry.name)
            report.removals.append(Removal(kind: .trash, path: path, bytesFreed: FileSystem.treeSize(path)))
            if !options.dryRun { try FileSystem.removeTree(path) }
        }
    }

    private func isOlder(_ path: String, than age: Int, now: Int) -> Bool {
        guard let status = FileSystem.status(path) else { return true }
        return now - status.lastChange >= age
    }
}
