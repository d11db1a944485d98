/// One byte quota (`quota = <repository pattern> <size>`): the repositories the pattern
/// matches may together hold at most `limit` bytes of distinct blobs (layers, configs and
/// manifests). A blob held by several of them (pushed twice, mounted, hard-linked) counts
/// once. Every rule matching a repository applies to a push into it.
public struct QuotaRule: Sendable, Hashable, CustomStringConvertible {
    public let repository: RepositoryPattern
    public let limit: UInt64

    public init(repository: RepositoryPattern, limit: UInt64) {
        self.repository = repository
        self.limit = limit
    }

    /// Parses `<repository pattern> <size>` (spaces or tabs between); nil when there are
    /// not exactly two fields, the pattern is empty, or the size does not parse (`ByteSize`).
    public init?(_ text: String) {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard fields.count == 2, let repository = RepositoryPattern(String(fields[0])),
              let limit = ByteSize.parse(fields[1]) else { return nil }
        self.init(repository: repository, limit: limit)
    }

    /// The rule as the config file writes it.
    public var description: String { "\(repository.text) \(ByteSize.format(limit))" }

    /// Two rules with the same pattern are one account: changing a limit keeps its usage.
    public var account: QuotaAccount { QuotaAccount(pattern: repository) }
}

/// The usage of a rule's pattern, kept under `_berth/quota/<key>/` (`StoreLayout`): the
/// key is the pattern's SHA-256, so any pattern text maps to a fixed, safe file name.
public struct QuotaAccount: Sendable, Hashable, Comparable {
    public let pattern: RepositoryPattern
    /// 32 lowercase hex characters.
    public let key: String

    init(pattern: RepositoryPattern) {
        self.pattern = pattern
        key = String(ContentHasher.digest(of: Array(pattern.text.utf8)).hex.prefix(32))
    }

    public static func < (lhs: QuotaAccount, rhs: QuotaAccount) -> Bool { lhs.key < rhs.key }
}

/// Sizes as operators write them: a whole or decimal number with an optional unit,
/// binary (`KiB`, `MiB`, `GiB`, `TiB`) or decimal (`KB`, `MB`, `GB`, `TB`; `K`, `M`, `G`,
/// `T` are binary, as in nginx), `B` or none for bytes. Case-insensitive. Never traps:
/// an overflowing or malformed size is nil.
public enum ByteSize {
    static let units: [(suffix: String, factor: UInt64)] = [
        ("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30), ("tib", 1 << 40), ("pib", 1 << 50),
        ("kb", 1_000), ("mb", 1_000_000), ("gb", 1_000_000_000), ("tb", 1_000_000_000_000), ("pb", 1_000_000_000_000_000),
        ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("t", 1 << 40), ("b", 1),
    ]

    public static func parse<S: StringProtocol>(_ text: S) -> UInt64? {
        let lowered = text.lowercased()
        var number = Substring(lowered)
        var factor: UInt64 = 1
        for unit in units where lowered.hasSuffix(unit.suffix) {
            number = lowered.dropLast(unit.suffix.count)
            factor = unit.factor
            break
        }
        let parts = number.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, !whole.isEmpty, whole.utf8.count <= 20, whole.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              let wholeValue = UInt64(whole) else { return nil }
        let (product, overflow) = wholeValue.multipliedReportingOverflow(by: factor)
        guard !overflow else { return nil }
        var result = product
        if parts.count == 2 {
            // A fraction of the unit, to the byte (rounded down): 1.5GiB, 0.25TB.
            let fraction = parts[1]
            guard !fraction.isEmpty, fraction.utf8.count <= 12, fraction.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                  let digits = UInt64(fraction) else { return nil }
            var scale: UInt64 = 1
            for _ in 0..<fraction.utf8.count { scale *= 10 }
            // factor < 2^50 and digits < 10^12 < 2^40 may still overflow: split the factor.
            let (high, low) = (factor / scale, factor % scale)
            let (part1, o1) = digits.multipliedReportingOverflow(by: high)
            let (part2, o2) = digits.multipliedReportingOverflow(by: low)
            guard !o1, !o2 else { return nil }
            let (sum, o3) = result.addingReportingOverflow(part1)
            let (total, o4) = sum.addingReportingOverflow(part2 / scale)
            guard !o3, !o4 else { return nil }
            result = total
        }
        return result
    }

    /// The shortest exact form (`50GiB`, `1500GB`, `1000001`), which parses back to `bytes`.
    public static func format(_ bytes: UInt64) -> String {
        var best = "\(bytes)"
        let units: [(String, UInt64)] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10),
                                         ("TB", 1_000_000_000_000), ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000)]
        for (suffix, factor) in units where bytes >= factor && bytes % factor == 0 {
            let text = "\(bytes / factor)\(suffix)"
            if text.count < best.count { best = text }
        }
        return best
    }

    /// A size for people, to one decimal (`1.5 GiB`, `312 B`).
    public static func human(_ bytes: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(bytes)
        var index = 0
        while value >= 1024, index < units.count - 1 {
            value /= 1024
            index += 1
        }
        if index == 0 { return "\(bytes) B" }
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10) \(units[index])"
    }
}
