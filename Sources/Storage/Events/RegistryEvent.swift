/// One change to a repository as a CloudEvents 1.0 event in the JSON format (structured
/// mode): what the outbox stores and what webhooks receive, byte for byte.
///
/// Types: `org.berth.manifest.pushed` (a manifest stored, with every tag the push set),
/// `org.berth.tag.moved` (a tag that named another manifest before the push),
/// `org.berth.tag.deleted` and `org.berth.manifest.deleted` (by digest, with the tags that
/// went with it), `org.berth.mirror.fetched` (a manifest or blob a pull-through mirror
/// newly stored, with the tag it was fetched by). `id` is the generation of the `index.json` commit and the event's place
/// in it, so it is unique and a receiver can drop a redelivered event by it.
public struct RegistryEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case manifestPushed = "org.berth.manifest.pushed"
        case tagMoved = "org.berth.tag.moved"
        case tagDeleted = "org.berth.tag.deleted"
        case manifestDeleted = "org.berth.manifest.deleted"
        case mirrorFetched = "org.berth.mirror.fetched"
    }

    /// What changed, in the event's `data`.
    public struct Payload: Codable, Sendable, Equatable {
        public var repository: String
        public var digest: String
        public var mediaType: String?
        public var size: Int64?
        /// The tags a push set, or those a delete by digest removed.
        public var tags: [String]?
        /// The tag moved or deleted.
        public var tag: String?
        /// The manifest a moved tag named before.
        public var previousDigest: String?
    }

    public var specversion = "1.0"
    public var id: String
    /// `/v2/<repository>`: the repository within this registry.
    public var source: String
    public var type: String
    /// The tag, or the digest when no tag is concerned.
    public var subject: String?
    /// RFC 3339, UTC, of the commit.
    public var time: String
    public var datacontenttype = "application/json"
    public var data: Payload

    public var kind: Kind? { Kind(rawValue: type) }

    /// The media type of one event in the JSON format (HTTP structured mode).
    public static let mediaType = "application/cloudevents+json; charset=utf-8"

    /// The event as sent: canonical JSON.
    public var encoded: [UInt8] { JSONText.encode(self) }
}

/// A change as a commit records it, before it has an id and a time.
struct IndexEvent: Sendable {
    let kind: RegistryEvent.Kind
    let digest: String
    var mediaType: String?
    var size: Int64?
    var tags: [String]?
    var tag: String?
    var previousDigest: String?

    init(_ kind: RegistryEvent.Kind, digest: String, mediaType: String? = nil, size: Int64? = nil, tags: [String]? = nil,
         tag: String? = nil, previousDigest: String? = nil) {
        self.kind = kind
        self.digest = digest
        self.mediaType = mediaType
        self.size = size
        self.tags = tags
        self.tag = tag
        self.previousDigest = previousDigest
    }

    /// The CloudEvent of this change, the `position`-th of the commit `generation`.
    func event(repository: RepositoryName, generation: String, position: Int, time: String) -> RegistryEvent {
        RegistryEvent(id: "\(generation)-\(position)", source: "/v2/\(repository.value)", type: kind.rawValue,
                      subject: tag ?? digest, time: time,
                      data: .init(repository: repository.value, digest: digest, mediaType: mediaType, size: size, tags: tags,
                                  tag: tag, previousDigest: previousDigest))
    }
}

/// The name of one commit's events in a queue: the commit's generation (`<counter>-<random>`)
/// with the counter zero-padded, so names sort in commit order within a repository.
public struct EventBatchName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let counter: UInt64
    /// 16 lowercase hex digits.
    public let random: String

    /// The name of the commit that writes `generation` (`IndexGeneration`'s format).
    public init?(generation: String) {
        let parts = generation.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let counter = UInt64(parts[0]), parts[1].count == 16,
              parts[1].utf8.allSatisfy({ Hex.value($0) != nil && !(65...70).contains($0) }) else { return nil }
        self.counter = counter
        random = String(parts[1])
    }

    /// The inverse of `fileName`: nil for any other file (a temp file, a stray).
    public init?(fileName: String) {
        guard fileName.hasSuffix(".json") else { return nil }
        let stem = fileName.dropLast(5)
        guard stem.count == 37, stem.utf8.prefix(20).allSatisfy({ (48...57).contains($0) }) else { return nil }
        self.init(generation: String(stem))
    }

    public var generation: String { "\(counter)-\(random)" }
    public var fileName: String {
        let digits = String(counter)
        return "\(String(repeating: "0", count: 20 - digits.count))\(digits)-\(random).json"
    }
    public var description: String { fileName }
    public static func < (lhs: Self, rhs: Self) -> Bool { (lhs.counter, lhs.random) < (rhs.counter, rhs.random) }
}
