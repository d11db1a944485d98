/// One write-once rule (`immutable_tags = <repository pattern> <tag pattern>`): a tag
/// matching it, once it names a manifest, names that manifest for good. Pushing the same
/// digest to it again is allowed; moving it to another manifest, deleting it, or deleting
/// its manifest by digest is refused (`StorageError.tagImmutable`).
///
/// The tag pattern is a glob over the whole tag (`v*`, `*.*.*`, `*` for every tag).
/// `ManifestStore` checks the rules inside the commit, under the repository lock,
/// against the index it is about to replace, so two racing pushes cannot both win.
public struct ImmutableTagRule: Sendable, Hashable, CustomStringConvertible {
    public let repository: RepositoryPattern
    public let tagPattern: String

    /// Parses `<repository pattern> <tag pattern>` (spaces or tabs between); nil when
    /// there are not exactly two fields, or either is not a pattern.
    public init?(_ text: String) {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard fields.count == 2, let repository = RepositoryPattern(String(fields[0])) else { return nil }
        let tag = fields[1]
        // Tag characters and `*`, nothing else: a rule that can never match is a typo.
        guard tag.utf8.allSatisfy({ $0 == UInt8(ascii: "*") || Tag(String(UnicodeScalar($0))) != nil
                                        || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }) else { return nil }
        self.repository = repository
        tagPattern = String(tag)
    }

    /// The rule as the config file writes it.
    public var description: String { "\(repository.text) \(tagPattern)" }

    public func matches(_ repositoryName: RepositoryName, _ tag: Tag) -> Bool {
        RepositoryPattern.glob(Substring(tagPattern), Substring(tag.value)) && repository.matches(repositoryName)
    }
}

extension Array where Element == ImmutableTagRule {
    /// The first rule that makes `tag` of `repository` write-once.
    func rule(for tag: Tag, in repository: RepositoryName) -> ImmutableTagRule? {
        first { $0.matches(repository, tag) }
    }
}
