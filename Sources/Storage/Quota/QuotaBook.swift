/// The byte quotas of a store (`quota = <repository pattern> <size>`): which rules meter a
/// repository, the check-and-record of a blob joining them, the release of one leaving,
/// and the reconciliation of each rule's ledger with the disk.
///
/// Every change to an account happens under its lock (`StoreLayout.quotaLockFile`, an
/// flock shared by threads, processes and nodes), taken for every rule matching the
/// repository in key order, so two pushes can never both take the last room: the final
/// check of a blob and its commit into the repository are one step under those locks,
/// and a quota is never exceeded by a blob. (Earlier checks, at POST and PATCH, refuse
/// what cannot fit before its bytes are stored; they read without the lock.)
///
/// A blob is recorded before it is linked and released after it is unlinked, so a crash
/// in between counts it while it is not there: never less than the disk holds. `berth
/// scrub` and `berth gc` reconcile. Blobs that gc frees (those of deleted manifests) leave
/// the usage at that gc; a blob DELETE leaves it at once.
///
/// Repositories of `unmeteredNamespaces` (pull-through mirrors, filled by pulls) count for
/// no rule.
public final class QuotaBook: Sendable {
    public let rules: [QuotaRule]
    let layout: StoreLayout
    private let locks: LockPolicy
    private let repositories: RepositoryStore
    private let unmeteredNamespaces: [String]
    private let ledgers: [QuotaAccount: QuotaLedger]

    /// Built by `Store`. Of rules with the same pattern the last one counts.
    init(rules: [QuotaRule], unmeteredNamespaces: [String], layout: StoreLayout, locks: LockPolicy, repositories: RepositoryStore) {
        var unique: [QuotaRule] = []
        for rule in rules {
            unique.removeAll { $0.account == rule.account }
            unique.append(rule)
        }
        self.rules = unique
        self.layout = layout
        self.locks = locks
        self.repositories = repositories
        self.unmeteredNamespaces = unmeteredNamespaces
        ledgers = Dictionary(uniqueKeysWithValues: unique.map { ($0.account, QuotaLedger(account: $0.account, layout: layout)) })
    }

    struct Meter {
        let rule: QuotaRule
        let ledger: QuotaLedger
    }

    /// True when some rule meters `repository`.
    public func meters(_ repository: RepositoryName) -> Bool { !meters(of: repository).isEmpty }

    /// The rules metering `repository`, in lock order.
    func meters(of repository: RepositoryName) -> [Meter] {
        guard !isUnmetered(repository) else { return [] }
        return rules.filter { $0.repository.matches(repository) }.sorted { $0.account < $1.account }
            .compactMap { rule in ledgers[rule.account].map { Meter(rule: rule, ledger: $0) } }
    }

    private func isUnmetered(_ repository: RepositoryName) -> Bool {
        unmeteredNamespaces.contains { repository.value.hasPrefix($0 + "/") }
    }

    // MARK: Checks and changes

    /// The bytes `repository` may still take before a rule refuses (the smallest room
    /// left; rules that count `digest` already are not asked); nil when no rule meters it.
    /// Reads without the locks: a hint for refusing early, not a promise.
    func room(in repository: RepositoryName, for digest: Digest? = nil) throws(StorageError) -> (bytes: UInt64, rule: QuotaRule, used: UInt64)? {
        var smallest: (bytes: UInt64, rule: QuotaRule, used: UInt64)?
        for meter in meters(of: repository) {
            let contents = try meter.ledger.read()
            if let digest, contents.sizes[digest] != nil { continue }
            let used = contents.used
            let room = meter.rule.limit > used ? meter.rule.limit - used : 0
            if smallest.map({ room < $0.bytes }) ?? true { smallest = (room, meter.rule, used) }
        }
        return smallest
    }

    /// Refuses (`quotaExceeded`) when `bytes` more would not fit in `repository`: the
    /// early check of an upload, before its bytes are stored. A rule that counts `digest`
    /// already (when it is known) is not asked: the blob costs it nothing.
    func checkRoom(for bytes: UInt64, digest: Digest? = nil, in repository: RepositoryName) throws(StorageError) {
        for meter in meters(of: repository) {
            let contents = try meter.ledger.read()
            if let digest, contents.sizes[digest] != nil { continue }
            let (total, overflow) = contents.used.addingReportingOverflow(bytes)
            if overflow || total > meter.rule.limit {
                throw .quotaExceeded(rule: meter.rule.description, used: contents.used, adding: bytes, limit: meter.rule.limit)
            }
        }
    }

    /// Under the locks of every rule metering `repository`: refuses (`quotaExceeded`)
    /// when `digest` (`size` bytes) is new to a rule and would take it past its limit;
    /// otherwise records it where it is new and runs `commit`, which makes it the
    /// repository's. A `commit` that fails leaving the blob out takes the records back.
    func admit<T>(_ digest: Digest, size: UInt64, into repository: RepositoryName,
                  _ commit: () throws(StorageError) -> T) throws(StorageError) -> T {
        let meters = meters(of: repository)
        guard !meters.isEmpty else { return try commit() }
        return try locking(meters[...]) { () throws(StorageError) -> T in
            var joining: [Meter] = []
            for meter in meters {
                let contents = try meter.ledger.read()
                if contents.sizes[digest] != nil { continue }
                let (total, overflow) = contents.used.addingReportingOverflow(size)
                if overflow || total > meter.rule.limit {
                    throw .quotaExceeded(rule: meter.rule.description, used: contents.used, adding: size, limit: meter.rule.limit)
                }
                joining.append(meter)
            }
            for meter in joining { try meter.ledger.append([.added(digest, size)]) }
            do throws(StorageError) {
                return try commit()
            } catch {
                // Taken back only when the blob is not there: a commit that failed after
                // linking it (a refused manifest's blob stays until gc) stays counted.
                if FileSystem.regularFileSize(layout.blobFile(repository, digest)) == nil {
                    for meter in joining { try? meter.ledger.append([.removed(digest)]) }
                }
                throw error
            }
        }
    }

    /// Runs `remove` (which takes `digest` out of `repository`) under the locks of every
    /// rule metering it, then releases the blob from each rule none of whose other
    /// repositories holds it.
    func release<T>(_ digest: Digest, from repository: RepositoryName,
                    _ remove: () throws(StorageError) -> T) throws(StorageError) -> T {
        let meters = meters(of: repository)
        guard !meters.isEmpty else { return try remove() }
        return try locking(meters[...]) { () throws(StorageError) -> T in
            let result = try remove()
            let others = try repositories.catalog().filter { $0 != repository && !isUnmetered($0) }
            for meter in meters {
                guard try meter.ledger.read().sizes[digest] != nil else { continue }
                let held = others.contains { meter.rule.repository.matches($0) && FileSystem.regularFileSize(layout.blobFile($0, digest)) != nil }
                if !held { try meter.ledger.append([.removed(digest)]) }
            }
            return result
        }
    }

    private func locking<T>(_ meters: ArraySlice<Meter>, _ body: () throws(StorageError) -> T) throws(StorageError) -> T {
        guard let first = meters.first else { return try body() }
        return try locks.withExclusiveLock(path: layout.quotaLockFile(first.rule.account)) { () throws(StorageError) -> T in
            try locking(meters.dropFirst(), body)
        }
    }

    // MARK: Reports

    /// One rule's usage as its ledger has it.
    public struct Usage: Sendable, Equatable {
        public let rule: QuotaRule
        /// Bytes of the distinct blobs its repositories hold.
        public let used: UInt64
        public let blobs: Int
        /// The repositories it matches now.
        public let repositories: [RepositoryName]

        /// Used as a percentage of the limit (100 and more: full).
        public var percent: Double { rule.limit == 0 ? (used == 0 ? 0 : 100) : Double(used) / Double(rule.limit) * 100 }
    }

    /// Every rule's usage, in the order of the rules.
    public func usage() throws(StorageError) -> [Usage] {
        let catalog = try repositories.catalog().filter { !isUnmetered($0) }
        var result: [Usage] = []
        for rule in rules {
            guard let ledger = ledgers[rule.account] else { continue }
            let contents = try ledger.read()
            result.append(Usage(rule: rule, used: contents.used, blobs: contents.sizes.count,
                                repositories: catalog.filter { rule.repository.matches($0) }))
        }
        return result
    }

    /// What reconciling one rule found: its ledger's figures against the disk's.
    public struct Drift: Sendable, Equatable, CustomStringConvertible {
        public let rule: QuotaRule
        public let recorded: UInt64
        public let actual: UInt64
        /// Blobs on disk the ledger did not count, and blobs it counted that are gone.
        public let uncounted: Int
        public let gone: Int

        public var isEmpty: Bool { recorded == actual && uncounted == 0 && gone == 0 }
        public var description: String {
            "quota \(rule): recorded \(recorded) bytes, disk holds \(actual) bytes (\(uncounted) blobs uncounted, \(gone) counted but gone)"
        }
    }

    /// Recomputes every rule's usage from the blobs its repositories hold now and
    /// replaces its ledger with that, under the rule's lock (pushes into its repositories
    /// wait for the walk). Returns the figures before and after, drift or not.
    public func reconcile(progress: (Int, UInt64) -> Void = { _, _ in }) throws(StorageError) -> [Drift] {
        var drifts: [Drift] = []
        for rule in rules {
            guard let ledger = ledgers[rule.account] else { continue }
            let drift = try locks.withExclusiveLock(path: layout.quotaLockFile(rule.account)) { () throws(StorageError) -> Drift in
                let before = try ledger.read()
                var sizes: [Digest: UInt64] = [:]
                for repository in try repositories.catalog() where !isUnmetered(repository) && rule.repository.matches(repository) {
                    for algorithm in Digest.Algorithm.allCases {
                        try FileSystem.forEachEntry(layout.blobsDirectory(repository, algorithm)) { entry in
                            guard !entry.isDirectory, let digest = StoreLayout.blob(algorithm, fromFileName: entry.name),
                                  sizes[digest] == nil, let size = FileSystem.regularFileSize(layout.blobFile(repository, digest)) else { return }
                            sizes[digest] = size
                            progress(1, size)
                        }
                    }
                }
                try ledger.reset(to: sizes)
                let after = try ledger.read()
                return Drift(rule: rule, recorded: before.used, actual: after.used,
                             uncounted: sizes.keys.filter { before.sizes[$0] == nil }.count,
                             gone: before.sizes.keys.filter { sizes[$0] == nil }.count)
            }
            drifts.append(drift)
        }
        return drifts
    }
}
