/// Sizes and periods as operators write them in config and policy files, parsed without
/// trapping (digits only, overflow refused).
public enum Quantities {
    /// `1048576`, `512MiB`, `50GiB`, `2TB`, `10G` (binary: `K`, `KiB`, `M`, `MiB`, `G`,
    /// `GiB`, `T`, `TiB`; decimal: `KB`, `MB`, `GB`, `TB`); nil when not one of them or
    /// past 2^63 − 1.
    public static func bytes(_ text: String) -> UInt64? {
        let units: [(String, UInt64)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
            ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000),
            ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40), ("B", 1),
        ]
        return scaled(text, units: units, maximum: UInt64(Int64.max))
    }

    /// Seconds: `3600`, `90s`, `30m`, `12h`, `30d`, `2w`; nil when not one of them or past
    /// 2^31 − 1 seconds (68 years).
    public static func seconds(_ text: String) -> Int? {
        let units: [(String, UInt64)] = [("s", 1), ("m", 60), ("h", 3600), ("d", 86_400), ("w", 604_800)]
        return scaled(text, units: units, maximum: UInt64(Int32.max)).map { Int($0) }
    }

    /// A period in the shortest exact form `seconds` reads back (`30d`, `90m`, `45s`).
    public static func describe(seconds: Int) -> String {
        for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] where seconds >= size && seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }

    /// A period rounded down to its largest unit, for people (`3d`, `5h`, `40s`).
    public static func roughly(seconds: Int) -> String {
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] where seconds >= size { return "\(seconds / size)\(unit)" }
        return "\(max(seconds, 0))s"
    }

    private static func scaled(_ text: String, units: [(String, UInt64)], maximum: UInt64) -> UInt64? {
        var digits = Substring(text)
        var factor: UInt64 = 1
        for (suffix, size) in units where digits.hasSuffix(suffix) {
            digits = digits.dropLast(suffix.count)
            factor = size
            break
        }
        guard !digits.isEmpty, digits.count <= 19, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              let number = UInt64(digits) else { return nil }
        let (product, overflow) = number.multipliedReportingOverflow(by: factor)
        guard !overflow, product <= maximum else { return nil }
        return product
    }
}
