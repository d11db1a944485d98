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
