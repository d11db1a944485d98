import Registry
import Storage
import Testing
import TestSupport

@Suite struct AuthorizationTests {
    static let policyText = """
        # user     repositories  permissions
        alice      team/**       read,write,delete
        bob        team/app      read
        *          public/*      read
        anonymous  open/**       read,write
        """

    @Test func policyMatchesUsersAndPatterns() throws {
        let policy = try AccessPolicy(text: Self.policyText)
        let name = { (text: String) in RepositoryName(text)! }
        #expect(policy.allows("alice", .delete, on: name("team")))
        #expect(policy.allows("alice", .write, on: name("team/a/b/c")))
        #expect(!policy.allows("alice", .read, on: name("teams")))
        #expect(policy.allows("bob", .read, on: name("team/app")))
        #expect(!policy.allows("bob", .write, on: name("team/app")))
        #expect(!policy.allows("bob", .read, on: name("team/app/x")))
        #expect(policy.allows("carol", .read, on: name("public/x")))
        #expect(!policy.allows(nil, .read, on: name("public/x")))
        #expect(!policy.allows("carol", .read, on: name("public/x/y")))
        #expect(policy.allows(nil, .write, on: name("open/anything/here")))
        #expect(throws: AccessPolicy.ParseError.self) { try AccessPolicy(text: "alice team/** read,fly") }
        #expect(throws: AccessPolicy.ParseError.self) { try AccessPolicy(text: "alice team/**") }
    }

    @Test func registryRefusesBeforeLookingAndNeverLeaksABlob() throws {
        let directory = TemporaryDirectory(prefix: "berth-auth")
        defer { directory.remove() }
        var options = Registry.Options()
        options.policy = try AccessPolicy(text: Self.policyText)
        options.automaticCrossMount = true
        let registry = Registry(store: Store(root: directory.path), options: options)
        func send(_ user: String?, _ method: String, _ uri: String, _ body: [UInt8] = []) -> RegistryResponse {
            var headers = ["content-length": String(body.count)]
            if let user { headers["remote-user"] = user }
            return registry.handle(RegistryRequest(method: method, uri: uri, headers: headers, body: BufferByteSource(body)))
        }
        let secret = Array("secret layer".utf8)
        let digest = ContentHasher.digest(of: secret)
        #expect(send("alice", "POST", "/v2/team/private/blobs/uploads/?digest=\(digest)", secret).status == 201)

        // bob cannot read team/private: every way of asking says nothing about the blob.
        #expect(send("bob", "HEAD", "/v2/team/private/blobs/\(digest)").status == 403)
        #expect(send("bob", "HEAD", "/v2/team/private/blobs/sha256:\(String(repeating: "0", count: 64))").status == 403)
        #expect(send(nil, "GET", "/v2/team/private/tags/list").status == 401)
        #expect(send(nil, "GET", "/v2/team/private/tags/list").header("WWW-Authenticate") == "Basic realm=\"Berth registry\"")
        #expect(send(nil, "POST", "/v2/open/x/blobs/uploads/?mount=\(digest)&from=team/private").status == 202)
        #expect(send(nil, "POST", "/v2/open/x/blobs/uploads/?mount=\(digest)").status == 202, "no automatic mount from unreadable repositories")
        #expect(send("alice", "POST", "/v2/team/other/blobs/uploads/?mount=\(digest)").status == 201)
        #expect(send("alice", "POST", "/v2/team/copy/blobs/uploads/?mount=\(digest)&from=team/private").status == 201)

        #expect(send("bob", "DELETE", "/v2/team/app/blobs/\(digest)").status == 403)
        #expect(send("bob", "PUT", "/v2/team/app/manifests/v1", Array("{}".utf8)).status == 403)
        let catalog = String(decoding: send("bob", "GET", "/v2/_catalog").body, as: UTF8.self)
        #expect(catalog == "{\"repositories\":[]}")
        let full = String(decoding: send("alice", "GET", "/v2/_catalog").body, as: UTF8.self)
        #expect(full == "{\"repositories\":[\"team/copy\",\"team/other\",\"team/private\"]}")
        #expect(send("bob", "GET", "/v2/").status == 200)
    }
}
