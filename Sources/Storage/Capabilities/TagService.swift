/// The tags of a repository, for listings.
public protocol TagService: Sendable {
    /// Every tag, sorted; `repositoryUnknown` when there is no such repository.
    func tags(of repository: RepositoryName) throws(StorageError) -> [String]
}
