/// A tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
public struct Tag: Hashable, Sendable, Comparable, CustomStringConvertible {
    public static let maximumLength = 128
    public let value: String

    public init?(_ value: String) {
        let bytes = Array(value.utf8)
        guard let first = bytes.first, bytes.count <= Self.maximumLength,
              Self.isWordByte(first),
              bytes.allSatisfy({ Self.isWordByte($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") })
        else { return nil }
        self.value = value
    }

    public var description: String { value }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }

    private static func isWordByte(_ byte: UInt8) -> Bool {
        (65...90).contains(byte) || (97...122).contains(byte) || (48...57).contains(byte) || byte == UInt8(ascii: "_")
    }
}

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

/// The identifier of an upload session: a lowercase RFC 4122 UUID string.
public struct UploadID: Hashable, Sendable, CustomStringConvertible {
    public let value: String

    public init?(_ value: String) {
        let bytes = Array(value.utf8)
        guard bytes.count == 36 else { return nil }
        for (index, byte) in bytes.enumerated() {
            if [8, 13, 18, 23].contains(index) {
                guard byte == UInt8(ascii: "-") else { return nil }
            } else {
                guard (48...57).contains(byte) || (97...102).contains(byte) else { return nil }
            }
        }
        self.value = value
    }

    /// A new random identifier.
    public static func random() -> UploadID {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[6] = (bytes[6] & 0x0f) | 0x40
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        let chars = Array(Hex.encode(bytes))
        let text = String(chars[0..<8]) + "-" + String(chars[8..<12]) + "-" + String(chars[12..<16])
            + "-" + String(chars[16..<20]) + "-" + String(chars[20..<32])
        // The text above is always a well-formed UUID.
        return UploadID(text) ?? UploadID(unchecked: text)
    }

    private init(unchecked value: String) { self.value = value }

    public var description: String { value }
}
