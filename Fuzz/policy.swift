// Fuzz target: the policy-file parser (AccessPolicy) and its matcher. The input is
// policy text, then a NUL, then a user and repository names to check (one per line).
// Findings: a trap; a parse error naming a line the text does not have; a hang in the
// matcher (libFuzzer's -timeout); a rule granting everything that does not.
@testable import Registry
import Storage

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPolicy(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let bytes = input.rest()
    let split = bytes.firstIndex(of: 0) ?? bytes.endIndex
    let text = String(decoding: bytes[..<split], as: UTF8.self)
    let queries = split < bytes.endIndex ? String(decoding: bytes[(split + 1)...], as: UTF8.self) : ""
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count

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
    for name in names {
        for permission in AccessPolicy.Permission.allCases {
            _ = policy.allows(user, permission, on: name)
            _ = policy.allows(nil, permission, on: name)
            if let everything, let user, !user.isEmpty, !user.contains(where: \.isWhitespace), !user.contains("#"),
               !everything.allows(user, permission, on: name) {
                Finding.report("\(user) ** read,write,delete does not grant \(permission) on \(name)")
            }
        }
    }
    return 0
}
