/// Decorators that put a store's byte quotas (`QuotaBook`) in front of the capabilities
/// that add or remove blobs: uploads, mounts, blob deletes and manifest pushes. Everything
/// else passes through; a repository no rule meters passes through untouched.
extension Capabilities {
    /// These capabilities with `quotas` enforced.
    public func metered(by quotas: QuotaBook) -> Capabilities {
        guard !quotas.rules.isEmpty else { return self }
        var metered = self
        metered.uploads = MeteredUploads(inner: uploads, quotas: quotas)
        metered.links = MeteredLinks(inner: links, blobs: blobs, quotas: quotas)
        metered.manifests = MeteredManifests(inner: manifests, blobs: blobs, quotas: quotas)
        return metered
    }
}

/// Uploads under quota: a POST into a full quota, a PATCH whose length (or, streamed, whose
/// bytes as they arrive) would pass it, and a final PUT whose total would, are refused
/// before the bytes are stored; the commit itself is admitted under the rules' locks
/// (`QuotaBook.admit`). A refused session is cancelled: nothing of it stays.
struct MeteredUploads: BlobIngester {
    let inner: any BlobIngester
    let quotas: QuotaBook

    func start(repository: RepositoryName, algorithm: Digest.Algorithm?, durable: Bool) throws(StorageError) -> UploadProgress {
        if let room = try quotas.room(in: repository), room.bytes == 0 {
            throw .quotaExceeded(rule: room.rule.description, used: room.used, adding: 0, limit: room.rule.limit)
        }
        return try inner.start(repository: repository, algorithm: algorithm, durable: durable)
    }

    func progress(_ id: UploadID, repository: RepositoryName) throws(StorageError) -> UploadProgress {
        try inner.progress(id, repository: repository)
    }

    func append(_ id: UploadID, repository: RepositoryName, startingAt: UInt64?, expectedLength: UInt64?,
                from source: any ByteSource) throws(StorageError) -> UploadProgress {
        guard quotas.meters(repository) else {
            return try inner.append(id, repository: repository, startingAt: startingAt, expectedLength: expectedLength, from: source)
        }
        return try cancellingWhenRefused(id, repository) { () throws(StorageError) in
            let body = try limited(source, id: id, repository: repository, expectedLength: expectedLength, digest: nil)
            return try inner.append(id, repository: repository, startingAt: startingAt, expectedLength: expectedLength, from: body)
        }
    }

    func complete(_ id: UploadID, repository: RepositoryName, digest: Digest, startingAt: UInt64?,
                  expectedLength: UInt64?, lastChunk source: (any ByteSource)?,
                  admission: BlobAdmission?) throws(StorageError) -> UInt64 {
        guard quotas.meters(repository) else {
            return try inner.complete(id, repository: repository, digest: digest, startingAt: startingAt,
                                      expectedLength: expectedLength, lastChunk: source, admission: admission)
        }
        return try cancellingWhenRefused(id, repository) { () throws(StorageError) in
            var body = source
            if let source {
                body = try limited(source, id: id, repository: repository, expectedLength: expectedLength, digest: digest)
            } else {
                try quotas.checkRoom(for: try inner.progress(id, repository: repository).size, digest: digest, in: repository)
            }
            return try inner.complete(id, repository: repository, digest: digest, startingAt: startingAt,
                                      expectedLength: expectedLength, lastChunk: body) { (digest, size, commit) throws(StorageError) in
                try quotas.admit(digest, size: size, into: repository) { () throws(StorageError) in
                    if let admission { try admission(digest, size, commit) } else { try commit() }
                }
            }
        }
    }

    func cancel(_ id: UploadID, repository: RepositoryName) throws(StorageError) {
        try inner.cancel(id, repository: repository)
    }

    /// Checks a body of known length against the room left, or wraps one of unknown
    /// length so that it fails once its bytes would not fit.
    private func limited(_ source: any ByteSource, id: UploadID, repository: RepositoryName, expectedLength: UInt64?,
                         digest: Digest?) throws(StorageError) -> any ByteSource {
        let current = try inner.progress(id, repository: repository).size
        if let expectedLength {
            let (total, overflow) = current.addingReportingOverflow(expectedLength)
            try quotas.checkRoom(for: overflow ? .max : total, digest: digest, in: repository)
            return source
        }
        try quotas.checkRoom(for: current, digest: digest, in: repository)
        guard let room = try quotas.room(in: repository, for: digest) else { return source }
        return RoomLimitedSource(inner: source, allowance: room.bytes > current ? room.bytes - current : 0,
                                 startingAt: current, rule: room.rule, used: room.used)
    }

    private func cancellingWhenRefused<T>(_ id: UploadID, _ repository: RepositoryName,
                                          _ body: () throws(StorageError) -> T) throws(StorageError) -> T {
        do throws(StorageError) {
            return try body()
        } catch {
            if case .quotaExceeded = error { try? inner.cancel(id, repository: repository) }
            throw error
        }
    }
}

/// A body of unknown length that fails with `quotaExceeded` as soon as it brings more
/// than `allowance` bytes (the upload store then cuts the session back).
final class RoomLimitedSource: ByteSource {
    private let inner: any ByteSource
    private let allowance: UInt64
    private let startingAt: UInt64
    private let rule: QuotaRule
    private let used: UInt64
    private var received: UInt64 = 0

    init(inner: any ByteSource, allowance: UInt64, startingAt: UInt64, rule: QuotaRule, used: UInt64) {
        self.inner = inner
        self.allowance = allowance
        self.startingAt = startingAt
        self.rule = rule
        self.used = used
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) -> Int {
        let count = try inner.read(into: buffer)
        received += UInt64(count)
        if received > allowance {
            let (total, overflow) = startingAt.addingReportingOverflow(received)
            throw .quotaExceeded(rule: rule.description, used: used, adding: overflow ? .max : total, limit: rule.limit)
        }
        return count
    }
}

/// Mounts under quota: a blob new to a rule is admitted like an upload's commit; a blob
/// the rule counts already (held by another of its repositories) costs nothing. A blob
/// DELETE releases it from every rule none of whose other repositories holds it.
struct MeteredLinks: BlobLinker {
    let inner: any BlobLinker
    let blobs: any BlobStatter
    let quotas: QuotaBook

    func mount(_ digest: Digest, from source: RepositoryName, into repository: RepositoryName) throws(StorageError) -> Bool {
        guard quotas.meters(repository), blobs.size(of: digest, in: repository) == nil,
              let size = blobs.size(of: digest, in: source) else {
            return try inner.mount(digest, from: source, into: repository)
        }
        return try admitted(digest, size: size, into: repository) { () throws(StorageError) in
            try inner.mount(digest, from: source, into: repository)
        }
    }

    func mountFromAnywhere(_ digest: Digest, into repository: RepositoryName) throws(StorageError) -> Bool {
        guard quotas.meters(repository), blobs.size(of: digest, in: repository) == nil,
              let size = FileSystem.regularFileSize(quotas.layout.sharedBlobFile(digest)) else {
            return try inner.mountFromAnywhere(digest, into: repository)
        }
        return try admitted(digest, size: size, into: repository) { () throws(StorageError) in
            try inner.mountFromAnywhere(digest, into: repository)
        }
    }

    func delete(_ digest: Digest, from repository: RepositoryName) throws(StorageError) {
        try quotas.release(digest, from: repository) { () throws(StorageError) in try inner.delete(digest, from: repository) }
    }

    /// A mount that found nothing to link gives its record back.
    private func admitted(_ digest: Digest, size: UInt64, into repository: RepositoryName,
                          _ link: () throws(StorageError) -> Bool) throws(StorageError) -> Bool {
        let linked = try quotas.admit(digest, size: size, into: repository, link)
        if !linked { try quotas.release(digest, from: repository) {} }
        return linked
    }
}

/// Manifest pushes under quota: the manifest's own bytes are a blob of the repository,
/// admitted like any other, so a push into a full quota (or one lowered below its usage)
/// is refused unless the manifest is there already. Deletes pass through: the manifest's
/// blob and its layers leave the repository, and the usage, at the next gc.
struct MeteredManifests: ManifestServiceDecorator {
    let inner: any ManifestService
    let blobs: any BlobStatter
    let quotas: QuotaBook

    func put(_ body: [UInt8], contentType: String?, reference: Reference,
             repository: RepositoryName, tags: [Tag]) throws(StorageError) -> PushedManifest {
        let digest: Digest
        if case .digest(let named) = reference { digest = named } else { digest = ContentHasher.digest(of: body) }
        guard quotas.meters(repository), blobs.size(of: digest, in: repository) == nil else {
            return try inner.put(body, contentType: contentType, reference: reference, repository: repository, tags: tags)
        }
        return try quotas.admit(digest, size: UInt64(body.count), into: repository) { () throws(StorageError) in
            try inner.put(body, contentType: contentType, reference: reference, repository: repository, tags: tags)
        }
    }
}
