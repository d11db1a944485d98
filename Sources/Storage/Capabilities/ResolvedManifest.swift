/// A stored manifest as the pull path needs it.
public struct ResolvedManifest: Sendable, Equatable {
    public let digest: Digest
    public let mediaType: String
    public let size: Int64

    public init(digest: Digest, mediaType: String, size: Int64) {
        self.digest = digest
        self.mediaType = mediaType
        self.size = size
    }
}
