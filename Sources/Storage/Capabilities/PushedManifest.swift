/// What a successful push stored.
public struct PushedManifest: Sendable {
    public let digest: Digest
    public let document: ManifestDocument
    /// Every tag now naming the manifest through this push (the reference's, then the others).
    public let tags: [Tag]
    /// The tags of `tags` that named another manifest before this push, with that manifest.
    public let moved: [Tag: String]

    public init(digest: Digest, document: ManifestDocument, tags: [Tag], moved: [Tag: String] = [:]) {
        self.digest = digest
        self.document = document
        self.tags = tags
        self.moved = moved
    }
}
