import Foundation
import IntegrationSupport
import Testing

/// Real clients logging in to Berth's worker authentication (Docker token auth) with a
/// password and with a robot token: the docker engine (`docker login`, which stores the
/// refresh token, then push and pull with it), podman, buildah, containerd, python-dxf,
/// oras-py; and a token of an external issuer as a password and as a Bearer token.
@Suite(.serialized) struct ClientAuthTests {
    static let users = ["alice": "alice-pw", "bob": "bob-pw"]
    static let policy = """
        alice  team/**  read,write,delete
        bob    team/**  read
        ci     team/**  read,write
        """

    func robot(_ server: RegistryServer) throws -> String {
        let created = server.berthToken(["create", "ci", "--scope", "repository:team/**:pull,push"])
        try #require(created.succeeded, "\(created.stderr)")
        usleep(700_000) // the workers look at the robots at most every 0.5 s
        return created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func dockerLoginStoresARefreshTokenAndPushesAndPullsWithIt() throws {
        let secrets = TemporaryDirectory(prefix: "berth-auth")
        defer { secrets.remove() }
        let server = try RegistryServer.authenticating(users: Self.users, policy: Self.policy, secrets: secrets)
        defer { server.stop() }
        let engine = try DockerEngine(directory: "\(server.directory.path)/engine")
        defer { engine.stop() }
        let helpers = DockerEngineTests()
        let layout = try ImageBuilder.build(layout: "\(server.directory.path)/source", tag: "v1", layerSizes: [400_000], seed: 61)
        let reference = "\(server.host)/team/app:v1"
        try helpers.load(engine, server, layout: layout, tag: "v1", as: reference)

        #expect(!engine.docker(["push", reference]).succeeded, "no push without a login")
        let wrong = login(engine, server, "alice", "nope")
        #expect(!wrong.succeeded)
        let login = login(engine, server, "alice", "alice-pw")
        try #require(login.succeeded, "docker login: \(login.stderr)\n\(login.stdout)\n\(server.workerLog.suffix(3000))")
        // docker keeps the refresh token the token endpoint gave (offline_token), not the password.
        let config = (try? String(contentsOfFile: "\(engine.cliConfigDirectory)/config.json", encoding: .utf8)) ?? ""
        #expect(config.contains("identitytoken"), "\(config)")
        #expect(!config.contains(Data("alice:alice-pw".utf8).base64EncodedString()))

        let push = engine.docker(["push", reference])
        try #require(push.succeeded, "docker push: \(push.stderr)\n\(push.stdout)\n\(server.workerLog.suffix(3000))")
        #expect(engine.docker(["rmi", reference]).succeeded)
        let pull = engine.docker(["pull", reference])
        #expect(pull.succeeded, "docker pull: \(pull.stderr)\n\(pull.stdout)")
        let tokenRequests = server.loggedRequests.filter { $0.uri.hasPrefix("/token") }
        #expect(tokenRequests.contains { $0.method == "POST" && $0.status == 200 }, "the refresh-token grant: \(tokenRequests)")
        #expect(engine.docker(["logout", server.host]).succeeded)

        // A robot token as the password.
        let secret = try robot(server)
        let robotLogin = self.login(engine, server, "ci", secret)
        try #require(robotLogin.succeeded, "\(robotLogin.stderr)")
        let other = "\(server.host)/team/robot:v1"
        #expect(engine.docker(["tag", reference, other]).succeeded)
        let robotPush = engine.docker(["push", other])
        #expect(robotPush.succeeded, "\(robotPush.stderr)\n\(robotPush.stdout)")
        #expect(!server.workerLog.contains(secret) && !server.workerLog.contains("alice-pw"))
    }

    func login(_ engine: DockerEngine, _ server: RegistryServer, _ user: String, _ password: String) -> Shell.Result {
        Shell.run(DockerEngine.cliBinary, ["login", "-u", user, "--password-stdin", server.host],
                  environment: ["DOCKER_HOST": "unix://\(engine.socket)", "DOCKER_CONFIG": engine.cliConfigDirectory],
                  input: Data(password.utf8), timeout: 60)
    }

    @Test func podmanLogsInWithAPasswordAndARobotToken() throws {
        let secrets = TemporaryDirectory(prefix: "berth-auth")
        defer { secrets.remove() }
        let server = try RegistryServer.authenticating(users: Self.users, policy: Self.policy, secrets: secrets)
        defer { server.stop() }
        let base = server.directory.path
        let authFile = "\(base)/podman-auth.json"
        func podman(_ arguments: [String], input: String? = nil) -> Shell.Result {
            Shell.run("podman", ["--root", "\(base)/proot", "--runroot", "\(base)/prun", "--tmpdir", "\(base)/ptmp",
                                 "--storage-driver", "vfs"] + arguments,
                      environment: ["XDG_DATA_HOME": "\(base)/xdg", "_CONTAINERS_ROOTLESS_UID": "1000", "REGISTRY_AUTH_FILE": authFile],
                      input: input.map { Data($0.utf8) }, timeout: 120)
        }
        let layout = try ImageBuilder.build(layout: "\(base)/source", tag: "v1", layerSizes: [200_000], seed: 62)
        #expect(!podman(["login", "--cert-dir", server.certDirectory, "-u", "alice", "--password-stdin", server.host], input: "bad").succeeded)
        let login = podman(["login", "--cert-dir", server.certDirectory, "-u", "alice", "--password-stdin", server.host], input: "alice-pw")
        try #require(login.succeeded, "\(login.stderr)")
        let seeded = Shell.run("skopeo", ["copy", "--dest-cert-dir", server.certDirectory, "--dest-creds", "alice:alice-pw",
                                           "oci:\(layout):v1", "docker://\(server.host)/team/podman:v1"],
                               environment: ["XDG_DATA_HOME": "\(base)/xdg", "_CONTAINERS_ROOTLESS_UID": "1000", "REGISTRY_AUTH_FILE": "\(base)/skopeo.json"])
        try #require(seeded.succeeded, "\(seeded.stderr)")
        let pull = podman(["pull", "--cert-dir", server.certDirectory, "\(server.host)/team/podman:v1"])
        try #require(pull.succeeded, "\(pull.stderr)")
        let image = "\(server.host)/team/podman:v1"
        #expect(podman(["tag", image, "\(server.host)/team/podman:v2"]).succeeded)
        let push = podman(["push", "--cert-dir", server.certDirectory, "\(server.host)/team/podman:v2"])
        #expect(push.succeeded, "\(push.stderr)")

        let secret = try robot(server)
        let robotLogin = podman(["login", "--cert-dir", server.certDirectory, "-u", "ci", "--password-stdin", server.host], input: secret)
        try #require(robotLogin.succeeded, "\(robotLogin.stderr)")
        let robotPush = podman(["push", "--cert-dir", server.certDirectory, image, "docker://\(server.host)/team/podman-ci:v1"])
        #expect(robotPush.succeeded, "\(robotPush.stderr)")
        #expect(server.berthToken(["revoke", "ci"]).succeeded)
        usleep(700_000)
        let revoked = podman(["push", "--cert-dir", server.certDirectory, image, "docker://\(server.host)/team/podman-ci:v2"])
        #expect(!revoked.succeeded)
    }

    /// buildah's own login (it shares podman's library but keeps its own flags), with a
    /// password, a robot token and an external issuer's token as the password: each
    /// pushes, a wrong password and a revoked robot are refused, and a pull works.
    @Test func buildahLogsInWithAPasswordARobotTokenAndAnIssuersToken() throws {
        let secrets = TemporaryDirectory(prefix: "berth-auth")
        defer { secrets.remove() }
        let issuer = try TestIssuer(folder: secrets.path)
        let server = try RegistryServer.authenticating(users: Self.users, policy: Self.policy + "\n@pushers team/** read,write\n",
                                                       secrets: secrets, workerArguments: ["--config", issuer.configFile])
        defer { server.stop() }
        let sandbox = try ContainerToolSandbox(path: "\(server.directory.path)/buildah")
        let layout = try ImageBuilder.build(layout: "\(server.directory.path)/source", tag: "v1", layerSizes: [150_000], seed: 66)
        let seeded = Shell.run("skopeo", ["copy", "--dest-cert-dir", server.certDirectory, "--dest-creds", "alice:alice-pw",
                                           "oci:\(layout):v1", "docker://\(server.host)/team/buildah:v1"],
                               environment: sandbox.environment, timeout: 120)
        try #require(seeded.succeeded, "\(seeded.stderr)")
        func login(_ user: String, _ password: String) -> Shell.Result {
            sandbox.buildah(["login", "--cert-dir", server.certDirectory, "-u", user, "--password-stdin", server.host], input: password)
        }
        func push(_ tag: String) -> Shell.Result {
            sandbox.buildah(["push", "--cert-dir", server.certDirectory, "\(server.host)/team/buildah:v1",
                             "docker://\(server.host)/team/buildah:\(tag)"])
        }

        #expect(!login("alice", "not-her-password").succeeded)
        try #require(login("alice", "alice-pw").succeeded)
        let pull = sandbox.buildah(["pull", "--cert-dir", server.certDirectory, "\(server.host)/team/buildah:v1"])
        try #require(pull.succeeded, "\(pull.stderr)")
        let byPassword = push("by-password")
        #expect(byPassword.succeeded, "\(byPassword.stderr)")

        let secret = try robot(server)
        try #require(login("ci", secret).succeeded)
        let byRobot = push("by-robot")
        #expect(byRobot.succeeded, "\(byRobot.stderr)")
        #expect(server.berthToken(["revoke", "ci"]).succeeded)
        usleep(700_000) // the workers look at the robots at most every 0.5 s
        #expect(!push("by-revoked-robot").succeeded, "a revoked robot's stored login no longer pushes")

        try #require(login("oauth2", issuer.token).succeeded)
        let byIssuer = push("by-issuer")
        #expect(byIssuer.succeeded, "\(byIssuer.stderr)")

        let tags = server.curl(["-u", "alice:alice-pw", "\(server.baseURL)/v2/team/buildah/tags/list"])
        #expect(tags.status == 200)
        for tag in ["v1", "by-password", "by-robot", "by-issuer"] { #expect(tags.text.contains("\"\(tag)\""), "\(tag) in \(tags.text)") }
        #expect(!tags.text.contains("by-revoked-robot"))
        for leaked in ["alice-pw", secret, issuer.token] { #expect(!server.workerLog.contains(leaked)) }
    }

    @Test func containerdCtrWithUserPasswordAndRobotToken() throws {
        let secrets = TemporaryDirectory(prefix: "berth-auth")
        defer { secrets.remove() }
        let server = try RegistryServer.authenticating(users: Self.users, policy: Self.policy, secrets: secrets)
        defer { server.stop() }
        let containerd = try Containerd(directory: "\(server.directory.path)/containerd")
        defer { containerd.stop() }
        let hosts = try containerd.hostsDirectory(for: server)
        let layout = try ImageBuilder.build(layout: "\(server.directory.path)/source", tag: "v1", layerSizes: [300_000], seed: 63)
        let reference = "\(server.host)/team/ctr:v1"
        try ContainerdTests().importArchive(containerd, server, layout: layout, tag: "v1", baseName: "\(server.host)/team/ctr",
                                            namespace: "push")
        #expect(!containerd.ctr(["images", "push", "--hosts-dir", hosts, reference], namespace: "push").succeeded)
        let push = containerd.ctr(["images", "push", "--hosts-dir", hosts, "--user", "alice:alice-pw", reference], namespace: "push")
        try #require(push.succeeded, "ctr push: \(push.stderr)\n\(push.stdout)\nworker:\n\(server.workerLog.suffix(3000))")
        let secret = try robot(server)
        let pull = containerd.ctr(["images", "pull", "--hosts-dir", hosts, "--user", "ci:\(secret)", "--snapshotter", "native", reference],
                                  namespace: "pull")
        #expect(pull.succeeded, "ctr pull: \(pull.stderr)\n\(pull.stdout)")
        let denied = containerd.ctr(["images", "pull", "--hosts-dir", hosts, "--user", "bob:wrong", "--snapshotter", "native", reference],
                                    namespace: "denied")
        #expect(!denied.succeeded)
    }

    static let dxfScript = #"""
    import json, sys
    from dxf import DXF
    host, repo, ca, user, password, path = sys.argv[1:7]
    def auth(dxf, response):
        dxf.authenticate(user, password, response=response)
    with DXF(host, repo, auth=auth, tlsverify=ca) as dxf:
        digest = dxf.push_blob(path)
        pulled = b"".join(dxf.pull_blob(digest))
        with open(path, "rb") as f:
            print(json.dumps({"digest": digest, "same": pulled == f.read()}))
    """#

    @Test func pythonDXFSpeaksTheTokenFlowWithAPasswordAndARobotToken() throws {
        let python = try ClientTools.python(importing: "dxf")
        let secrets = TemporaryDirectory(prefix: "berth-auth")
        defer { secrets.remove() }
        let server = try RegistryServer.authenticating(users: Self.users, policy: Self.policy, secrets: secrets)
        defer { server.stop() }
        let script = "\(server.directory.path)/dxf-auth.py"
        _ = FileManager.default.createFile(atPath: script, contents: Data(Self.dxfScript.utf8))
        let blob = "\(server.directory.path)/blob.bin"
        _ = FileManager.default.createFile(atPath: blob, contents: Data((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }))
        func dxf(_ user: String, _ password: String, _ repository: String) -> Shell.Result {
            Shell.run(python, [script, server.host, repository, "\(server.certDirectory)/ca.crt", user, password, blob],
                      environment: ["HOME": server.directory.path], timeout: 120)
        }
        let withPassword = dxf("alice", "alice-pw", "team/dxf")
        #expect(withPassword.succeeded && withPassword.stdout.contains("\"same\": true"), "\(withPassword.stderr)")
        let secret = try robot(server)
        let withRobot = dxf("ci", secret, "team/dxf-ci")
        #expect(withRobot.succeeded && withRobot.stdout.contains("\"same\": true"), "\(withRobot.stderr)")
        #expect(!dxf("bob", "bob-pw", "team/dxf-bob").succeeded, "bob may only read")
        #expect(ClientTools.workerRequests(server).contains { $0.uri.hasPrefix("/token") && $0.status == 200 })
    }

    static let orasScript = #"""
    import json, sys
    import oras.provider
    host, repository, ca, user, password, path, outdir, backend = sys.argv[1:9]
    registry = oras.provider.Registry(hostname=host, tls_verify=ca, auth_backend=backend)
    registry.auth.set_basic_auth(user, password)
    response = registry.push(target=f"{host}/{repository}:v1", files=[path], disable_path_validation=True, quiet=True)
    files = registry.pull(target=f"{host}/{repository}:v1", outdir=outdir)
    print(json.dumps({"status": response.status_code, "files": len(files)}))
    """#

    @Test func orasPushesAndPullsWithAPasswordAndARobotToken() throws {
        let python = try ClientTools.python(importing: "oras")
        let secrets = TemporaryDirectory(prefix: "berth-auth")
        defer { secrets.remove() }
        let server = try RegistryServer.authenticating(users: Self.users, policy: Self.policy, secrets: secrets)
        defer { server.stop() }
        let base = server.directory.path
        let script = "\(base)/oras-auth.py"
        _ = FileManager.default.createFile(atPath: script, contents: Data(Self.orasScript.utf8))
        _ = FileManager.default.createFile(atPath: "\(base)/artifact.txt", contents: Data("artifact".utf8))
        // oras-py 0.2's token backend keeps its first token (pull scope) and retries a push
        // with it for minutes, never asking again on insufficient_scope: its basic backend
        // (Basic credentials on every request, which Berth accepts on /v2/) is what works.
        func oras(_ user: String, _ password: String, _ repository: String, backend: String = "basic") -> Shell.Result {
            Shell.run(python, [script, server.host, repository, "\(server.certDirectory)/ca.crt", user, password, "\(base)/artifact.txt",
                               "\(base)/out-\(user)", backend], environment: ["HOME": base], timeout: 120)
        }
        let withPassword = oras("alice", "alice-pw", "team/oras")
        #expect(withPassword.succeeded && withPassword.stdout.contains("\"status\": 201"), "\(withPassword.stderr.suffix(2000))")
        let secret = try robot(server)
        let withRobot = oras("ci", secret, "team/oras-ci")
        #expect(withRobot.succeeded && withRobot.stdout.contains("\"files\": 1"), "\(withRobot.stderr.suffix(2000))")
        #expect(!oras("bob", "bob-pw", "team/oras-bob").succeeded, "bob may only read")
    }

    /// An issuer of the test's own: an ES256 key made here, its JWKS in a file, a config
    /// file naming it (`issuer.test.*`), and one token for `ci-job` in group `pushers`.
    struct TestIssuer {
        let configFile: String
        let token: String

        init(folder: String) throws {
            let script = "\(folder)/issuer.py", jwks = "\(folder)/jwks.json", tokenFile = "\(folder)/token"
            _ = FileManager.default.createFile(atPath: script, contents: Data(ClientAuthTests.issuerScript.utf8))
            let made = Shell.run("/usr/bin/python3", [script, jwks, tokenFile])
            try #require(made.succeeded, "python3-cryptography: \(made.stderr)")
            token = try String(contentsOfFile: tokenFile, encoding: .utf8)
            configFile = "\(folder)/berth.conf"
            _ = FileManager.default.createFile(atPath: configFile, contents: Data("""
                issuer.test.issuer = https://issuer.test
                issuer.test.audience = berth-it
                issuer.test.jwks_file = \(jwks)
                issuer.test.groups_claim = groups
                """.utf8))
        }
    }

    static let issuerScript = #"""
    import base64, json, sys, time
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils
    jwks_path, token_path = sys.argv[1:3]
    def b64(data): return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    json.dump({"keys": [{"kty": "EC", "crv": "P-256", "kid": "t1", "x": b64(numbers.x.to_bytes(32, "big")),
                         "y": b64(numbers.y.to_bytes(32, "big"))}]}, open(jwks_path, "w"))
    now = int(time.time())
    claims = {"iss": "https://issuer.test", "aud": "berth-it", "sub": "ci-job", "exp": now + 600, "iat": now, "groups": ["pushers"]}
    signing_input = b64(json.dumps({"alg": "ES256", "kid": "t1", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    r, s = utils.decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    open(token_path, "w").write(signing_input + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big")))
    """#

    /// A token of an issuer of the test's own (keys made here, its JWKS in a file) as the
    /// password of skopeo and curl, and as a Bearer token.
    @Test func anExternalIssuersTokenWorksAsPasswordAndAsBearer() throws {
        let secrets = TemporaryDirectory(prefix: "berth-auth")
        defer { secrets.remove() }
        let issuer = try TestIssuer(folder: secrets.path)
        let token = issuer.token
        let server = try RegistryServer.authenticating(users: Self.users, policy: Self.policy + "\n@pushers team/** read,write\n",
                                                       secrets: secrets, workerArguments: ["--config", issuer.configFile])
        defer { server.stop() }
        let layout = try ImageBuilder.build(layout: "\(server.directory.path)/source", tag: "v1", layerSizes: [100_000], seed: 64)
        let push = Shell.run("skopeo", ["copy", "--dest-cert-dir", server.certDirectory, "--dest-creds", "oauth2:\(token)",
                                        "oci:\(layout):v1", "docker://\(server.host)/team/oidc:v1"],
                             environment: ["XDG_DATA_HOME": "\(server.directory.path)/xdg", "_CONTAINERS_ROOTLESS_UID": "1000",
                                           "REGISTRY_AUTH_FILE": "\(server.directory.path)/auth.json"], timeout: 120)
        #expect(push.succeeded, "\(push.stderr)\n\(server.workerLog.suffix(2000))")
        let listed = server.curl(["-H", "Authorization: Bearer \(token)", "\(server.baseURL)/v2/team/oidc/tags/list"])
        #expect(listed.status == 200 && listed.text.contains("v1"))
        #expect(server.workerLog.contains("\"user\":\"test:ci-job\""))
        #expect(!server.workerLog.contains(token))
        let tampered = String(token.dropLast(4)) + "AAAA"
        #expect(server.curl(["-H", "Authorization: Bearer \(tampered)", "\(server.baseURL)/v2/team/oidc/tags/list"]).status == 401)
    }
}
