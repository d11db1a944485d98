/// A retention policy file (`retention = FILE`): one rule per line, a repository pattern
/// (as in the access policy: `*` one component, `**` any number) followed by what to keep:
///
/// ```
/// # repositories   what to keep
/// release/**       keep-tags=v*                     # every tag matching v*, for good
/// team/**          keep-last=10 keep-pulled=30d untagged=7d
/// **               keep-pushed=90d untagged=14d
/// ```
/// - `keep-tags=P[,P…]`: tags matching a glob (`*` any run of characters);
/// - `keep-last=N`: the N most recently pushed tagged manifests;
/// - `keep-pushed=PERIOD`, `keep-pulled=PERIOD`: pushed, or pulled, within the period
///   (`30d`, `12h`, `2w`, seconds);
/// - `untagged=PERIOD`: untagged manifests pushed longer ago than that go (unless pulled
///   within `keep-pulled`); without it untagged manifests are kept.
///
/// A repository takes the first rule whose pattern matches it; a repository no rule
/// matches is left alone, as are tagged manifests under a rule with no `keep-…` (it only
/// cleans untagged ones). Referrers and index children are decided by what they belong to
/// (`Retention`).
public struct RetentionPolicy: Sendable, Equatable {
    public struct Rule: Sendable, Equatable, CustomStringConvertible {
        /// The line of the file it was read from.
        public let line: Int
        public let repositories: RepositoryPattern
        public var keepTags: [String] = []
        public var keepLast: Int?
        public var keepPushed: Int?
        public var keepPulled: Int?
        public var untaggedAge: Int?

        init(line: Int, repositories: RepositoryPattern) {
            self.line = line
            self.repositories = repositories
        }

        /// True when the rule says anything about tagged manifests.
        public var judgesTagged: Bool { !keepTags.isEmpty || keepLast != nil || keepPushed != nil || keepPulled != nil }

        /// The rule as the file writes it, with its line: `line 3: team/** keep-last=10`.
        public var description: String {
            var fields = [repositories.text]
            if !keepTags.isEmpty { fields.append("keep-tags=\(keepTags.joined(separator: ","))") }
            if let keepLast { fields.append("keep-last=\(keepLast)") }
            if let keepPushed { fields.append("keep-pushed=\(Quantities.describe(seconds: keepPushed))") }
            if let keepPulled { fields.append("keep-pulled=\(Quantities.describe(seconds: keepPulled))") }
            if let untaggedAge { fields.append("untagged=\(Quantities.describe(seconds: untaggedAge))") }
            return "line \(line): \(fields.joined(separator: " "))"
        }

        public func keepsTag(_ tag: String) -> Bool {
            keepTags.contains { RepositoryPattern.glob(Substring($0), Substring(tag)) }
        }
    }

    /// A line that does not parse: its number and why.
    public struct Problem: Error, Equatable, CustomStringConvertible {
        public let line: Int
        public let reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    public let rules: [Rule]

    /// The rule that applies to `repository`: the first whose pattern matches.
    public func rule(for repository: RepositoryName) -> Rule? {
        rules.first { $0.repositories.matches(repository) }
    }

    /// Parses the file's text (`#` starts a comment; blank lines are skipped).
    public init(text: String) throws(Problem) {
        var rules: [Rule] = []
        // `\r\n` is one Character: split at either, or a CRLF file would be one line.
        for (offset, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let line = offset + 1
            let content = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = content.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard let first = fields.first else { continue }
            guard let pattern = RepositoryPattern(String(first)) else {
                throw Problem(line: line, reason: "\"\(first)\" is not a repository pattern")
            }
            var rule = Rule(line: line, repositories: pattern)
            guard fields.count > 1 else {
                throw Problem(line: line, reason: "a rule needs keep-tags=, keep-last=, keep-pushed=, keep-pulled= or untagged=")
            }
            for field in fields.dropFirst() {
                let parts = field.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[1].isEmpty else {
                    throw Problem(line: line, reason: "\"\(field)\" is not name=value")
                }
                let value = String(parts[1])
                func period() throws(Problem) -> Int {
                    guard let seconds = Quantities.seconds(value) else {
                        throw Problem(line: line, reason: "\(parts[0]): \"\(value)\" is not a period (seconds, or 30d, 12h, 2w)")
                    }
                    return seconds
                }
                switch parts[0] {
                case "keep-tags":
                    let patterns = value.split(separator: ",").map(String.init)
                    guard !patterns.isEmpty, patterns.allSatisfy(Self.isTagPattern) else {
                        throw Problem(line: line, reason: "keep-tags: \"\(value)\" is not a list of tag patterns (v*,release-*)")
                    }
                    rule.keepTags += patterns
                case "keep-last":
                    guard value.count <= 9, value.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let count = Int(value) else {
                        throw Problem(line: line, reason: "keep-last: \"\(value)\" is not a whole number")
                    }
                    rule.keepLast = count
                case "keep-pushed": rule.keepPushed = try period()
                case "keep-pulled": rule.keepPulled = try period()
                case "untagged": rule.untaggedAge = try period()
                default:
                    throw Problem(line: line, reason: "unknown \"\(parts[0])\" (keep-tags, keep-last, keep-pushed, keep-pulled, untagged)")
                }
            }
            rules.append(rule)
        }
        self.rules = rules
    }

    /// Tag characters and `*`: a pattern that can never match is a typo.
    private static func isTagPattern(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 128 && text.utf8.allSatisfy { byte in
            byte == UInt8(ascii: "*") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
                || (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
        }
    }
}
