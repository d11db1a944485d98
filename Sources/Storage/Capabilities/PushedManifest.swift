/// What a successful push stored.
public struct PushedManifest: Sendable {
    public let digest: Digest
    public let document: ManifestDocument
    /// Every tag now naming the manifest through this push (the reference's, then the others).
    public let tags: [Tag]

    public init(digest: Digest, document: ManifestDocument, tags: [Tag]) {
        self.digest = digest
        self.document = document
        self.tags = tags
    }
}
