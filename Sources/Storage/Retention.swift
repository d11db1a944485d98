import Locks

/// Applies a `RetentionPolicy` to the store's hosted repositories: per repository, the
/// manifests its rule does not keep are deleted as a `DELETE …/manifests/<digest>` would
/// delete them (tags, referrers entry, one event each in the commit), their bytes then
/// freed by gc. Referrers (a manifest whose `subject` is listed) and untagged index
/// children live and die with what they belong to: kept when it is kept, deleted with it.
/// Nothing changed within the grace period is deleted, nor a manifest with a write-once tag.
///
/// The decision for a repository is taken under its lock, on its index as it is then, in
/// the same commit that deletes (`ManifestStore.deleteManifests`); a dry run takes the
/// same decision on the index as it is read, so both list the same manifests.
public struct Retention: Sendable {
    public struct Options: Sendable {
        public var gracePeriod = Defaults.gcGracePeriod
        public var dryRun = false
        /// Mirrored namespaces: never judged (mirrors are kept in bounds by eviction).
        public var excludedNamespaces: [String] = []
        /// Called after each repository with the manifests judged so far and their bytes.
        public var progress: (@Sendable (_ repositories: Int, _ ofRepositories: Int) -> Void)?

        public init() {}
    }

    /// What was decided about one manifest.
    public struct Verdict: Sendable, Equatable {
        public let repository: RepositoryName
        public let digest: Digest
        public let tags: [String]
        public let deleted: Bool
        /// The rule (`line N: …`) and why.
        public let rule: String
        public let reason: String
    }

    public struct Report: Sendable {
        public var verdicts: [Verdict] = []
        public var repositoriesJudged = 0
        public var deletions: [Verdict] { verdicts.filter(\.deleted) }
    }

    let store: Store
    let policy: RetentionPolicy
    public let options: Options

    public init(store: Store, policy: RetentionPolicy, options: Options = Options()) {
        self.store = store
        self.policy = policy
        self.options = options
    }

    /// Runs once over every hosted repository a rule matches; `now` defaults to the store's clock.
    public func run(now given: Int? = nil) throws(StorageError) -> Report {
        let now = given ?? store.clock.now()
        let history = try PullHistory.load(store.layout)
        var report = Report()
        let judged = try store.repositories.catalog().filter { repository in
            !options.excludedNamespaces.contains { repository.value.hasPrefix($0 + "/") } && policy.rule(for: repository) != nil
        }
        for (position, repository) in judged.enumerated() {
            guard let rule = policy.rule(for: repository) else { continue }
            let judge = Judge(layout: store.layout, repository: repository, rule: rule, history: history, now: now,
                              gracePeriod: options.gracePeriod, immutableTags: store.options.immutableTags)
            let seen = try judge.verdicts(store.manifests.readIndex(repository).manifests)
            if options.dryRun || !seen.contains(where: \.deleted) {
                report.verdicts += seen
            } else {
                let decided = Locked<[Verdict]>([])
                let deleted = Set(try store.manifests.deleteManifests(in: repository) { (descriptors) throws(StorageError) -> [Digest] in
                    let verdicts = try judge.verdicts(descriptors)
                    decided.withLock { $0 = verdicts }
                    return verdicts.filter(\.deleted).map(\.digest)
                })
                report.verdicts += decided.withLock { $0 }.filter { !$0.deleted || deleted.contains($0.digest) }
            }
            report.repositoriesJudged += 1
            options.progress?(position + 1, judged.count)
        }
        return report
    }

    /// The decision for one repository's index entries.
    struct Judge: Sendable {
        let layout: StoreLayout
        let repository: RepositoryName
        let rule: RetentionPolicy.Rule
        let history: PullHistory
        let now: Int
        let gracePeriod: Int
        let immutableTags: [ImmutableTagRule]

        private struct Entry {
            let digest: Digest
            var tags: [String] = []
            var pushed = 0
            var pulled: Int?
            var children: [Digest] = []
            var subject: Digest?
        }

        func verdicts(_ descriptors: [Descriptor]) throws(StorageError) -> [Verdict] {
            var entries: [Digest: Entry] = [:]
            var order: [Digest] = []
            for descriptor in descriptors {
                guard let digest = Digest(descriptor.digest) else { continue }
                if entries[digest] == nil {
                    order.append(digest)
                    entries[digest] = try entry(digest)
                }
                if let tag = descriptor.tag { entries[digest]?.tags.append(tag) }
            }
            var parents: [Digest: [Digest]] = [:]
            var referrers: [Digest: [Digest]] = [:]
            for digest in order {
                guard let entry = entries[digest] else { continue }
                for child in entry.children where entries[child] != nil { parents[child, default: []].append(digest) }
                if let subject = entry.subject, entries[subject] != nil { referrers[subject, default: []].append(digest) }
            }
            func isDependent(_ entry: Entry) -> Bool {
                entry.tags.isEmpty && (parents[entry.digest] != nil || entry.subject.map { entries[$0] != nil } == true)
            }
            // The N most recently pushed tagged manifests (dependents do not count).
            let tagged = order.compactMap { entries[$0] }.filter { !$0.tags.isEmpty }
                .sorted { ($0.pushed, $1.digest) > ($1.pushed, $0.digest) }
            var rank: [Digest: Int] = [:]
            for (position, entry) in tagged.enumerated() { rank[entry.digest] = position }

            var keptBecause: [Digest: String] = [:]
            var goesBecause: [Digest: String] = [:]
            for digest in order {
                guard let entry = entries[digest] else { continue }
                if let reason = ownKeep(entry, rank: rank[digest], dependent: isDependent(entry)) {
                    keptBecause[digest] = reason
                } else if !isDependent(entry) {
                    goesBecause[digest] = ownDeletion(entry, rank: rank[digest])
                }
            }
            // What kept manifests reach stays: their children and referrers, transitively.
            var queue = Array(keptBecause.keys)
            var kept = Set(queue)
            while let digest = queue.popLast() {
                let reached = (entries[digest]?.children.filter { entries[$0] != nil } ?? []) + (referrers[digest] ?? [])
                for next in reached where kept.insert(next).inserted {
                    if keptBecause[next] == nil {
                        keptBecause[next] = entries[next]?.subject == digest ? "referrer of \(digest), which is kept" : "child of index \(digest), which is kept"
                    }
                    queue.append(next)
                }
            }
            return order.compactMap { digest -> Verdict? in
                guard let entry = entries[digest] else { return nil }
                let tags = entry.tags.sorted()
                if kept.contains(digest) {
                    return Verdict(repository: repository, digest: digest, tags: tags, deleted: false, rule: rule.description,
                                   reason: keptBecause[digest] ?? "kept")
                }
                let reason = goesBecause[digest] ?? dependentDeletion(entry, parents: parents[digest] ?? [])
                return Verdict(repository: repository, digest: digest, tags: tags, deleted: true, rule: rule.description, reason: reason)
            }
        }

        private func entry(_ digest: Digest) throws(StorageError) -> Entry {
            var entry = Entry(digest: digest)
            let stored = FileSystem.status(layout.blobFile(repository, digest))?.lastChange ?? now
            entry.pushed = max(stored, history.lastPushed(digest, in: repository) ?? 0)
            entry.pulled = history.lastPulled(digest, in: repository)
            if let body = try FileSystem.readFile(layout.blobFile(repository, digest), limit: ManifestDocument.maximumSize),
               let document = try? ManifestDocument(body: body, contentType: nil) {
                entry.children = document.children.map(\.digest)
                entry.subject = document.subject?.digest
            }
            return entry
        }

        /// Why the manifest is kept on its own account; nil: it is not.
        private func ownKeep(_ entry: Entry, rank: Int?, dependent: Bool) -> String? {
            if now - entry.pushed < gracePeriod { return "pushed \(ago(entry.pushed)), within the grace period" }
            for text in entry.tags {
                if let tag = Tag(text), let immutable = immutableTags.rule(for: tag, in: repository) {
                    return "tag \(text) is write-once (immutable_tags = \(immutable))"
                }
            }
            if dependent { return nil }
            if let keepPulled = rule.keepPulled, let pulled = entry.pulled, now - pulled < keepPulled {
                return "pulled \(ago(pulled)) (keep-pulled=\(Quantities.describe(seconds: keepPulled)))"
            }
            if entry.tags.isEmpty {
                guard let age = rule.untaggedAge else { return "untagged, and the rule has no untagged=" }
                return now - entry.pushed < age ? "untagged, pushed \(ago(entry.pushed)) (untagged=\(Quantities.describe(seconds: age)))" : nil
            }
            guard rule.judgesTagged else { return "tagged, and the rule keeps every tagged manifest (no keep-…)" }
            if let tag = entry.tags.sorted().first(where: rule.keepsTag) { return "tag \(tag) matches keep-tags" }
            if let keepLast = rule.keepLast, let rank, rank < keepLast {
                return "among the \(keepLast) most recently pushed (#\(rank + 1))"
            }
            if let keepPushed = rule.keepPushed, now - entry.pushed < keepPushed {
                return "pushed \(ago(entry.pushed)) (keep-pushed=\(Quantities.describe(seconds: keepPushed)))"
            }
            return nil
        }

        /// Why a manifest that is not kept goes.
        private func ownDeletion(_ entry: Entry, rank: Int?) -> String {
            if entry.tags.isEmpty {
                return "untagged, pushed \(ago(entry.pushed)) (untagged=\(rule.untaggedAge.map { Quantities.describe(seconds: $0) } ?? "–"))"
                    + (rule.keepPulled != nil ? ", \(pulledText(entry))" : "")
            }
            var parts: [String] = []
            if !rule.keepTags.isEmpty { parts.append("no tag matches keep-tags") }
            if let keepLast = rule.keepLast { parts.append("not among the \(keepLast) most recently pushed (#\((rank ?? 0) + 1))") }
            if rule.keepPushed != nil { parts.append("pushed \(ago(entry.pushed))") }
            if rule.keepPulled != nil { parts.append(pulledText(entry)) }
            return parts.joined(separator: ", ")
        }

        private func dependentDeletion(_ entry: Entry, parents: [Digest]) -> String {
            if let subject = entry.subject, parents.isEmpty { return "referrer of \(subject), which goes" }
            return "child of index \(parents.sorted().map(\.description).joined(separator: ", ")), which goes"
        }

        private func pulledText(_ entry: Entry) -> String {
            entry.pulled.map { "last pulled \(ago($0))" } ?? "never pulled since records began"
        }

        private func ago(_ time: Int) -> String {
            now - time <= 0 ? "just now" : "\(Quantities.roughly(seconds: now - time)) ago"
        }
    }
}
