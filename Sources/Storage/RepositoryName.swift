/// A repository name that follows the distribution grammar: path components of
/// `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*` joined by `/`, at most 255 characters.
///
/// Only a validated name can be built, so no unvalidated string ever becomes a path.
public struct RepositoryName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public static let maximumLength = 255

    /// The name as written, e.g. `team/app/api`.
    public let value: String
    /// The name split at `/`.
    public var components: [Substring] { value.split(separator: "/") }

    /// Returns nil when `value` breaks the grammar.
    public init?(_ value: String) {
        guard !value.isEmpty, value.utf8.count <= Self.maximumLength else { return nil }
        for component in value.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            guard Self.isValidComponent(Substring(component)) else { return nil }
        }
        self.value = value
    }

    public var description: String { value }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }

    /// The names of the enclosing repositories that could exist, shortest first
    /// (`a`, `a/b` for `a/b/c`).
    public var ancestors: [RepositoryName] {
        let parts = components
        guard parts.count > 1 else { return [] }
        return (1..<parts.count).compactMap { RepositoryName(parts[0..<$0].joined(separator: "/")) }
    }

    static func isValidComponent<S: StringProtocol>(_ component: S) -> Bool {
        let bytes = component.utf8
        guard let first = bytes.first, isAlphanumeric(first) else { return false }
        var previous = first
        var separatorRun = 0
        for byte in bytes.dropFirst() {
            if isAlphanumeric(byte) {
                separatorRun = 0
            } else {
                // A separator run: ".", "_", "__", or one or more "-".
                separatorRun += 1
                switch byte {
                case UInt8(ascii: "."):
                    guard separatorRun == 1 else { return false }
                case UInt8(ascii: "_"):
                    guard separatorRun == 1 || (separatorRun == 2 && previous == UInt8(ascii: "_")) else { return false }
                case UInt8(ascii: "-"):
                    guard separatorRun == 1 || previous == UInt8(ascii: "-") else { return false }
                default:
                    return false
                }
            }
            previous = byte
        }
        return separatorRun == 0
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
