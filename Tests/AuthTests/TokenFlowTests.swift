import Auth
import Foundation
import Registry
import Storage
import Testing
import TestSupport

/// The registry with the worker's AuthService, in process: challenges, the token
/// endpoint's GET and POST flows, scope checks, and every kind of bad token refused.
@Suite struct TokenFlowTests {
    static let policy = """
        alice      team/**     read,write,delete
        bob        team/app    read
        anonymous  public/**   read
        """

    struct Harness {
        let fixture: AuthFixture
        let auth: AuthService
        let registry: Registry

        init(policy: String = TokenFlowTests.policy, fixture: AuthFixture = AuthFixture(), pullThrough: (any PullThrough)? = nil,
             configure: (inout AuthService.Options) -> Void = { _ in }) throws {
            self.fixture = fixture
            auth = try fixture.service(configure)
            var options = Registry.Options()
            options.authenticator = auth
            options.tokenIssuer = auth
            options.challenge = .bearer(realm: nil)
            options.policy = try AccessPolicy(text: policy)
            var capabilities = Store(root: fixture.storeRoot).capabilities
            capabilities.pullThrough = pullThrough
            registry = Registry(capabilities: capabilities, options: options)
        }

        func send(_ method: String, _ uri: String, authorization: String? = nil, body: String = "",
                  client: String = "127.0.0.1") -> RegistryResponse {
            var headers = ["content-length": String(body.utf8.count), "host": "registry.test:5443", "remote-addr": client]
            if let authorization { headers["authorization"] = authorization }
            return registry.handle(RegistryRequest(method: method, uri: uri, headers: headers, body: BufferByteSource(Array(body.utf8))))
        }

        func json(_ response: RegistryResponse) -> [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
        }

        /// A token from GET /token with Basic credentials (nil: anonymous).
        func token(_ user: String?, _ password: String = "", scope: String, extra: String = "") -> String? {
            let basic = user.map { "Basic " + Data("\($0):\(password)".utf8).base64EncodedString() }
            let scopeQuery = scope.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            let answer = send("GET", "/token?service=berth&scope=\(scopeQuery)\(extra)", authorization: basic)
            return json(answer)["token"] as? String
        }
    }

    static func basic(_ user: String, _ password: String) -> String {
        "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }

    static func claims(_ token: String) -> [String: Any] {
        let parts = token.split(separator: ".")
        guard parts.count == 3 else { return [:] }
        var text = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        return (Data(base64Encoded: text).flatMap { try? JSONSerialization.jsonObject(with: $0) }) as? [String: Any] ?? [:]
    }

    @Test func anonymousGetsTheBearerChallengeNamingTheScope() throws {
        let h = try Harness()
        let ping = h.send("GET", "/v2/")
        #expect(ping.status == 401)
        #expect(ping.header("WWW-Authenticate") == "Bearer realm=\"https://registry.test:5443/token\",service=\"berth\"")
        let pull = h.send("GET", "/v2/team/app/manifests/v1")
        #expect(pull.status == 401)
        #expect(pull.header("WWW-Authenticate") == "Bearer realm=\"https://registry.test:5443/token\",service=\"berth\",scope=\"repository:team/app:pull\"")
        #expect(h.send("PUT", "/v2/team/app/manifests/v1").header("WWW-Authenticate")?.hasSuffix("scope=\"repository:team/app:pull,push\"") == true)
        // Basic credentials straight on /v2/ work too.
        #expect(h.send("GET", "/v2/", authorization: Self.basic("alice", "alice-pw")).status == 200)
        #expect(h.send("GET", "/v2/", authorization: Self.basic("alice", "wrong")).status == 401)
    }

    @Test func tokenEndpointGrantsTheRequestedScopesThatThePolicyAllows() throws {
        let h = try Harness()
        let answer = h.send("GET", "/token?service=berth&scope=repository%3Ateam%2Fapp%3Apull%2Cpush&scope=repository:other:pull",
                            authorization: Self.basic("bob", "bob-pw"))
        #expect(answer.status == 200)
        let body = h.json(answer)
        let token = try #require(body["token"] as? String)
        #expect(body["access_token"] as? String == token)
        #expect(body["expires_in"] as? Int == 300)
        #expect((body["issued_at"] as? String)?.hasSuffix("Z") == true)
        #expect(body["refresh_token"] == nil)
        let claims = Self.claims(token)
        #expect(claims["sub"] as? String == "bob")
        #expect(claims["aud"] as? String == "berth")
        #expect(claims["iss"] as? String == "berth")
        for claim in ["exp", "nbf", "iat", "jti"] { #expect(claims[claim] != nil, "\(claim)") }
        let access = try #require(claims["access"] as? [[String: Any]])
        #expect(access.count == 1)
        #expect(access.first?["name"] as? String == "team/app")
        #expect(access.first?["actions"] as? [String] == ["pull"], "bob may not push: granted = requested ∩ policy")

        // The token pulls team/app; a push needs a scope it lacks but bob cannot get either: 403.
        let bearer = "Bearer \(token)"
        #expect(h.send("GET", "/v2/team/app/tags/list", authorization: bearer).status == 404, "authorized: the lookup runs")
        #expect(h.send("POST", "/v2/team/app/blobs/uploads/", authorization: bearer).status == 403)
        // alice's token for team/app does not reach team/other, which the policy grants her:
        // the challenge asks for that scope (insufficient_scope).
        let aliceToken = try #require(h.token("alice", "alice-pw", scope: "repository:team/app:pull"))
        let other = h.send("GET", "/v2/team/other/tags/list", authorization: "Bearer \(aliceToken)")
        #expect(other.status == 401)
        #expect(other.header("WWW-Authenticate")?.contains("error=\"insufficient_scope\"") == true)
        #expect(other.header("WWW-Authenticate")?.contains("scope=\"repository:team/other:pull\"") == true)
        // A bad password at the token endpoint is a 401, never a token.
        #expect(h.send("GET", "/token?service=berth&scope=repository:team/app:pull", authorization: Self.basic("bob", "x")).status == 401)
        #expect(h.send("GET", "/token?service=elsewhere", authorization: Self.basic("bob", "bob-pw")).status == 400)
    }

    @Test func anonymousTokensCarryWhatThePolicyGrantsAnonymous() throws {
        let h = try Harness()
        let token = try #require(h.token(nil, scope: "repository:public/x:pull,push"))
        let access = Self.claims(token)["access"] as? [[String: Any]]
        #expect(access?.first?["actions"] as? [String] == ["pull"])
        #expect(h.send("GET", "/v2/public/x/tags/list", authorization: "Bearer \(token)").status == 404)
        let empty = try #require(h.token(nil, scope: "repository:team/app:pull"))
        #expect((Self.claims(empty)["access"] as? [Any])?.isEmpty == true)
        #expect(h.send("GET", "/v2/team/app/tags/list", authorization: "Bearer \(empty)").status == 401)
    }

    @Test func oauthPostFlowWithPasswordAndRefreshTokenThatIsNotRotated() throws {
        let h = try Harness()
        let login = h.send("POST", "/token", body: "grant_type=password&username=alice&password=alice-pw&service=berth&client_id=docker&access_type=offline&scope=repository%3Ateam%2Fapp%3Apull%2Cpush")
        #expect(login.status == 200)
        // The audit log learns who logged in, though the request itself carried no credentials.
        #expect(login.user == "alice" && login.audit == [AuditFacts(.login)])
        let refresh = try #require(h.json(login)["refresh_token"] as? String)
        let access = Self.claims(try #require(h.json(login)["access_token"] as? String))["access"] as? [[String: Any]]
        #expect(access?.first?["actions"] as? [String] == ["pull", "push"])

        let again = h.send("POST", "/token", body: "grant_type=refresh_token&refresh_token=\(refresh)&service=berth&client_id=docker&scope=repository:team/x:pull")
        #expect(again.status == 200)
        #expect(h.json(again)["refresh_token"] as? String == refresh, "the refresh token is answered back unchanged")
        let token = try #require(h.json(again)["token"] as? String)
        #expect(Self.claims(token)["sub"] as? String == "alice")
        // A refresh token is no access token, and an access token is no refresh token.
        #expect(h.send("GET", "/v2/", authorization: "Bearer \(refresh)").status == 401)
        #expect(h.send("POST", "/token", body: "grant_type=refresh_token&refresh_token=\(token)").status == 401)
        let refused = h.send("POST", "/token", body: "grant_type=password&username=alice&password=nope")
        #expect(refused.status == 401 && refused.audit.map(\.action) == [.loginFailed])
        #expect(h.send("POST", "/token", body: "grant_type=client_credentials").status == 400)
        // GET with offline_token=true gives one as well.
        let offline = h.send("GET", "/token?service=berth&offline_token=true&client_id=docker", authorization: Self.basic("bob", "bob-pw"))
        #expect(h.json(offline)["refresh_token"] is String)
        // The user leaves the htpasswd file: the refresh token and the tokens stop working.
        h.fixture.writeUsers(["bob": "bob-pw"])
        #expect(h.send("POST", "/token", body: "grant_type=refresh_token&refresh_token=\(refresh)").status == 401)
        #expect(h.send("GET", "/v2/team/x/tags/list", authorization: "Bearer \(token)").status == 401)
    }

    @Test func forgedExpiredForeignAndAlgNoneTokensAreRefused() throws {
        let h = try Harness()
        let token = try #require(h.token("alice", "alice-pw", scope: "repository:team/app:pull"))
        let ok = h.send("GET", "/v2/team/app/tags/list", authorization: "Bearer \(token)")
        #expect(ok.status == 404)
        let parts = token.split(separator: ".").map(String.init)

        func refused(_ candidate: String, _ why: Comment) {
            let answer = h.send("GET", "/v2/team/app/tags/list", authorization: "Bearer \(candidate)")
            #expect(answer.status == 401, why)
            #expect(answer.header("WWW-Authenticate")?.hasPrefix("Bearer realm=") == true, why)
        }
        func encode(_ json: String) -> String {
            Data(json.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        // Claims changed under the same signature (push added).
        var claims = Self.claims(token)
        claims["access"] = [["type": "repository", "name": "team/app", "actions": ["pull", "push", "delete"]]]
        let forgedPayload = encode(String(decoding: try JSONSerialization.data(withJSONObject: claims), as: UTF8.self))
        refused("\(parts[0]).\(forgedPayload).\(parts[2])", "payload changed")
        refused("\(parts[0]).\(parts[1]).\(String(parts[2].reversed()))", "signature changed")
        refused("\(encode("{\"alg\":\"none\",\"typ\":\"JWT\"}")).\(parts[1]).", "alg none")
        refused("\(encode("{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"x\"}")).\(parts[1]).\(parts[2])", "alg none with a signature")
        let header = String(decoding: Data(base64Encoded: parts[0] + String(repeating: "=", count: (4 - parts[0].count % 4) % 4)) ?? Data(), as: UTF8.self)
        refused("\(encode(header.replacingOccurrences(of: "EdDSA", with: "HS256"))).\(parts[1]).\(parts[2])", "HS256 with the public key")
        refused("garbage", "not a JWT")
        refused("a.b.c", "not base64 JSON")

        // Signed by another registry's key (another store): unknown kid.
        let stranger = try Harness(fixture: AuthFixture())
        refused(try #require(stranger.token("alice", "alice-pw", scope: "repository:team/app:pull")), "foreign key")
        // Same keys, another audience (service).
        let otherService = try Harness(fixture: h.fixture) { $0.service = "other" }
        let otherToken = try #require(otherService.json(otherService.send("GET", "/token?scope=repository:team/app:pull",
                                                                          authorization: Self.basic("alice", "alice-pw")))["token"] as? String)
        refused(otherToken, "wrong audience")
        // Expired (past the 30 s skew), and not yet valid.
        h.fixture.advance(300 + 31)
        refused(token, "expired")
        h.fixture.advance(-2000)
        refused(token, "not valid yet")
    }

    @Test func rotatedKeysKeepVerifyingOldTokensWhileNewOnesSign() throws {
        let h = try Harness()
        let before = try #require(h.token("alice", "alice-pw", scope: "repository:team/app:pull"))
        h.fixture.advance(1)
        let files = h.fixture.files
        let newKey = try AuthService.rotateKey(in: files, now: h.fixture.clock.now())
        let after = try #require(h.token("alice", "alice-pw", scope: "repository:team/app:pull"))
        func kid(_ token: String) -> String? {
            let head = String(token.split(separator: ".")[0])
            let padded = head + String(repeating: "=", count: (4 - head.count % 4) % 4)
            return (Data(base64Encoded: padded).flatMap { try? JSONSerialization.jsonObject(with: $0) } as? [String: Any])?["kid"] as? String
        }
        #expect(kid(after) == newKey.value)
        #expect(kid(before) != newKey.value)
        #expect(h.send("GET", "/v2/team/app/tags/list", authorization: "Bearer \(before)").status == 404)
        #expect(h.send("GET", "/v2/team/app/tags/list", authorization: "Bearer \(after)").status == 404)
    }

    @Test func aClaimedRemoteUserCountsForNothingOnceTheWorkerAuthenticates() throws {
        let h = try Harness()
        let request = RegistryRequest(method: "GET", uri: "/v2/team/app/tags/list", headers: ["remote-user": "alice", "host": "r"])
        #expect(h.registry.handle(request).status == 401)
        let malformed = h.send("GET", "/v2/", authorization: "Basic !!!")
        #expect(malformed.status == 401 && malformed.header("WWW-Authenticate")?.hasPrefix("Bearer realm=") == true)
        #expect(h.send("GET", "/v2/", authorization: "Digest x").status == 401)
    }

    @Test func refusalComesBeforeAnyLookup() throws {
        let h = try Harness()
        let alice = Self.basic("alice", "alice-pw")
        let layer = "secret layer"
        let digest = "sha256:" + Secrets.hex(Secrets.sha256(Array(layer.utf8)))
        #expect(h.send("POST", "/v2/team/private/blobs/uploads/?digest=\(digest)", authorization: alice, body: layer).status == 201)
        let bob = try #require(h.token("bob", "bob-pw", scope: "repository:team/private:pull"))
        let missing = "sha256:" + String(repeating: "0", count: 64)
        let present = h.send("HEAD", "/v2/team/private/blobs/\(digest)", authorization: "Bearer \(bob)")
        let absent = h.send("HEAD", "/v2/team/private/blobs/\(missing)", authorization: "Bearer \(bob)")
        #expect(present.status == absent.status && present.status == 403)
        #expect(present.body == absent.body)
        #expect(h.send("HEAD", "/v2/team/private/blobs/\(digest)").status == 401)
    }

    /// `mirror_default = hub` with nothing to fetch: enough to route unhosted reads.
    final class DefaultMirror: PullThrough {
        let namespaces = ["hub"]
        let defaultNamespace: String? = "hub"
        func namespace(named value: String) -> String? { value == "hub" ? "hub" : nil }
        func needsUpstream(_ reference: Reference, in repository: RepositoryName) -> Bool { false }
        func upstreamSize(of digest: Digest, in repository: RepositoryName) throws(StorageError) -> UInt64? { nil }
        func fetch(_ digest: Digest, in repository: RepositoryName) throws(StorageError) -> (any IncomingBlob)? { nil }
    }

    /// docker's registry-mirrors asks for a token for the name it sends (`library/alpine`);
    /// the policy grants the mirrored name (`hub/**`). The token covers the routed pull.
    @Test func aTokenForTheNameSentCoversThePullTheDefaultMirrorRoutes() throws {
        let h = try Harness(policy: "anonymous  hub/**  read", pullThrough: DefaultMirror())
        let token = try #require(h.token(nil, scope: "repository:library/alpine:pull"))
        let access = Self.claims(token)["access"] as? [[String: Any]]
        #expect(access?.first?["name"] as? String == "library/alpine")
        #expect(access?.first?["actions"] as? [String] == ["pull"])
        let pull = h.send("GET", "/v2/library/alpine/manifests/latest", authorization: "Bearer \(token)")
        #expect(pull.repository == "hub/library/alpine")
        #expect(pull.status == 404, "past authorization, nothing stored: \(pull.status) \(String(decoding: pull.body, as: UTF8.self))")
        // Names the policy does not give by any route get no grant.
        let none = try #require(h.token(nil, scope: "repository:hub2/x:push"))
        #expect((Self.claims(none)["access"] as? [Any])?.isEmpty == true)
    }
}
