import Foundation
import Testing
import IntegrationSupport

/// nginx authenticates (auth_basic, bcrypt htpasswd); the worker's policy decides.
@Suite(.serialized) struct AccessControlTests {
    static let policy = """
        alice  team/**   read,write,delete
        bob    team/app  read
        """

    func write(_ text: String, to path: String) -> String {
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    func skopeo(_ server: RegistryServer, _ arguments: [String]) -> Shell.Result {
        Shell.run("skopeo", arguments, environment: ["XDG_DATA_HOME": "\(server.directory.path)/xdg", "_CONTAINERS_ROOTLESS_UID": "1000",
                                                     "REGISTRY_AUTH_FILE": "\(server.directory.path)/auth.json"])
    }

    @Test func usersGetWhatThePolicyGrantsAndNothingLeaks() throws {
        let secrets = TemporaryDirectory(prefix: "berth-auth")
        defer { secrets.remove() }
        let htpasswd = "\(secrets.path)/htpasswd"
        #expect(Shell.run("htpasswd", ["-B", "-b", "-c", htpasswd, "alice", "alice-pw"]).succeeded)
        #expect(Shell.run("htpasswd", ["-B", "-b", htpasswd, "bob", "bob-pw"]).succeeded)
        let policy = write(Self.policy, to: "\(secrets.path)/policy")
        let server = try RegistryServer(workerArguments: ["--policy", policy], nginxArguments: ["--htpasswd", htpasswd])
        defer { server.stop() }
        let base = server.baseURL

        let anonymous = server.curl(["\(base)/v2/team/app/tags/list"])
        #expect(anonymous.status == 401)
        #expect(anonymous.header("WWW-Authenticate")?.hasPrefix("Basic") == true)
        #expect(anonymous.errorCode == "UNAUTHORIZED")
        #expect(server.curl(["-u", "alice:wrong", "\(base)/v2/"]).status == 401)

        let source = try ImageBuilder.build(layout: "\(server.directory.path)/source", tag: "v1", layerSizes: [200_000], seed: 31)
        for repository in ["team/app", "team/private"] {
            let push = skopeo(server, ["copy", "--dest-cert-dir", server.certDirectory, "--dest-creds", "alice:alice-pw",
                                       "oci:\(source):v1", "docker://\(server.host)/\(repository):v1"])
            #expect(push.succeeded, "\(push.stderr)")
        }
        let pull = skopeo(server, ["copy", "--src-cert-dir", server.certDirectory, "--src-creds", "bob:bob-pw",
                                   "docker://\(server.host)/team/app:v1", "oci:\(server.directory.path)/pulled:v1"])
        #expect(pull.succeeded, "\(pull.stderr)")
        let refused = skopeo(server, ["copy", "--dest-cert-dir", server.certDirectory, "--dest-creds", "bob:bob-pw",
                                      "oci:\(source):v1", "docker://\(server.host)/team/app:bob"])
        #expect(!refused.succeeded)

        let layer = try #require(server.curl(["-u", "alice:alice-pw", "\(base)/v2/team/private/manifests/v1",
                                              "-H", "Accept: application/vnd.oci.image.manifest.v1+json"]).text
            .components(separatedBy: "\"digest\":\"").last?.prefix(71)).description
        let denied = server.curl(["-u", "bob:bob-pw", "-I", "\(base)/v2/team/private/blobs/\(layer)"])
        #expect(denied.status == 403)
        let deniedBody = server.curl(["-u", "bob:bob-pw", "\(base)/v2/team/private/blobs/\(layer)"])
        #expect(deniedBody.errorCode == "DENIED")
        let mount = server.curl(["-u", "alice:alice-pw", "-X", "POST", "\(base)/v2/team/copy/blobs/uploads/?mount=\(layer)&from=team/private"])
        #expect(mount.status == 201)
        let bobMount = server.curl(["-u", "bob:bob-pw", "-X", "POST", "\(base)/v2/team/app/blobs/uploads/?mount=\(layer)&from=team/private"])
        #expect(bobMount.status == 403, "bob may not write team/app at all")
        #expect(server.curl(["-u", "bob:bob-pw", "\(base)/v2/_catalog"]).text == "{\"repositories\":[\"team/app\"]}")
        #expect(server.curl(["-u", "bob:bob-pw", "-X", "DELETE", "\(base)/v2/team/app/manifests/v1"]).status == 403)
        #expect(server.curl(["-u", "alice:alice-pw", "-X", "DELETE", "\(base)/v2/team/app/manifests/v1"]).status == 202)
    }

    @Test func aClaimedUserIsIgnoredWhenNginxDoesNotAuthenticate() throws {
        let secrets = TemporaryDirectory(prefix: "berth-auth")
        defer { secrets.remove() }
        let policy = write(Self.policy, to: "\(secrets.path)/policy")
        let server = try RegistryServer(workerArguments: ["--policy", policy])
        defer { server.stop() }
        // Without auth_basic, an Authorization header is never verified, so it must not count.
        let forged = server.curl(["-u", "alice:anything", "\(server.baseURL)/v2/team/app/tags/list"])
        #expect(forged.status == 401)
        #expect(forged.errorCode == "UNAUTHORIZED")
    }
}
