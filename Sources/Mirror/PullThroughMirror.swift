import Locks
import Storage
import Curl

/// The pull-through mirror as a decorator of the store's capabilities: repositories
/// `<namespace>/…` of each configured mirror are filled from its upstream on demand and
/// then served from the store like hosted ones; every other repository passes through.
///
/// - Manifests by digest are fetched once, verified against the digest, and stored with
///   the media type they came with (`putFetched`: their blobs arrive when pulled).
/// - A tag is served from the store while younger than the mirror's `tag_ttl`, then
///   revalidated with a HEAD; if the upstream fails (down, timeout, 429, 5xx) the stored
///   copy is served (and the event reported); if it no longer has the tag, the stored copy
///   is served too, or, with `keep_missing_tags = false`, the tag is dropped (404).
/// - A missing blob is fetched once (`FetchLock`), on a pool thread at the upstream's
///   pace (`BlobFetch`); every pull of it reads the growing session (`FollowingBlob`).
/// - Pushes and deletes of manifests in a mirrored namespace are refused (`mirrored`).
public final class PullThroughMirror: PullThrough, ManifestService {
    /// What happened that an operator should see: name and fields (no secrets).
    public typealias EventSink = @Sendable (_ event: String, _ details: [String: String]) -> Void

    let store: Capabilities
    let upstreams: [String: UpstreamRegistry]
    public let namespaces: [String]
    public let defaultNamespace: String?
    private let onEvent: EventSink?
    private let fetches: FetchPool
    /// When each mirrored tag was last found current upstream (monotonic seconds), by
    /// `<repository>:<tag>`. Per process: a new process revalidates each tag once.
    private let validated = Locked<[String: Int64]>([:])
    /// Until when (monotonic seconds) each mirror's upstream is left alone after it said
    /// 429 (or 503) with `Retry-After`: requests meanwhile fail at once (stale copies are served).
    private let backoff = Locked<[String: Int64]>([:])
    /// The longest `Retry-After` honoured, and the wait after a 429 without one.
    static let maximumBackoff: Int64 = 300
    static let defaultBackoff: Int64 = 10

    /// `fetchThreads`: blob fetches run at once per process (more wait for a thread).
    public init(decorating store: Capabilities, mirrors: [MirrorConfiguration], defaultNamespace: String?,
                fetchThreads: Int = Defaults.mirrorThreads, onEvent: EventSink? = nil) throws(MirrorSetupError) {
        var upstreams: [String: UpstreamRegistry] = [:]
        for mirror in mirrors {
            guard RepositoryName(mirror.name) != nil, !mirror.name.contains("/") else {
                throw .invalid(mirror.name, "a mirror's name must be one repository name component ([a-z0-9] with . _ - inside)")
            }
            upstreams[mirror.name] = try UpstreamRegistry(mirror)
        }
        if let defaultNamespace, upstreams[defaultNamespace] == nil {
            throw .invalid(defaultNamespace, "mirror_default names no configured mirror")
        }
        self.store = store
        self.upstreams = upstreams
        namespaces = upstreams.keys.sorted()
        self.defaultNamespace = defaultNamespace
        self.onEvent = onEvent
        fetches = FetchPool(limit: fetchThreads)
    }

    /// The store's capabilities with manifests and pull-through served by this mirror.
    public var capabilities: Capabilities {
        var decorated = store
        decorated.manifests = self
        decorated.pullThrough = self
        return decorated
    }

    public func namespace(named value: String) -> String? {
        if upstreams[value] != nil { return value }
        return namespaces.first { upstreams[$0]?.configuration.upstreamHost == value }
    }

    /// The mirror of `repository` and the repository's name upstream, when it is mirrored.
    func upstream(of repository: RepositoryName) -> (namespace: String, registry: UpstreamRegistry, name: String)? {
        guard let slash = repository.value.firstIndex(of: "/") else { return nil }
        let namespace = String(repository.value[..<slash])
        guard let registry = upstreams[namespace] else { return nil }
        return (namespace, registry, String(repository.value[repository.value.index(after: slash)...]))
    }

    // MARK: PullThrough

    public func needsUpstream(_ reference: Reference, in repository: RepositoryName) -> Bool {
        guard let mirror = upstream(of: repository) else { return false }
        guard (try? store.manifests.resolve(reference, in: repository)) != nil else { return true }
        guard case .tag(let tag) = reference else { return false }
        return !isCurrent(repository, tag, ttl: mirror.registry.configuration.tagTTL)
    }

    public func upstreamSize(of digest: Digest, in repository: RepositoryName) throws(StorageError) -> UInt64? {
        guard let mirror = upstream(of: repository) else { throw .blobUnknown(digest) }
        let transfer = try call(mirror.namespace) { () throws(HTTPError) in
            try mirror.registry.blob(.head, repository: mirror.name, digest: digest)
        }
        try check(transfer.status, mirror.namespace, missing: .blobUnknown(digest), retryAfter: transfer.header("retry-after"))
        return transfer.contentLength
    }

    public func servedFromStore(_ digest: Digest, in repository: RepositoryName) {
        guard let mirror = upstream(of: repository) else { return }
        onEvent?("mirror_hit", ["mirror": mirror.namespace])
    }

    public func fetch(_ digest: Digest, in repository: RepositoryName) throws(StorageError) -> (any IncomingBlob)? {
        guard let mirror = upstream(of: repository) else { throw .blobUnknown(digest) }
        if store.blobs.size(of: digest, in: repository) != nil { return nil }
        let lock: FetchLock
        switch try FetchLock.take(store.layout, repository, digest) {
        case .following(let session, let size, let watch):
            onEvent?("mirror_follow", ["mirror": mirror.namespace, "repository": repository.value, "digest": digest.description])
            return FollowingBlob(digest: digest, size: size, session: session, watch: watch, layout: store.layout,
                                 blobs: store.blobs, repository: repository, namespace: mirror.namespace)
        case .leading(let taken):
            lock = taken
        }
        // The fetch that held the lock may have stored it by now.
        if store.blobs.size(of: digest, in: repository) != nil { return nil }
        let transfer = try call(mirror.namespace) { () throws(HTTPError) in
            try mirror.registry.blob(.get, repository: mirror.name, digest: digest)
        }
        try check(transfer.status, mirror.namespace, missing: .blobUnknown(digest), retryAfter: transfer.header("retry-after"))
        let size = transfer.contentLength
        let watch = try lock.watch()
        // Never resumed by a client: its state need not survive a crash (its data is
        // fsynced before the commit all the same).
        let session = try store.uploads.start(repository: repository, algorithm: digest.algorithm, durable: false)
        lock.announce(session: session.id, size: size)
        onEvent?("mirror_fetch", ["mirror": mirror.namespace, "repository": repository.value, "digest": digest.description,
                                  "size": size.map(String.init) ?? "unknown"])
        let fetch = BlobFetch(digest: digest, size: size, session: session.id, transfer: transfer, uploads: store.uploads,
                              manifests: store.manifests, repository: repository, namespace: mirror.namespace, lock: lock, onEvent: onEvent)
        fetch.writeArrived()
        fetches.run { fetch.run() }
        return FollowingBlob(digest: digest, size: size, session: session.id, watch: watch, layout: store.layout,
                             blobs: store.blobs, repository: repository, namespace: mirror.namespace)
    }

    // MARK: ManifestService

    public func resolve(_ reference: Reference, in repository: RepositoryName) throws(StorageError) -> ResolvedManifest {
        guard let mirror = upstream(of: repository) else { return try store.manifests.resolve(reference, in: repository) }
        let cached = try stored(reference, in: repository)
        switch reference {
        case .digest:
            if let cached { return hit(cached, mirror.namespace) }
            try fetchManifest(reference, into: repository, from: mirror)
            return try store.manifests.resolve(reference, in: repository)
        case .tag(let tag):
            let ttl = mirror.registry.configuration.tagTTL
            if let cached, isCurrent(repository, tag, ttl: ttl) { return hit(cached, mirror.namespace) }
            do throws(StorageError) {
                if let cached, try revalidate(cached, tag: tag, in: repository, from: mirror) { return hit(cached, mirror.namespace) }
                try fetchManifest(reference, into: repository, from: mirror)
                markCurrent(repository, tag)
                return try store.manifests.resolve(reference, in: repository)
            } catch {
                guard let cached, case .upstreamUnavailable(_, let reason) = error else { throw error }
                onEvent?("mirror_stale", ["mirror": mirror.namespace, "repository": repository.value, "tag": tag.value,
                                          "reason": reason])
                return cached
            }
        }
    }

    public func put(_ body: [UInt8], contentType: String?, reference: Reference, repository: RepositoryName,
                    tags: [Tag]) throws(StorageError) -> PushedManifest {
        guard upstream(of: repository) == nil else { throw .mirrored(repository) }
        return try store.manifests.put(body, contentType: contentType, reference: reference, repository: repository, tags: tags)
    }

    public func putFetched(_ body: [UInt8], contentType: String?, reference: Reference,
                           repository: RepositoryName) throws(StorageError) -> PushedManifest {
        try store.manifests.putFetched(body, contentType: contentType, reference: reference, repository: repository)
    }

    public func delete(_ reference: Reference, in repository: RepositoryName) throws(StorageError) {
        guard upstream(of: repository) == nil else { throw .mirrored(repository) }
        try store.manifests.delete(reference, in: repository)
    }

    public func recordFetched(blob digest: Digest, size: UInt64, in repository: RepositoryName) throws(StorageError) {
        try store.manifests.recordFetched(blob: digest, size: size, in: repository)
    }

    // MARK: Internals

    /// Reports a manifest answered from the store (a hit) and passes it on.
    private func hit(_ manifest: ResolvedManifest, _ namespace: String) -> ResolvedManifest {
        onEvent?("mirror_hit", ["mirror": namespace])
        return manifest
    }

    private func stored(_ reference: Reference, in repository: RepositoryName) throws(StorageError) -> ResolvedManifest? {
        do {
            return try store.manifests.resolve(reference, in: repository)
        } catch {
            switch error {
            case .manifestUnknown, .repositoryUnknown: return nil
            default: throw error
            }
        }
    }

    /// True when the upstream's tag still names `cached` (a HEAD), or names nothing any
    /// more (the stored copy is kept); false when it moved. Throws `upstreamUnavailable`.
    private func revalidate(_ cached: ResolvedManifest, tag: Tag, in repository: RepositoryName,
                            from mirror: (namespace: String, registry: UpstreamRegistry, name: String)) throws(StorageError) -> Bool {
        let reply = try call(mirror.namespace) { () throws(HTTPError) in
            try mirror.registry.manifest(.head, repository: mirror.name, reference: tag.value)
        }
        if reply.status == 404 {
            let keep = mirror.registry.configuration.keepMissingTags
            onEvent?("mirror_upstream_missing", ["mirror": mirror.namespace, "repository": repository.value, "tag": tag.value,
                                                 "action": keep ? "kept" : "untagged"])
            if !keep { try forget(tag, in: repository) }
            markCurrent(repository, tag)
            return true
        }
        try check(reply.status, mirror.namespace, missing: .manifestUnknown(.tag(tag)), retryAfter: reply.header("retry-after"))
        guard let header = reply.header("docker-content-digest"), let digest = Digest(header) else { return false }
        guard digest == cached.digest else { return false }
        markCurrent(repository, tag)
        return true
    }

    /// Drops a stored tag the upstream no longer has (`keep_missing_tags = false`), so the
    /// pull gets 404 as from the upstream. A tag an immutable-tag rule holds stays.
    private func forget(_ tag: Tag, in repository: RepositoryName) throws(StorageError) {
        do {
            try store.manifests.delete(.tag(tag), in: repository)
        } catch {
            switch error {
            case .manifestUnknown: break
            case .tagImmutable: return
            default: throw error
            }
        }
        throw .manifestUnknown(.tag(tag))
    }

    /// GETs the manifest upstream, checks it hashes to what was asked for (or announced),
    /// and stores it under `reference`.
    private func fetchManifest(_ reference: Reference, into repository: RepositoryName,
                               from mirror: (namespace: String, registry: UpstreamRegistry, name: String)) throws(StorageError) {
        let reply = try call(mirror.namespace) { () throws(HTTPError) in
            try mirror.registry.manifest(.get, repository: mirror.name, reference: reference.description)
        }
        try check(reply.status, mirror.namespace, missing: .manifestUnknown(reference), retryAfter: reply.header("retry-after"))
        let announced = reply.header("docker-content-digest").flatMap { Digest($0) }
        let algorithm: Digest.Algorithm = if case .digest(let wanted) = reference { wanted.algorithm } else { announced?.algorithm ?? .sha256 }
        let computed = ContentHasher.digest(of: reply.body, algorithm: algorithm)
        let expected: Digest? = if case .digest(let wanted) = reference { wanted } else { announced }
        if let expected, expected != computed {
            throw .upstreamUnavailable(namespace: mirror.namespace,
                                       reason: "it sent a manifest that hashes to \(computed), not \(expected)")
        }
        let declared = reply.header("content-type").map { String($0.prefix { $0 != ";" }).trimmingCharacters(in: " ") }
        let contentType = declared.flatMap { MediaType.manifests.contains($0) ? $0 : nil }
        let stored = try store.manifests.putFetched(reply.body, contentType: contentType, reference: reference, repository: repository)
        let details = ["mirror": mirror.namespace, "repository": repository.value, "reference": reference.description,
                       "digest": stored.digest.description, "size": String(reply.body.count), "kind": "manifest"]
        onEvent?("mirror_fetch", details)
        onEvent?("mirror_stored", details)
    }

    private func isCurrent(_ repository: RepositoryName, _ tag: Tag, ttl: Int) -> Bool {
        guard ttl > 0, let checked = validated.withLock({ $0["\(repository.value):\(tag.value)"] }) else { return false }
        return UpstreamRegistry.monotonicSeconds() - checked < Int64(ttl)
    }

    private func markCurrent(_ repository: RepositoryName, _ tag: Tag) {
        let now = UpstreamRegistry.monotonicSeconds()
        validated.withLock { $0["\(repository.value):\(tag.value)"] = now }
    }

    /// Runs an upstream request; a transport failure becomes `upstreamUnavailable`, and so
    /// does any request while the upstream asked to be left alone.
    private func call<T>(_ namespace: String, _ body: () throws(HTTPError) -> T) throws(StorageError) -> T {
        let now = UpstreamRegistry.monotonicSeconds()
        if let until = backoff.withLock({ $0[namespace] }), now < until {
            throw .upstreamUnavailable(namespace: namespace, reason: "it asked to be left alone for \(until - now) more seconds (Retry-After)")
        }
        do {
            return try body()
        } catch {
            onEvent?("mirror_upstream_error", ["mirror": namespace, "error": error.description])
            throw .upstreamUnavailable(namespace: namespace, reason: error.description)
        }
    }

    /// Passes a 200; 404 becomes `missing`; anything else `upstreamUnavailable`.
    private func check(_ status: Int, _ namespace: String, missing: StorageError, retryAfter: String?) throws(StorageError) {
        switch status {
        case 200: return
        case 404: throw missing
        default:
            let reason = switch status {
            case 401, 403: "it refused the mirror's credentials (\(status))"
            case 429: "it is rate-limiting the mirror (429\(retryAfter.map { ", Retry-After \($0)" } ?? ""))"
            default: "it answered \(status)"
            }
            if status == 429 || (status == 503 && retryAfter != nil) {
                let seconds = min(retryAfter.flatMap { Int64($0) } ?? Self.defaultBackoff, Self.maximumBackoff)
                let until = UpstreamRegistry.monotonicSeconds() + max(seconds, 1)
                backoff.withLock { $0[namespace] = until }
            }
            onEvent?("mirror_upstream_error", ["mirror": namespace, "error": reason])
            throw .upstreamUnavailable(namespace: namespace, reason: reason)
        }
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}
