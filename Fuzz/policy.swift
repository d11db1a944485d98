// Fuzz target: the policy-file parsers (AccessPolicy and its matcher, RetentionPolicy). The input is
// policy text, then a NUL, then a user and repository names to check (one per line).
// Findings: a trap; a parse error naming a line the text does not have; a hang in the
// matcher (libFuzzer's -timeout); a rule granting everything that does not; an answer
// other than the plain backtracking matcher's (small policies).
@testable import Registry
import Storage

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPolicy(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let bytes = input.rest()
    let split = bytes.firstIndex(of: 0) ?? bytes.endIndex
    let text = String(decoding: bytes[..<split], as: UTF8.self)
    let queries = split < bytes.endIndex ? String(decoding: bytes[(split + 1)...], as: UTF8.self) : ""
    let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).count

    // The same text as a retention policy: an error names a line the text has, and each
    // rule reads back from its own description.
    do {
        for rule in try RetentionPolicy(text: text).rules {
            let written = String(rule.description.drop { $0 != ":" }.dropFirst(2))
            guard let again = try? RetentionPolicy(text: written).rules.first, again.repositories == rule.repositories,
                  again.keepTags == rule.keepTags, again.keepLast == rule.keepLast, again.keepPushed == rule.keepPushed,
                  again.keepPulled == rule.keepPulled, again.untaggedAge == rule.untaggedAge else {
                Finding.report("retention rule \(rule) does not read back")
                continue
            }
        }
    } catch {
        if !(1...lines).contains(error.line) { Finding.report("retention: \(error) but the text has \(lines) lines") }
    }

    let policy: AccessPolicy
    do {
        policy = try AccessPolicy(text: text)
    } catch {
        if !(1...lines).contains(error.line) { Finding.report("\(error) but the text has \(lines) lines") }
        return 0
    }
    var words = queries.split(separator: "\n").map(String.init)
    let user: String? = words.isEmpty ? nil : words.removeFirst()
    let names = words.compactMap(RepositoryName.init) + ["team/app", "a", "a/b/c/d/e/f"].compactMap(RepositoryName.init)
    let everything = try? AccessPolicy(text: text + "\n" + (user.map { $0.isEmpty || $0.contains(where: \.isWhitespace) || $0.contains("#") ? "anonymous" : $0 } ?? "anonymous") + " ** read,write,delete")
    let crlf: AccessPolicy
    do { crlf = try AccessPolicy(text: withCRLF(text)) } catch { Finding.report("parses, but not with CRLF lines: \(error)") }
    let small = policy.rules.allSatisfy { $0.pattern.count <= 8 && $0.pattern.joined().filter { $0 == "*" }.count <= 6 }
    for name in names {
        for permission in AccessPolicy.Permission.allCases {
            for who in [user, nil] {
                let allowed = policy.allows(who, permission, on: name)
                if crlf.allows(who, permission, on: name) != allowed { Finding.report("CRLF lines change \(permission) on \(name)") }
                // Against the plain backtracking matcher, where it is quick enough.
                if small, name.components.count <= 12, allowed != referenceAllows(policy, who, permission, name) {
                    Finding.report("\(who ?? "anonymous") \(permission) \(name): the matcher says \(allowed), the reference the opposite")
                }
            }
            // (`group` starts a group line, `@name` names a group: neither is a user's rule.)
            if let everything, let user, !user.isEmpty, !user.contains(where: \.isWhitespace), !user.contains("#"),
               user != "group", !user.hasPrefix("@"), !everything.allows(user, permission, on: name) {
                Finding.report("\(user) ** read,write,delete does not grant \(permission) on \(name)")
            }
        }
    }
    return 0
}

/// The matcher as first written (backtracking, exponential in the worst case): the
/// definition the fast one must agree with.
private func referenceAllows(_ policy: AccessPolicy, _ user: String?, _ permission: AccessPolicy.Permission,
                             _ name: RepositoryName) -> Bool {
    func matches(_ pattern: ArraySlice<Substring>, _ name: ArraySlice<Substring>) -> Bool {
        guard let head = pattern.first else { return name.isEmpty }
        if head == "**" { return (name.startIndex...name.endIndex).contains { matches(pattern.dropFirst(), name[$0...]) } }
        guard let component = name.first, glob(head, component) else { return false }
        return matches(pattern.dropFirst(), name.dropFirst())
    }
    func glob(_ pattern: Substring, _ text: Substring) -> Bool {
        guard let star = pattern.firstIndex(of: "*") else { return pattern == text }
        let prefix = pattern[..<star]
        guard text.hasPrefix(prefix) else { return false }
        let rest = pattern[pattern.index(after: star)...]
        var remaining = text.dropFirst(prefix.count)
        while true {
            if glob(rest, remaining) { return true }
            if remaining.isEmpty { return false }
            remaining = remaining.dropFirst()
        }
    }
    return policy.rules.contains { rule in
        let member = { (user: String) in rule.user.hasPrefix("@") && policy.members[String(rule.user.dropFirst())]?.contains(user) == true }
        let applies = user.map { rule.user == "*" || rule.user == $0 || member($0) } ?? (rule.user == "anonymous")
        return rule.permissions.contains(permission) && applies && matches(rule.pattern[...], name.components[...])
    }
}
