/// The name of a robot token or of a signing key (its `kid`): `[a-z0-9][a-z0-9._-]{0,63}`,
/// so it is always a single, safe file name component.
public struct AuthName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let value: String

    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, bytes.count <= 64, Self.isAlphanumeric(first),
              bytes.allSatisfy({ Self.isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") })
        else { return nil }
        value = text
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    public var description: String { value }
    public static func < (lhs: AuthName, rhs: AuthName) -> Bool { lhs.value < rhs.value }
}
