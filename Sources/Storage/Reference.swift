/// What a manifest URL names: a tag or a digest.
public enum Reference: Hashable, Sendable, CustomStringConvertible {
    case tag(Tag)
    case digest(Digest)

    /// Parses a digest when the text contains `:`, a tag otherwise; nil when invalid.
    public init?(_ text: String) {
        if Digest.looksLikeDigest(text) {
            guard let digest = Digest(text) else { return nil }
            self = .digest(digest)
        } else {
            guard let tag = Tag(text) else { return nil }
            self = .tag(tag)
        }
    }

    public var description: String {
        switch self {
        case .tag(let tag): tag.value
        case .digest(let digest): digest.description
        }
    }
}
