/// A content digest `<algorithm>:<hex>` with a supported algorithm and the exact
/// number of lowercase hex characters it needs.
///
/// Only a validated digest can be built, so its `hex` is always safe in a path.
public struct Digest: Hashable, Sendable, Comparable, CustomStringConvertible {
    public enum Algorithm: String, Sendable, CaseIterable {
        case sha256
        case sha512

        /// Hex characters of an encoded digest of this algorithm.
        public var hexLength: Int {
            switch self {
            case .sha256: 64
            case .sha512: 128
            }
        }
    }

    public let algorithm: Algorithm
    public let hex: String

    /// Parses `sha256:<64 hex>` or `sha512:<128 hex>`; nil for anything else.
    public init?(_ text: String) {
        guard let colon = text.utf8.firstIndex(of: UInt8(ascii: ":")),
              let algorithm = Algorithm(rawValue: String(Substring(text.utf8[..<colon]))) else { return nil }
        self.init(algorithm: algorithm, hex: String(Substring(text.utf8[text.utf8.index(after: colon)...])))
    }

    public init?(algorithm: Algorithm, hex: String) {
        guard hex.utf8.count == algorithm.hexLength,
              hex.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else { return nil }
        self.algorithm = algorithm
        self.hex = hex
    }

    /// True when `text` looks like a digest of some algorithm (contains `:`), even an
    /// unsupported or malformed one; used to tell a tag from a bad digest.
    public static func looksLikeDigest(_ text: String) -> Bool { text.utf8.contains(UInt8(ascii: ":")) }

    public var description: String { "\(algorithm.rawValue):\(hex)" }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.description < rhs.description }
}
