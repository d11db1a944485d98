/// A pattern over repository names, as the access policy, write-once tags and other
/// per-repository rules write them: matched against the whole name, `*` stands for one
/// path component (or part of one), `**` for any number of components (`team/**`,
/// `*/app`, `release-*`).
public struct RepositoryPattern: Sendable, Hashable, CustomStringConvertible {
    public let text: String
    private let components: [Substring]

    /// Nil for an empty pattern or one with an empty component (`team//app`, `team/`).
    public init?(_ text: String) {
        let components = text.split(separator: "/", omittingEmptySubsequences: false)
        guard !text.isEmpty, !components.contains(where: \.isEmpty) else { return nil }
        self.text = text
        self.components = components
    }

    public var description: String { text }

    public static func == (lhs: RepositoryPattern, rhs: RepositoryPattern) -> Bool { lhs.text == rhs.text }
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }

    /// True when the pattern matches the whole of `repository`.
    public func matches(_ repository: RepositoryName) -> Bool {
        Self.matches(components, repository.components)
    }

    /// Whether `pattern` matches the whole of `name`, in O(pattern × name) component
    /// comparisons: `table[j]` says whether the pattern's remaining components match
    /// `name[j...]`. (Plain backtracking took minutes for `**/**/**/**/z` against a
    /// 120-component name, a name any client can send.)
    public static func matches(_ pattern: [Substring], _ name: [Substring]) -> Bool {
        var table = [Bool](repeating: false, count: name.count + 1)
        table[name.count] = true
        for component in pattern.reversed() {
            var current = [Bool](repeating: false, count: name.count + 1)
            for position in stride(from: name.count, through: 0, by: -1) {
                if component == "**" {
                    // Any number of components, including none.
                    current[position] = table[position] || (position < name.count && current[position + 1])
                } else {
                    current[position] = position < name.count && table[position + 1] && glob(component, name[position])
                }
            }
            table = current
        }
        return table[0]
    }

    /// `*` within `text` matches any run of characters. Greedy, going back only to the
    /// last `*`: linear for ordinary patterns, never exponential.
    public static func glob(_ pattern: Substring, _ text: Substring) -> Bool {
        let pattern = Array(pattern.utf8), text = Array(text.utf8)
        let star = UInt8(ascii: "*")
        var p = 0, t = 0
        var lastStar: Int?, resume = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == star {
                lastStar = p
                resume = t
                p += 1
            } else if p < pattern.count, pattern[p] == text[t] {
                p += 1
                t += 1
            } else if let lastStar {
                // Let the last `*` take one more character and try again from there.
                p = lastStar + 1
                resume += 1
                t = resume
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == star { p += 1 }
        return p == pattern.count
    }
}
