/// The manifests that name a subject (the referrers API), kept on write.
public protocol ReferrerIndex: Sendable {
    /// Descriptors of the manifests in `repository` whose subject is `subject`, by digest.
    func referrers(of subject: Digest, in repository: RepositoryName) throws(StorageError) -> [Descriptor]
}
