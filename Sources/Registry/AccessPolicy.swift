import Storage

/// Who may do what to which repositories, read from a policy file:
///
/// ```
/// # user        repositories   permissions
/// alice         team/**        read,write,delete
/// *             public/*       read            (* = any authenticated user)
/// anonymous     public/**      read            (no user: nginx did not authenticate)
/// @ci           ci/**          read,write      (members of group ci)
/// group  ci     bob robot-ci                   (defines group ci)
/// ```
/// Patterns are matched against the whole name: `*` stands for one path component
/// (or part of one), `**` for any number of components. A request is allowed when any
/// line for its user (or `*`, or `anonymous`) grants the permission on its repository;
/// everything else is denied. A `@name` rule applies to the members of group `name`:
/// those a `group` line lists, and those whose credential asserts the group (an external
/// token's groups claim). The user comes from the worker's authenticator, or from nginx
/// (`auth_basic`, REMOTE_USER) when the worker authenticates nobody itself.
public struct AccessPolicy: Sendable {
    public enum Permission: String, Sendable, CaseIterable {
        case read, write, delete
    }

    struct Rule: Sendable {
        let user: String
        let pattern: [Substring]
        let permissions: Set<Permission>
    }

    let rules: [Rule]
    /// Group name → its members, from `group` lines.
    let members: [String: Set<String>]

    public struct ParseError: Error, CustomStringConvertible {
        public let line: Int
        public let reason: String
        public var description: String { "policy line \(line): \(reason)" }
    }

    /// Parses the policy text (LF or CRLF lines); a bad line is an error naming the line.
    public init(text: String) throws(ParseError) {
        var rules: [Rule] = []
        var members: [String: Set<String>] = [:]
        for (offset, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.isEmpty { continue }
            if fields[0] == "group" {
                guard fields.count >= 2, !fields[1].hasPrefix("@") else {
                    throw ParseError(line: offset + 1, reason: "expected group <name> <user>...")
                }
                members[String(fields[1]), default: []].formUnion(fields.dropFirst(2).map(String.init))
                continue
            }
            guard fields.count == 3 else {
                throw ParseError(line: offset + 1, reason: "expected <user> <repository pattern> <permissions>")
            }
            var permissions: Set<Permission> = []
            for word in fields[2].split(separator: ",") {
                guard let permission = Permission(rawValue: String(word)) else {
                    throw ParseError(line: offset + 1, reason: "unknown permission \"\(word)\" (read, write, delete)")
                }
                permissions.insert(permission)
            }
            let pattern = fields[1].split(separator: "/", omittingEmptySubsequences: false)
            guard !pattern.contains(where: \.isEmpty) else {
                throw ParseError(line: offset + 1, reason: "empty component in pattern \"\(fields[1])\"")
            }
            rules.append(Rule(user: String(fields[0]), pattern: pattern, permissions: permissions))
        }
        self.rules = rules
        self.members = members
    }

    /// Every authenticated user may do everything; anonymous requests nothing. The
    /// policy of a registry with an htpasswd file and no policy file (distribution's).
    public static let authenticatedUsers: AccessPolicy = {
        guard let policy = try? AccessPolicy(text: "* ** read,write,delete") else { preconditionFailure("constant policy") }
        return policy
    }()

    /// True when `user` (nil: anonymous) holds `permission` on `repository`.
    public func allows(_ user: String?, _ permission: Permission, on repository: RepositoryName) -> Bool {
        permits(user.map { Identity(user: $0) }, permission, on: repository)
    }

    /// True when `identity` (nil: anonymous) holds `permission` on `repository` by the
    /// policy (a token's own grants are checked apart: `Identity.tokenAllows`).
    public func permits(_ identity: Identity?, _ permission: Permission, on repository: RepositoryName) -> Bool {
        let components = repository.components
        return rules.contains { rule in
            rule.permissions.contains(permission) && applies(rule, to: identity)
                && Self.matches(rule.pattern, components)
        }
    }

    private func applies(_ rule: Rule, to identity: Identity?) -> Bool {
        guard let identity, let user = identity.user else { return rule.user == "anonymous" }
        if rule.user == "*" || rule.user == user { return true }
        guard rule.user.hasPrefix("@") else { return false }
        let group = String(rule.user.dropFirst())
        return identity.groups.contains(group) || members[group]?.contains(user) == true
    }

    /// True when the policy-style `pattern` (`team/*`, `team/**`) matches `repository`.
    public static func matches(pattern: String, _ repository: RepositoryName) -> Bool {
        let parts = pattern.split(separator: "/", omittingEmptySubsequences: false)
        return matches(parts, repository.components)
    }

    private static func matches(_ pattern: [Substring], _ name: [Substring]) -> Bool {
        RepositoryPattern.matches(pattern, name)
    }
}
