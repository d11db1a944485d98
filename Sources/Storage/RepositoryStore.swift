#if canImport(Glibc)
import Glibc
#endif

/// Repository layouts: existence, creation (refusing names that collide with a layout's
/// own entries), the per-repository lock, and the catalog.
public struct RepositoryStore: RepositoryCatalog {
    public let layout: StoreLayout
    private let locks: LockPolicy
    private let catalogCache: CatalogCache

    /// Built by `Store`, which owns the catalog cache and the lock policy.
    init(layout: StoreLayout, locks: LockPolicy, catalogCache: CatalogCache) {
        self.layout = layout
        self.locks = locks
        self.catalogCache = catalogCache
    }

    /// A repository exists once its `oci-layout` file does (written last on creation).
    public func exists(_ name: RepositoryName) -> Bool {
        FileSystem.regularFileSize(layout.layoutFile(name)) != nil
    }

    /// Throws `nameCollision` if creating `name` would clash with an existing repository:
    /// `name` inside another repository's `blobs`, `index.json` or `oci-layout`, or an
    /// existing repository living where `name`'s own entries would go. Changes nothing.
    public func checkCreatable(_ name: RepositoryName) throws(StorageError) {
        if exists(name) { return }
        let parts = name.components
        for (depth, ancestor) in name.ancestors.enumerated() where exists(ancestor) {
            let entry = String(parts[depth + 1])
            if StoreLayout.reservedEntryNames.contains(entry) {
                throw .nameCollision(name, reason: "\"\(entry)\" is part of the OCI layout of repository \(ancestor.value)")
            }
        }
        for entry in StoreLayout.reservedEntryNames.sorted() {
            let path = "\(layout.repositoryDirectory(name))/\(entry)"
            if let nested = try firstRepository(under: path, named: "\(name.value)/\(entry)") {
                throw .nameCollision(name, reason: "repository \(nested) already uses the path where \(name.value) keeps its \(entry)")
            }
        }
    }

    /// Creates the layout of `name` if it does not exist yet: blob folders, an empty
    /// `index.json`, then `oci-layout`. Serialized store-wide so collisions are checked
    /// against a stable tree.
    public func create(_ name: RepositoryName) throws(StorageError) {
        if exists(name) { return }
        try locks.withExclusiveLock(path: layout.creationLockFile) { () throws(StorageError) in
            try createLocked(name)
        }
    }

    private func createLocked(_ name: RepositoryName) throws(StorageError) {
        if exists(name) { return }
        try checkCreatable(name)
        try FileSystem.makeDirectories(layout.temporaryDirectory)
        for algorithm in Digest.Algorithm.allCases {
            try FileSystem.makeDirectories(layout.blobsDirectory(name, algorithm))
        }
        if FileSystem.regularFileSize(layout.indexFile(name)) == nil {
            var index = ImageIndex()
            index.annotations = [ImageIndex.generationAnnotation: IndexGeneration.next(after: nil)]
            try FileSystem.writeAtomically(index.encoded(), to: layout.indexFile(name),
                                           temporaryDirectory: layout.temporaryDirectory)
        }
        let marker = Array("{\"imageLayoutVersion\":\"\(MediaType.ociLayoutVersion)\"}".utf8)
        try FileSystem.writeAtomically(marker, to: layout.layoutFile(name), temporaryDirectory: layout.temporaryDirectory)
        // After the layout is complete: a catalog cached before this sees a new stamp.
        let stamp = CatalogStamp.after(CatalogStamp.read(layout.catalogStampFile), creating: name)
        try FileSystem.writeAtomically(stamp.encoded, to: layout.catalogStampFile,
                                       temporaryDirectory: layout.temporaryDirectory)
    }

    /// Runs `body` holding the repository's exclusive lock (bounded wait).
    public func withLock<T>(_ name: RepositoryName, _ body: () throws(StorageError) -> T) throws(StorageError) -> T {
        try locks.withExclusiveLock(path: layout.repositoryLockFile(name), body)
    }

    /// Every repository in the store, sorted (from the store's `CatalogCache` while no
    /// repository was created).
    public func catalog() throws(StorageError) -> [RepositoryName] {
        try catalogCache.names(stamp: CatalogStamp.read(layout.catalogStampFile)) { () throws(StorageError) in
            var names: [RepositoryName] = []
            try collect(directory: layout.root, prefix: nil, into: &names)
            return names.sorted()
        }
    }

    private func collect(directory: String, prefix: String?, into names: inout [RepositoryName]) throws(StorageError) {
        var isRepository = false
        if let prefix, let name = RepositoryName(prefix), exists(name) {
            names.append(name)
            isRepository = true
        }
        for entry in try FileSystem.listDirectory(directory) where entry.isDirectory {
            if prefix == nil, entry.name == StoreLayout.bookkeepingDirectoryName { continue }
            if isRepository, StoreLayout.reservedEntryNames.contains(entry.name) { continue }
            guard RepositoryName.isValidComponent(entry.name) else { continue }
            let childPrefix = prefix.map { "\($0)/\(entry.name)" } ?? entry.name
            try collect(directory: "\(directory)/\(entry.name)", prefix: childPrefix, into: &names)
        }
    }

    /// The first repository found at or below `path` (depth-first), as a name.
    private func firstRepository(under path: String, named prefix: String) throws(StorageError) -> String? {
        guard FileSystem.isDirectory(path) else { return nil }
        if FileSystem.regularFileSize("\(path)/\(StoreLayout.layoutFileName)") != nil { return prefix }
        for entry in try FileSystem.listDirectory(path) where entry.isDirectory {
            if let found = try firstRepository(under: "\(path)/\(entry.name)", named: "\(prefix)/\(entry.name)") {
                return found
            }
        }
        return nil
    }
}
