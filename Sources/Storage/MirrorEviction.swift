/// Which manifests of pull-through mirrors `berth gc` evicts: those not pulled within the
/// mirror's `max_age`, then, while the mirror's repositories hold more than `max_bytes`,
/// the least recently pulled ones. A manifest's last use is its last recorded pull
/// (`PullHistory`), or when it was stored if that is later. Its bytes are those of the
/// blobs it reaches in its repository (config, layers, index children and theirs); a
/// blob reached from several manifests of the mirror counts once and is freed with the
/// last of them. Nothing stored within the grace period is evicted. Hosted repositories
/// are never looked at; a blob they link too keeps its bytes (only the mirror's link goes).
///
/// The plan is made without locks; gc applies it to each repository under its lock, as
/// it removes manifests there, and frees the blobs nothing kept reaches any more.
struct MirrorEviction {
    struct Plan {
        /// Per repository, the manifests to remove and why.
        var evictions: [RepositoryName: [Digest: String]] = [:]
    }

    private struct Unit {
        let repository: RepositoryName
        let digest: Digest
        let lastUsed: Int
        let stored: Int
        let reach: Set<Digest>
    }

    let layout: StoreLayout
    let manifests: ManifestStore
    let repositories: RepositoryStore

    func plan(_ limits: [GarbageCollector.MirrorLimit], history: PullHistory, now: Int, gracePeriod: Int) throws(StorageError) -> Plan {
        var plan = Plan()
        let catalog = try repositories.catalog()
        for limit in limits where limit.maxAge != nil || limit.maxBytes != nil {
            let prefix = limit.namespace + "/"
            var units: [Unit] = []
            for repository in catalog where repository.value.hasPrefix(prefix) {
                units += try self.units(of: repository, history: history)
            }
            var evicted: Set<Int> = []
            if let maxAge = limit.maxAge {
                for (position, unit) in units.enumerated() where now - unit.lastUsed >= maxAge && now - unit.stored >= gracePeriod {
                    evicted.insert(position)
                    plan.evictions[unit.repository, default: [:]][unit.digest] =
                        "mirror \(limit.namespace): not pulled for \(Quantities.roughly(seconds: now - unit.lastUsed)) (max_age \(Quantities.describe(seconds: maxAge)))"
                }
            }
            guard let maxBytes = limit.maxBytes else { continue }
            var sizes: [Digest: UInt64] = [:]
            var references: [Digest: Int] = [:]
            for (position, unit) in units.enumerated() where !evicted.contains(position) {
                for blob in unit.reach {
                    references[blob, default: 0] += 1
                    if sizes[blob] == nil { sizes[blob] = FileSystem.status(layout.blobFile(unit.repository, blob))?.size ?? 0 }
                }
            }
            var usage = references.keys.reduce(UInt64(0)) { $0 + (sizes[$1] ?? 0) }
            let order = units.indices.filter { !evicted.contains($0) }.sorted { left, right in
                let a = units[left], b = units[right]
                return (a.lastUsed, a.repository, a.digest) < (b.lastUsed, b.repository, b.digest)
            }
            for position in order where usage > maxBytes {
                let unit = units[position]
                guard now - unit.stored >= gracePeriod else { continue }
                let before = usage
                for blob in unit.reach {
                    guard let count = references[blob] else { continue }
                    if count <= 1 {
                        references[blob] = nil
                        usage -= min(usage, sizes[blob] ?? 0)
                    } else {
                        references[blob] = count - 1
                    }
                }
                plan.evictions[unit.repository, default: [:]][unit.digest] =
                    "mirror \(limit.namespace): least recently pulled (\(Quantities.roughly(seconds: now - unit.lastUsed)) ago) while the mirror held \(before) bytes (max_bytes \(maxBytes))"
            }
        }
        return plan
    }

    /// Every manifest listed in the repository's index, with what it reaches there.
    private func units(of repository: RepositoryName, history: PullHistory) throws(StorageError) -> [Unit] {
        let index = try manifests.readIndex(repository)
        var seen: Set<Digest> = []
        var units: [Unit] = []
        for descriptor in index.manifests {
            guard let digest = Digest(descriptor.digest), seen.insert(digest).inserted,
                  let status = FileSystem.status(layout.blobFile(repository, digest)) else { continue }
            let lastUsed = max(status.lastChange, history.lastPulled(digest, in: repository) ?? 0)
            units.append(Unit(repository: repository, digest: digest, lastUsed: lastUsed, stored: status.lastChange,
                              reach: try reach(of: digest, in: repository)))
        }
        return units
    }

    /// The manifest and the blobs and children it names that the repository holds.
    private func reach(of root: Digest, in repository: RepositoryName) throws(StorageError) -> Set<Digest> {
        var reached: Set<Digest> = []
        var queue = [root]
        while let digest = queue.popLast() {
            guard reached.insert(digest).inserted else { continue }
            guard let body = try FileSystem.readFile(layout.blobFile(repository, digest), limit: ManifestDocument.maximumSize),
                  let document = try? ManifestDocument(body: body, contentType: nil) else { continue }
            for blob in document.blobs where FileSystem.exists(layout.blobFile(repository, blob.digest)) { reached.insert(blob.digest) }
            queue += document.children.map(\.digest).filter { FileSystem.exists(layout.blobFile(repository, $0)) }
        }
        return reached.filter { FileSystem.exists(layout.blobFile(repository, $0)) }
    }
}
