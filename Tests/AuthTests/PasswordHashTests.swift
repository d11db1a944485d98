import Auth
import Foundation
import Testing
import TestSupport

@Suite struct PasswordHashTests {
    @Test func bcryptHashesFromHtpasswdVerify() throws {
        let line = Shell.run("htpasswd", ["-nbB", "-C", "5", "alice", "s3cret"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let hash = String(line.dropFirst("alice:".count))
        #expect(hash.hasPrefix("$2y$05$"))
        #expect(PasswordHash.verify("s3cret", against: hash))
        #expect(!PasswordHash.verify("s3cret ", against: hash))
        #expect(!PasswordHash.verify("", against: hash))
        let b = try #require(PasswordHash.bcrypt("pw", cost: 4))
        #expect(b.hasPrefix("$2b$04$"))
        #expect(PasswordHash.verify("pw", against: b))
        #expect(!PasswordHash.verify("pw", against: "pw"), "plain text never verifies")
        #expect(!PasswordHash.verify("pw", against: "$apr1$x$y"), "unsupported kinds never verify")
    }
}
