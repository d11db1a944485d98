import Foundation
import Testing
import IntegrationSupport

/// skopeo pushes to and pulls from Berth through real nginx with TLS.
@Suite(.serialized) struct SkopeoTests {
    /// skopeo with its own blob-info cache, so no earlier run turns pushes into mounts.
    func skopeo(_ server: RegistryServer, _ arguments: [String]) -> Shell.Result {
        Shell.run("skopeo", arguments, environment: [
            "XDG_DATA_HOME": "\(server.directory.path)/xdg", "_CONTAINERS_ROOTLESS_UID": "1000",
            "HOME": server.directory.path,
        ])
    }

    @Test func pushedImageIsPulledBackByteIdenticalAndTheStoreIsAnOCILayout() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let source = try ImageBuilder.build(layout: "\(server.directory.path)/source", tag: "v1",
                                            layerSizes: [1 << 20, 300_000, 2 << 20], seed: 11)
        let push = skopeo(server, ["copy", "--dest-cert-dir", server.certDirectory,
                                   "oci:\(source):v1", "docker://\(server.host)/team/app:v1"])
        #expect(push.succeeded, "\(push.stderr)")

        let pulled = "\(server.directory.path)/pulled"
        let pull = skopeo(server, ["copy", "--src-cert-dir", server.certDirectory,
                                   "docker://\(server.host)/team/app:v1", "oci:\(pulled):v1"])
        #expect(pull.succeeded, "\(pull.stderr)")

        let sourceManifest = skopeo(server, ["inspect", "--raw", "oci:\(source):v1"]).stdout
        let pulledManifest = skopeo(server, ["inspect", "--raw", "oci:\(pulled):v1"]).stdout
        #expect(!sourceManifest.isEmpty && sourceManifest == pulledManifest)
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(sourceManifest.utf8))
        #expect(manifest.layers.count == 3)
        for digest in [manifest.config.digest] + manifest.layers.map(\.digest) {
            let hex = String(digest.dropFirst("sha256:".count))
            let original = FileManager.default.contents(atPath: "\(source)/blobs/sha256/\(hex)")
            let copy = FileManager.default.contents(atPath: "\(pulled)/blobs/sha256/\(hex)")
            #expect(original != nil && original == copy, "blob \(digest)")
        }

        // The store itself is an OCI image layout that other tools read while Berth runs.
        let direct = skopeo(server, ["inspect", "--raw", "oci:\(server.store)/team/app:v1"])
        #expect(direct.succeeded, "\(direct.stderr)")
        #expect(direct.stdout == sourceManifest)
        let umoci = Shell.run("umoci", ["ls", "--layout", "\(server.store)/team/app"])
        #expect(umoci.stdout.split(separator: "\n") == ["v1"])

        // The pull went through nginx: the manifest answer carries the registry headers.
        let head = server.curl(["-I", "-H", "Accept: application/vnd.oci.image.manifest.v1+json",
                                "\(server.baseURL)/v2/team/app/manifests/v1"])
        #expect(head.status == 200)
        #expect(head.header("Docker-Content-Digest")?.hasPrefix("sha256:") == true)
        #expect(head.header("Content-Type") == "application/vnd.oci.image.manifest.v1+json")
        #expect(head.header("Docker-Distribution-API-Version") == "registry/2.0")
        #expect(head.header("Content-Length") == String(sourceManifest.utf8.count))
    }

    @Test func secondRepositoryPushReusesBlobsByHardLink() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let source = try ImageBuilder.build(layout: "\(server.directory.path)/source", tag: "v1",
                                            layerSizes: [500_000], seed: 12)
        for repository in ["one/app", "two/app"] {
            let push = skopeo(server, ["copy", "--dest-cert-dir", server.certDirectory,
                                       "oci:\(source):v1", "docker://\(server.host)/\(repository):v1"])
            #expect(push.succeeded, "\(push.stderr)")
        }
        let manifest = try JSONDecoder().decode(
            Manifest.self, from: Data(skopeo(server, ["inspect", "--raw", "oci:\(source):v1"]).stdout.utf8))
        let hex = String(manifest.layers[0].digest.dropFirst("sha256:".count))
        let one = try FileManager.default.attributesOfItem(atPath: "\(server.store)/one/app/blobs/sha256/\(hex)")
        let two = try FileManager.default.attributesOfItem(atPath: "\(server.store)/two/app/blobs/sha256/\(hex)")
        #expect(one[.systemFileNumber] as? Int == two[.systemFileNumber] as? Int)
        let catalog = server.curl(["\(server.baseURL)/v2/_catalog"])
        #expect(catalog.text == "{\"repositories\":[\"one/app\",\"two/app\"]}")
    }
}

struct Manifest: Decodable {
    struct Descriptor: Decodable {
        let digest: String
        let size: Int
    }
    let config: Descriptor
    let layers: [Descriptor]
}
