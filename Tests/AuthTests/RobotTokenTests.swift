import Auth
import Foundation
import Registry
import Storage
import Testing

@Suite struct RobotTokenTests {
    @Test func robotSecretsLogInScopedAndStopAtRevocation() throws {
        let h = try TokenFlowTests.Harness()
        let robots = h.auth.robots
        let secret = try robots.create(try #require(AuthName("ci")), scopes: ["repository:team/*:pull,push"], expires: nil,
                                       now: h.fixture.clock.now())
        #expect(secret.hasPrefix("berth_") && secret.count > 40)
        // Only the hash is on disk.
        let stored = try robots.list()
        #expect(stored.map(\.name) == ["ci"])
        #expect(stored.first?.sha256 != secret && !(stored.first?.sha256.contains(secret) ?? true))

        // The policy lets alice's robot… no: robots obey the policy under their own name.
        let withPolicy = try TokenFlowTests.Harness(policy: "ci team/** read,write,delete", fixture: h.fixture)
        let basic = TokenFlowTests.basic("ci", secret)
        #expect(withPolicy.send("GET", "/v2/team/app/tags/list", authorization: basic).status == 404)
        #expect(withPolicy.send("DELETE", "/v2/team/app/manifests/v1", authorization: basic).status == 403, "beyond the robot's scope")
        #expect(withPolicy.send("GET", "/v2/team/a/b/tags/list", authorization: basic).status == 403, "team/* is one component")
        #expect(withPolicy.send("GET", "/v2/", authorization: TokenFlowTests.basic("ci", secret + "x")).status == 401)

        // Exchanged at the token endpoint: granted = requested ∩ policy ∩ robot scope.
        let token = try #require(withPolicy.token("ci", secret, scope: "repository:team/app:pull,push,delete", extra: "&offline_token=true"))
        let access = TokenFlowTests.claims(token)["access"] as? [[String: Any]]
        #expect(access?.first?["actions"] as? [String] == ["pull", "push"])
        let refresh = try #require(withPolicy.json(withPolicy.send("GET", "/token?offline_token=true&scope=repository:team/app:pull",
                                                                   authorization: basic))["refresh_token"] as? String)
        #expect(withPolicy.send("GET", "/v2/team/app/tags/list", authorization: "Bearer \(token)").status == 404)

        // Revoked: the secret, the token issued before, and the refresh token all stop at once.
        #expect(try robots.revoke(try #require(AuthName("ci"))))
        #expect(withPolicy.send("GET", "/v2/team/app/tags/list", authorization: basic).status == 401)
        #expect(withPolicy.send("GET", "/v2/team/app/tags/list", authorization: "Bearer \(token)").status == 401, "replayed after revocation")
        #expect(withPolicy.send("POST", "/token", body: "grant_type=refresh_token&refresh_token=\(refresh)").status == 401)
    }

    @Test func expiredRobotsAndRecreatedNamesRefuseOldCredentials() throws {
        let h = try TokenFlowTests.Harness(policy: "ci ** read")
        let name = try #require(AuthName("ci"))
        let now = h.fixture.clock.now()
        let first = try h.auth.robots.create(name, scopes: ["repository:**:pull"], expires: now + 100, now: now)
        let token = try #require(h.token("ci", first, scope: "repository:x:pull"))
        #expect(try h.auth.robots.revoke(name))
        h.fixture.advance(5)
        let second = try h.auth.robots.create(name, scopes: ["repository:**:pull"], expires: h.fixture.clock.now() + 100,
                                              now: h.fixture.clock.now())
        #expect(h.send("GET", "/v2/x/tags/list", authorization: TokenFlowTests.basic("ci", first)).status == 401)
        #expect(h.send("GET", "/v2/x/tags/list", authorization: "Bearer \(token)").status == 401, "a token of the earlier robot")
        #expect(h.send("GET", "/v2/x/tags/list", authorization: TokenFlowTests.basic("ci", second)).status == 404)
        h.fixture.advance(200)
        #expect(h.send("GET", "/v2/x/tags/list", authorization: TokenFlowTests.basic("ci", second)).status == 401, "expired")
    }

    @Test func lifetimesParse() throws {
        #expect(try Lifetime.parse("30d") == 30 * 86_400)
        #expect(try Lifetime.parse("12h") == 43_200)
        #expect(try Lifetime.parse("3600") == 3600)
        #expect(try Lifetime.parse("never") == nil)
        for bad in ["", "d", "-1d", "0", "99999999999d", "1y", "１d"] {
            #expect(throws: AuthError.self, "\(bad)") { try Lifetime.parse(bad) }
        }
    }
}
