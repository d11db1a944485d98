import Registry
import Storage
import Testing

/// Inputs the libFuzzer targets (`Fuzz/`, `scripts/fuzz`) found, as requests with the
/// answer each deserves. The raw inputs are in `Fuzz/regressions/<target>/`.
@Suite struct FuzzRegressionTests {
    /// Fuzz/regressions/{headers,registry}/content-range-length-2-pow-64: the range
    /// 0-18446744073709551615 is 2^64 bytes, whose length overflowed UInt64 (a trap).
    @Test func patchWithAContentRangeOfTwoToTheSixtyFourBytesIsRefused() throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let location = try #require(fixture.send("POST", "/v2/team/app/blobs/uploads/").header("Location"))
        for range in ["0-18446744073709551615", "bytes=0-18446744073709551615", "5-18446744073709551615"] {
            let response = fixture.send("PATCH", location, headers: ["content-range": range], body: Array("hello".utf8))
            #expect((400..<500).contains(response.status), "\(range) -> \(response.status)")
            #expect(fixture.errorCode(response) == "BLOB_UPLOAD_INVALID", "\(range)")
        }
        let put = fixture.send("PUT", "\(location)?digest=\(ContentHasher.digest(of: []))",
                               headers: ["content-range": "0-18446744073709551615"])
        #expect((400..<500).contains(put.status))
        #expect(fixture.send("GET", location).header("Range") == "0-0")
    }

    /// Fuzz/regressions/policy/{double-star,star-glob}-backtracking: the matcher
    /// backtracked over every split, so a long repository name (which any client may send)
    /// against `**/**/**/**/z` or `*a*a*…b` kept a worker thread busy for minutes.
    /// (A bound on the test, not a timing assertion: the backtracking matcher took minutes.)
    @Test(.timeLimit(.minutes(1))) func policyPatternsWithManyWildcardsAnswerLongNamesAtOnce() throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        var options = Registry.Options()
        options.policy = try AccessPolicy(text: "u **/**/**/**/z read\nu \(String(repeating: "*a", count: 12))b read\nu **/ok read")
        let registry = Registry(store: Store(root: fixture.directory.path), options: options)
        let long = Array(repeating: "a", count: 120).joined(separator: "/")
        for name in [long, String(repeating: "a", count: 250), long + "/z"] {
            let response = registry.handle(RegistryRequest(method: "GET", uri: "/v2/\(name)/tags/list", headers: ["remote-user": "u"]))
            let expected = name.hasSuffix("/z") ? 404 : 403  // allowed, then unknown; or denied
            #expect(response.status == expected, "\(name.prefix(20))… -> \(response.status)")
            #expect(fixture.errorCode(response) == (expected == 404 ? "NAME_UNKNOWN" : "DENIED"))
        }
        let policy = try #require(options.policy)
        let name = { (text: String) in RepositoryName(text)! }
        #expect(policy.allows("u", .read, on: name("x/ok")) && policy.allows("u", .read, on: name("ok")))
        #expect(policy.allows("u", .read, on: name(String(repeating: "a", count: 24) + "b")))
        #expect(!policy.allows("u", .read, on: name(String(repeating: "a", count: 24) + "c")))
    }

    /// Fuzz/regressions/policy/crlf-lines: "\r\n" is one Character, so a CRLF policy was
    /// one line: a comment swallowed every rule after it, or the file did not parse.
    @Test func policyFilesWithCRLFLinesReadLikeLFOnes() throws {
        let name = { (text: String) in RepositoryName(text)! }
        let commented = try AccessPolicy(text: "# user repositories permissions\r\nalice team/** read # ok\r\nbob x read\r\n")
        #expect(commented.allows("alice", .read, on: name("team/app")))
        #expect(commented.allows("bob", .read, on: name("x")))
        let plain = try AccessPolicy(text: "alice team/** read\r\nbob x read,write")
        #expect(plain.allows("bob", .write, on: name("x")) && !plain.allows("bob", .delete, on: name("x")))
        #expect(throws: AccessPolicy.ParseError.self) { try AccessPolicy(text: "alice team/** read\r\nbob x fly\r\n") }
        do { _ = try AccessPolicy(text: "alice team/** read\r\nbob x fly\r\n") } catch { #expect(error.line == 2) }
    }
}
