/// Which repositories the store has.
public protocol RepositoryCatalog: Sendable {
    /// Every repository, sorted.
    func catalog() throws(StorageError) -> [RepositoryName]
    func exists(_ name: RepositoryName) -> Bool
}
