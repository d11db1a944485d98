import Foundation
import IntegrationSupport
import Testing

/// The access policy over mirrored names with real clients: a Berth with token auth whose
/// policy gives anonymous users the mirror's namespace only.
@Suite(.serialized) struct MirrorAccessTests: MirrorTesting {
    @Test func anonymousDockerPullsThroughTheDefaultMirrorOnAPolicyForTheMirroredName() throws {
        let upstream = try DockerRegistryUpstream()
        defer { upstream.remove() }
        let work = upstream.directory.path
        let source = try ImageBuilder.build(layout: "\(work)/source", tag: "v1", layerSizes: [300_000], seed: 56)
        let manifestText = try push(source, tag: "v1", to: upstream, as: "library/berth-mirror-test")
        let config = TemporaryDirectory(prefix: "berth-mirror-config")
        defer { config.remove() }
        try ((try mirrorLines("hub", of: upstream)) + ["mirror_default = hub"]).joined(separator: "\n")
            .write(toFile: "\(config.path)/berth.conf", atomically: true, encoding: .utf8)
        // Docker token auth; anonymous may read hub/** and nothing hosted.
        let server = try RegistryServer.authenticating(
            users: ["alice": "alice-pw"], policy: "alice  **  read,write\nanonymous  hub/**  read", secrets: config,
            workerArguments: ["--config", "\(config.path)/berth.conf"])
        defer { server.stop() }

        // docker asks for a token for library/berth-mirror-test, the name it sends; the policy
        // judges hub/library/berth-mirror-test, where the pull goes and the image is stored.
        let engine = try DockerEngine(directory: "\(work)/docker", settings: ["registry-mirrors": [server.baseURL]])
        defer { engine.stop() }
        let pull = engine.docker(["pull", "berth-mirror-test:v1"])
        #expect(pull.succeeded, "docker pull: \(pull.stderr)\n\(pull.stdout)\nworker:\n\(server.workerLog.suffix(3000))")
        let requests = server.loggedRequests
        #expect(requests.contains { $0.uri == "/v2/library/berth-mirror-test/manifests/v1" && $0.status == 200 }, "\(requests)")
        #expect(FileManager.default.fileExists(atPath: "\(server.store)/hub/library/berth-mirror-test/index.json"))

        // alice's hosted team/app is hers: anonymous reads of that name go to the mirror, which
        // the upstream does not have, the same answer as for a name nobody pushed.
        let pushed = skopeo(work, ["copy", "--dest-cert-dir", server.certDirectory, "--dest-creds", "alice:alice-pw",
                                   "oci:\(source):v1", "docker://\(server.host)/team/app:v1"])
        try #require(pushed.succeeded, "\(pushed.stderr)")
        let token: (String) -> String = { name in
            let answer = server.curl(["\(server.baseURL)/token?service=berth&scope=repository:\(name):pull"])
            let body = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any]
            return body?["token"] as? String ?? ""
        }
        let hosted = server.curl(["-H", "Authorization: Bearer \(token("team/app"))", "-H", "Accept: application/vnd.oci.image.manifest.v1+json",
                                  "\(server.baseURL)/v2/team/app/manifests/v1"])
        let nobody = server.curl(["-H", "Authorization: Bearer \(token("team/none"))", "-H", "Accept: application/vnd.oci.image.manifest.v1+json",
                                  "\(server.baseURL)/v2/team/none/manifests/v1"])
        #expect(hosted.status == nobody.status && hosted.errorCode == nobody.errorCode, "\(hosted.status) \(hosted.text) / \(nobody.status) \(nobody.text)")
        #expect(hosted.text != manifestText && hosted.status != 200)
        let alice = server.curl(["-u", "alice:alice-pw", "-H", "Accept: application/vnd.oci.image.manifest.v1+json",
                                 "\(server.baseURL)/v2/team/app/manifests/v1"])
        #expect(alice.status == 200)
    }
}
