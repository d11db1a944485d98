import Foundation
import Testing
import IntegrationSupport

/// The audit log through real nginx and the real worker: logins and failed logins,
/// pushes, tag moves, deletes, policy refusals and write-once refusals, and robot token
/// creation and revocation by `berth token`, each a JSON line with user, client address,
/// repository, digest and nginx's request id, and never a credential.
@Suite(.serialized) struct AuditLogTests {
    struct Line: Decodable {
        let time: String
        let action: String
        let user: String?
        let client: String?
        let repository: String?
        let digest: String?
        let reference: String?
        let tags: [String]?
        let previous_digest: String?
        let detail: String?
        let request_id: String?
        let status: Int?
    }

    @Test func changesLoginsAndRefusalsAreAuditedWithWhoFromWhereAndTheRequestID() throws {
        let secrets = TemporaryDirectory(prefix: "berth-audit")
        defer { secrets.remove() }
        let auditFile = "\(secrets.path)/audit.jsonl"
        let server = try RegistryServer.authenticating(
            users: ["alice": "alice-password", "bob": "bob-password"],
            policy: "alice ** read,write,delete\nbob ** read\n",
            environment: ["BERTH_AUTH": "basic", "BERTH_AUDIT_LOG": auditFile, "BERTH_IMMUTABLE_TAGS": "app v*"],
            secrets: secrets)
        defer { server.stop() }
        let base = server.baseURL
        let alice = ["-u", "alice:alice-password"]

        #expect(server.curl(alice + ["\(base)/v2/"]).status == 200)
        #expect(server.curl(["-u", "alice:wrong", "\(base)/v2/"]).status == 401)
        // Reads are not audited.
        #expect(server.curl(alice + ["\(base)/v2/_catalog"]).status == 200)

        var digests: [String] = []
        for seed in 0..<2 {
            let config = Data("{\"seed\":\(seed)}".utf8)
            let configFile = "\(secrets.path)/config-\(seed)"
            _ = FileManager.default.createFile(atPath: configFile, contents: config)
            #expect(server.curl(alice + ["-X", "POST", "--data-binary", "@\(configFile)",
                                         "\(base)/v2/app/blobs/uploads/?digest=\(sha256(config))"]).status == 201)
            let manifest = Data("""
                {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(sha256(config))","size":\(config.count)},"layers":[]}
                """.utf8)
            let file = "\(secrets.path)/manifest-\(seed)"
            _ = FileManager.default.createFile(atPath: file, contents: manifest)
            #expect(server.curl(alice + ["-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json",
                                         "--data-binary", "@\(file)", "\(base)/v2/app/manifests/latest?tag=v\(seed)"]).status == 201)
            digests.append(sha256(manifest))
        }
        #expect(server.curl(alice + ["-X", "DELETE", "\(base)/v2/app/manifests/v0"]).status == 403)
        #expect(server.curl(["-u", "bob:bob-password", "-X", "DELETE", "\(base)/v2/app/manifests/latest"]).status == 403)
        #expect(server.curl(alice + ["-X", "DELETE", "\(base)/v2/app/manifests/latest"]).status == 202)

        let auditEnvironment = ["BERTH_AUDIT_LOG": auditFile]
        let created = Shell.run(RegistryServer.binary, ["token", "create", "ci", "--scope", "repository:app:pull",
                                                        "--store", server.store], environment: auditEnvironment)
        #expect(created.succeeded, "\(created.stderr)")
        let secret = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let revoked = Shell.run(RegistryServer.binary, ["token", "revoke", "ci", "--store", server.store], environment: auditEnvironment)
        #expect(revoked.succeeded, "\(revoked.stderr)")

        let text = try String(contentsOfFile: auditFile, encoding: .utf8)
        #expect(!text.contains("alice-password") && !text.contains("wrong") && (secret.isEmpty || !text.contains(secret)))
        let lines = text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Line.self, from: Data($0.utf8)) }
        #expect(lines.count == text.split(separator: "\n").count, "every line is one JSON object")
        #expect(lines.map(\.action) == ["login", "login.failed", "push", "push", "tag.move", "denied", "denied", "delete",
                                        "token.create", "token.revoke"], "\(lines.map(\.action))")
        guard lines.count == 10 else { return }
        #expect(lines[0].user == "alice" && lines[0].client == "127.0.0.1" && lines[0].request_id?.count == 32)
        #expect(lines[1].user == nil && lines[1].status == 401)
        #expect(lines[2].repository == "app" && lines[2].digest == digests[0] && lines[2].tags == ["latest", "v0"])
        #expect(lines[4].reference == "latest" && lines[4].previous_digest == digests[0] && lines[4].digest == digests[1])
        #expect(lines[5].user == "alice" && lines[5].detail?.contains("immutable_tags = app v*") == true && lines[5].reference == "v0")
        #expect(lines[6].user == "bob" && lines[6].status == 403 && lines[6].repository == "app")
        #expect(lines[7].action == "delete" && lines[7].reference == "latest" && lines[7].detail == "manifest")
        #expect(lines[8].reference == "ci" && lines[8].client == "local" && lines[8].user != nil)
        #expect(lines[9].reference == "ci")
        // One request id per request: the second push and the tag it moved share one.
        #expect(lines[3].request_id == lines[4].request_id)
        #expect(Set(lines.compactMap(\.request_id)).count == 7)
    }
}
