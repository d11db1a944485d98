#if canImport(Glibc)
import Glibc
#endif

/// Checks the whole store: every blob hashes to its name (each inode hashed once),
/// every `index.json` parses and names manifests that are present with their size,
/// every manifest's references are in its repository. With `repair`, corrupt blobs are
/// moved to `_berth/quarantine/` (all their links removed) and index entries whose
/// manifest is gone are dropped; problems that cannot be repaired are only reported.
public struct Scrubber: Sendable {
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        public let repository: String?
        public let path: String
        public let what: String
        public let repaired: Bool

        public var description: String {
            "\(repository.map { "[\($0)] " } ?? "")\(path): \(what)\(repaired ? " (repaired)" : "")"
        }
    }

    public struct Report: Sendable {
        public var problems: [Problem] = []
        public var blobsHashed = 0
        public var bytesHashed: UInt64 = 0
        public var repositoriesChecked = 0
        /// Time per phase, in the order they ran.
        public var phases: [MaintenancePhase] = []
        public var unrepaired: Int { problems.filter { !$0.repaired }.count }
    }

    public let layout: StoreLayout
    public let repair: Bool
    /// Namespaces filled on demand (pull-through mirrors): their manifests may name blobs
    /// and children not fetched yet, which is not a problem there.
    public var onDemandNamespaces: [String] = []
    /// Called after each blob looked at: blobs hashed and bytes hashed so far.
    public var progress: (@Sendable (_ blobs: Int, _ bytes: UInt64) -> Void)?
    private let repositories: RepositoryStore
    private let manifests: ManifestStore
    private let clock: StoreClock

    /// Built by `Store.scrubber(repair:)`.
    init(store: Store, repair: Bool) {
        self.layout = store.layout
        self.repair = repair
        repositories = store.repositories
        manifests = store.manifests
        clock = store.clock
    }

    private struct InodeKey: Hashable {
        let device: UInt64
        let inode: UInt64
    }

    /// What is known of blob inodes while scrubbing. Memory stays bounded by the largest
    /// repository: shared copies are streamed and only corrupt inodes are remembered
    /// store-wide; a repository link to its intact shared copy (same inode) needs no
    /// hashing, and any other inode's verdict is kept for one repository only.
    private struct Verdicts {
        var corrupt: Set<InodeKey> = []
        var repository: [InodeKey: Bool] = [:]
        /// When the shared pass began: a shared copy changed since was not hashed by it.
        /// On the store's clock (`StoreClock`), as the files' times are.
        var sharedPassStarted: Int
    }

    public func run() throws(StorageError) -> Report {
        var report = Report()
        var verdicts = Verdicts(sharedPassStarted: self.clock.now())
        var clock = PhaseClock()
        for algorithm in Digest.Algorithm.allCases {
            let directory = layout.sharedBlobsDirectory(algorithm)
            try FileSystem.forEachEntry(directory) { (entry) throws(StorageError) in
                guard !entry.isDirectory else { return }
                try check(blob: "\(directory)/\(entry.name)", named: entry.name, algorithm, repository: nil,
                          verdicts: &verdicts, report: &report)
                progress?(report.blobsHashed, report.bytesHashed)
            }
        }
        clock.finish("shared-blobs")
        for repository in try repositories.catalog() {
            report.repositoriesChecked += 1
            verdicts.repository.removeAll()
            for algorithm in Digest.Algorithm.allCases {
                let directory = layout.blobsDirectory(repository, algorithm)
                try FileSystem.forEachEntry(directory) { (entry) throws(StorageError) in
                    guard !entry.isDirectory else { return }
                    try check(blob: "\(directory)/\(entry.name)", named: entry.name, algorithm, repository: repository,
                              verdicts: &verdicts, report: &report)
                    progress?(report.blobsHashed, report.bytesHashed)
                }
            }
            try repositories.withLock(repository) { () throws(StorageError) in
                try checkIndex(of: repository, report: &report)
            }
        }
        clock.finish("repositories")
        report.phases = clock.phases
        return report
    }

    private func check(blob path: String, named name: String, _ algorithm: Digest.Algorithm, repository: RepositoryName?,
                       verdicts: inout Verdicts, report: inout Report) throws(StorageError) {
        guard let digest = Digest(algorithm: algorithm, hex: name) else {
            report.problems.append(Problem(repository: repository?.value, path: path, what: "file name is not a digest", repaired: false))
            return
        }
        guard let status = FileSystem.status(path), status.isRegularFile else { return }
        let key = InodeKey(device: status.device, inode: status.inode)
        let intact: Bool
        if verdicts.corrupt.contains(key) {
            intact = false
        } else if let known = verdicts.repository[key] {
            intact = known
        } else if repository != nil, let shared = FileSystem.status(layout.sharedBlobFile(digest)),
                  shared.device == status.device, shared.inode == status.inode,
                  shared.lastChange < verdicts.sharedPassStarted {
            // The shared copy was hashed in the first pass and is not in `corrupt`.
            intact = true
        } else {
            let computed: Digest
            do { computed = try ContentHasher.digest(ofFile: path, algorithm: algorithm) } catch {
                // Removed meanwhile (gc or a delete runs alongside): nothing to check.
                if case .io(_, _, let code) = error, code == ENOENT { return }
                throw error
            }
            intact = computed == digest
            if !intact { verdicts.corrupt.insert(key) } else if repository != nil { verdicts.repository[key] = true }
            report.blobsHashed += 1
            report.bytesHashed += status.size
        }
        guard !intact else { return }
        var repaired = false
        if repair {
            try FileSystem.makeDirectories(layout.quarantineDirectory)
            _ = try FileSystem.link(path, layout.quarantineFile(digest))
            try FileSystem.remove(path)
            repaired = true
        }
        report.problems.append(Problem(repository: repository?.value, path: path,
                                       what: "content does not hash to \(digest)", repaired: repaired))
    }

    private func checkIndex(of repository: RepositoryName, report: inout Report) throws(StorageError) {
        let indexPath = layout.indexFile(repository)
        var index: ImageIndex
        do { index = try manifests.readIndex(repository) } catch {
            report.problems.append(Problem(repository: repository.value, path: indexPath, what: "\(error)", repaired: false))
            return
        }
        var dropped = false
        // Entries alike but for their tag share their checks: a manifest is read once per
        // repository, not once per tag.
        var checked: Set<String> = []
        for descriptor in index.manifests
        where checked.insert("\(descriptor.digest) \(descriptor.size) \(descriptor.mediaType)").inserted {
            guard let digest = Digest(descriptor.digest) else {
                report.problems.append(Problem(repository: repository.value, path: indexPath,
                                               what: "descriptor with invalid digest \(descriptor.digest)", repaired: false))
                continue
            }
            let blobPath = layout.blobFile(repository, digest)
            guard let size = FileSystem.regularFileSize(blobPath), size == UInt64(max(descriptor.size, 0)) else {
                if repair { index.removeManifest(digest); dropped = true }
                report.problems.append(Problem(repository: repository.value, path: blobPath,
                                               what: "manifest \(digest)\(descriptor.tag.map { " (tag \($0))" } ?? "") listed in index.json is missing or has the wrong size",
                                               repaired: repair))
                continue
            }
            guard let body = try FileSystem.readFile(blobPath, limit: ManifestDocument.maximumSize) else { continue }
            let document: ManifestDocument
            do { document = try ManifestDocument(body: body, contentType: descriptor.mediaType) } catch {
                report.problems.append(Problem(repository: repository.value, path: blobPath,
                                               what: "manifest does not validate: \(error)", repaired: false))
                continue
            }
            let onDemand = onDemandNamespaces.contains { repository.value.hasPrefix($0 + "/") }
            for reference in document.requiredBlobs + document.children
            where !onDemand && FileSystem.regularFileSize(layout.blobFile(repository, reference.digest)) == nil {
                report.problems.append(Problem(repository: repository.value, path: blobPath,
                                               what: "manifest \(digest) references \(reference.digest), which is missing",
                                               repaired: false))
            }
        }
        if dropped {
            try manifests.replaceIndexLocked(index, repository)
        }
    }
}
