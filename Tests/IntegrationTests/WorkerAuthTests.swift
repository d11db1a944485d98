import Foundation
import IntegrationSupport
import Testing

/// Authentication in the worker (berth.conf htpasswd), through real nginx: Basic on /v2/,
/// the Docker token flow, robot tokens, throttling; real clients on top.
@Suite(.serialized) struct WorkerAuthTests {
    static let users = ["alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"]
    static let policy = """
        alice      team/**    read,write,delete
        bob        team/app   read
        ci         team/**    read,write
        anonymous  public/**  read
        """

    func skopeo(_ server: RegistryServer, _ arguments: [String]) -> Shell.Result {
        Shell.run("skopeo", arguments, environment: ["XDG_DATA_HOME": "\(server.directory.path)/xdg", "_CONTAINERS_ROOTLESS_UID": "1000",
                                                     "REGISTRY_AUTH_FILE": "\(server.directory.path)/auth.json"], timeout: 120)
    }

    func json(_ response: RegistryServer.Response) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:]
    }

    @Test func curlBasicAndTheTokenFlowByHand() throws {
        let secrets = TemporaryDirectory(prefix: "berth-auth")
        defer { secrets.remove() }
        // One worker: failures are counted per process.
        let server = try RegistryServer.authenticating(users: Self.users, policy: Self.policy, cost: 10,
                                                       environment: ["BERTH_WORKERS": "1"], secrets: secrets)
        defer { server.stop() }
        let base = server.baseURL

        let ping = server.curl(["\(base)/v2/"])
        #expect(ping.status == 401)
        #expect(ping.header("WWW-Authenticate") == "Bearer realm=\"https://\(server.host)/token\",service=\"berth\"")
        #expect(ping.errorCode == "UNAUTHORIZED")
        #expect(server.curl(["-u", "alice:alice-pw", "\(base)/v2/"]).status == 200)
        #expect(server.curl(["-u", "alice:nope", "\(base)/v2/"]).status == 401)

        let layer = "layer bytes"
        let digest = "sha256:" + Shell.run("sh", ["-c", "printf %s '\(layer)' | sha256sum | cut -d' ' -f1"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(server.curl(["-u", "alice:alice-pw", "-X", "POST", "--data-binary", layer, "-H", "Content-Type: application/octet-stream",
                             "\(base)/v2/team/app/blobs/uploads/?digest=\(digest)"]).status == 201)
        #expect(server.curl(["-u", "alice:alice-pw", "-X", "POST", "--data-binary", layer, "-H", "Content-Type: application/octet-stream",
                             "\(base)/v2/team/private/blobs/uploads/?digest=\(digest)"]).status == 201)

        // The challenge of a pull names its scope; bob exchanges his password for a token.
        let challenge = server.curl(["-I", "\(base)/v2/team/app/blobs/\(digest)"])
        #expect(challenge.status == 401)
        #expect(challenge.header("WWW-Authenticate")?.hasSuffix(",scope=\"repository:team/app:pull\"") == true)
        let answer = server.curl(["-u", "bob:bob-pw", "\(base)/token?service=berth&scope=repository:team/app:pull,push"])
        #expect(answer.status == 200)
        let token = try #require(json(answer)["token"] as? String)
        let pulled = server.curl(["-H", "Authorization: Bearer \(token)", "\(base)/v2/team/app/blobs/\(digest)"])
        #expect(pulled.status == 200 && pulled.text == layer, "the blob comes from nginx after the worker's check")
        #expect(server.curl(["-I", "-H", "Authorization: Bearer \(token)", "\(base)/v2/team/private/blobs/\(digest)"]).status == 403)
        #expect(server.curl(["-X", "POST", "-H", "Authorization: Bearer \(token)", "\(base)/v2/team/app/blobs/uploads/"]).status == 403,
                "bob's token carries pull only")
        #expect(server.curl(["-H", "Authorization: Bearer \(token)x", "\(base)/v2/team/app/blobs/\(digest)"]).status == 401)

        // The OAuth2 POST flow with a refresh token.
        let form = server.curl(["-X", "POST", "--data", "grant_type=password&username=alice&password=alice-pw&service=berth&client_id=curl&access_type=offline&scope=repository:team/app:push",
                                "\(base)/token"])
        #expect(form.status == 200)
        let refresh = try #require(json(form)["refresh_token"] as? String)
        let renewed = server.curl(["-X", "POST", "--data", "grant_type=refresh_token&refresh_token=\(refresh)&service=berth&scope=repository:team/app:pull",
                                   "\(base)/token"])
        #expect(renewed.status == 200 && json(renewed)["refresh_token"] as? String == refresh)

        // Guessing: after 5 failures, 429 with Retry-After, even with the right password
        // (one not checked before: a cached success is not slowed). The first blocks are
        // short (1 s, then 2 s, 4 s…): guess on, waiting out each block, until one lasts
        // long enough that the next request surely falls inside it on a loaded machine.
        for _ in 0..<5 { #expect(server.curl(["-u", "carol:guess", "\(base)/v2/"]).status == 401) }
        var longestBlock = 0
        for _ in 0..<12 where longestBlock < 8 {
            let guess = server.curl(["-u", "carol:guess", "\(base)/v2/"])
            #expect([401, 429].contains(guess.status))
            if guess.status == 429 {
                let seconds = Int(guess.header("Retry-After") ?? "") ?? 0
                longestBlock = max(longestBlock, seconds)
                if seconds < 8 { sleep(UInt32(max(seconds, 1))) }
            }
        }
        #expect(longestBlock >= 8, "the blocks grow")
        let slowed = server.curl(["-u", "carol:carol-pw", "\(base)/v2/"])
        #expect(slowed.status == 429)
        #expect(slowed.errorCode == "TOOMANYREQUESTS")
        #expect(Int(slowed.header("Retry-After") ?? "") ?? 0 >= 1)

        // No password, token or hash in the worker's log.
        let log = server.workerLog
        #expect(log.contains("\"user\":\"alice\""))
        for secret in ["alice-pw", "bob-pw", "carol-pw", "guess", token, refresh, "$2y$", "Authorization", "Basic "] {
            #expect(!log.contains(secret), "the log holds \(secret.prefix(12))")
        }
    }

    @Test func basicModeChallengesWithBasic() throws {
        let secrets = TemporaryDirectory(prefix: "berth-auth")
        defer { secrets.remove() }
        let server = try RegistryServer.authenticating(users: Self.users, environment: ["BERTH_AUTH": "basic"], secrets: secrets)
        defer { server.stop() }
        let anonymous = server.curl(["\(server.baseURL)/v2/team/x/tags/list"])
        #expect(anonymous.status == 401)
        #expect(anonymous.header("WWW-Authenticate") == "Basic realm=\"Berth registry\"")
        // No policy: every authenticated user may do everything.
        #expect(server.curl(["-u", "bob:bob-pw", "\(server.baseURL)/v2/team/x/tags/list"]).status == 404)
    }

    @Test func skopeoWithPasswordsAndARobotToken() throws {
        let secrets = TemporaryDirectory(prefix: "berth-auth")
        defer { secrets.remove() }
        let server = try RegistryServer.authenticating(users: Self.users, policy: Self.policy, secrets: secrets)
        defer { server.stop() }
        let source = try ImageBuilder.build(layout: "\(server.directory.path)/source", tag: "v1", layerSizes: [300_000], seed: 41)
        let push = skopeo(server, ["copy", "--dest-cert-dir", server.certDirectory, "--dest-creds", "alice:alice-pw",
                                   "oci:\(source):v1", "docker://\(server.host)/team/app:v1"])
        #expect(push.succeeded, "\(push.stderr)\n\(server.workerLog.suffix(4000))")
        let pull = skopeo(server, ["copy", "--src-cert-dir", server.certDirectory, "--src-creds", "bob:bob-pw",
                                   "docker://\(server.host)/team/app:v1", "oci:\(server.directory.path)/pulled:v1"])
        #expect(pull.succeeded, "\(pull.stderr)")
        let refused = skopeo(server, ["copy", "--dest-cert-dir", server.certDirectory, "--dest-creds", "bob:bob-pw",
                                      "oci:\(source):v1", "docker://\(server.host)/team/app:bob"])
        #expect(!refused.succeeded)

        let created = server.berthToken(["create", "ci", "--scope", "repository:team/*:pull,push", "--expires", "1d"])
        #expect(created.succeeded, "\(created.stderr)")
        let secret = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret.hasPrefix("berth_"))
        usleep(700_000) // workers look at the robots at most every 0.5 s
        #expect(server.berthToken(["list"]).stdout.contains("ci\trepository:team/*:pull,push"))
        let robotPush = skopeo(server, ["copy", "--dest-cert-dir", server.certDirectory, "--dest-creds", "ci:\(secret)",
                                        "oci:\(source):v1", "docker://\(server.host)/team/ci:v1"])
        #expect(robotPush.succeeded, "\(robotPush.stderr)")
        #expect(server.curl(["-u", "ci:\(secret)", "\(server.baseURL)/v2/team/ci/tags/list"]).text.contains("v1"))
        #expect(server.curl(["-u", "ci:\(secret)", "\(server.baseURL)/v2/team/a/b/tags/list"]).status == 403, "outside its scope")

        #expect(server.berthToken(["revoke", "ci"]).succeeded)
        usleep(700_000)
        #expect(server.curl(["-u", "ci:\(secret)", "\(server.baseURL)/v2/team/ci/tags/list"]).status == 401)
        let afterRevocation = skopeo(server, ["copy", "--dest-cert-dir", server.certDirectory, "--dest-creds", "ci:\(secret)",
                                              "oci:\(source):v1", "docker://\(server.host)/team/ci:v2"])
        #expect(!afterRevocation.succeeded)
        #expect(!server.workerLog.contains(secret))
    }
}
