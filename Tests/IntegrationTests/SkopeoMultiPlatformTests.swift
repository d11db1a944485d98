import Foundation
import Testing
import IntegrationSupport

/// skopeo copies a multi-platform image (an OCI index and its children) into Berth and
/// back, and deletes manifests, through real nginx with TLS.
@Suite(.serialized) struct SkopeoMultiPlatformTests {
    static let platforms = [
        MultiPlatformImage.Platform(architecture: "amd64"),
        MultiPlatformImage.Platform(architecture: "arm64", variant: "v8"),
    ]

    /// skopeo with its own blob-info cache, so no earlier run turns pushes into mounts.
    func skopeo(_ server: RegistryServer, _ arguments: [String]) -> Shell.Result {
        Shell.run("skopeo", arguments, environment: [
            "XDG_DATA_HOME": "\(server.directory.path)/xdg", "_CONTAINERS_ROOTLESS_UID": "1000",
            "HOME": server.directory.path,
        ], timeout: 300)
    }

    func bytes(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

    @Test func copyAllPushesTheIndexAndEveryChildAndPullsThemBackByteIdentical() throws {
        try ClientTools.require("skopeo", debianPackage: "skopeo")
        let server = try RegistryServer()
        defer { server.stop() }
        let image = try MultiPlatformImage.build(layout: "\(server.directory.path)/source", tag: "v1",
                                                 platforms: Self.platforms, layerSizes: [400_000, 150_000], seed: 41)

        let push = skopeo(server, ["copy", "--all", "--dest-cert-dir", server.certDirectory,
                                   "oci:\(image.layout):v1", "docker://\(server.host)/team/multi:v1"])
        try #require(push.succeeded, "\(push.stderr)")

        // Berth holds the index under the tag, with its media type and digest, and each
        // child by digest, with the platform's config.
        let head = server.curl(["-I", "\(server.baseURL)/v2/team/multi/manifests/v1"])
        #expect(head.status == 200)
        #expect(head.header("Content-Type") == MultiPlatformImage.indexMediaType)
        #expect(head.header("Docker-Content-Digest") == image.indexDigest)
        #expect(head.header("Content-Length") == String(image.indexBody.count))
        #expect(server.curl(["\(server.baseURL)/v2/team/multi/manifests/v1"]).body == image.indexBody)
        for child in image.children {
            let answer = server.curl(["\(server.baseURL)/v2/team/multi/manifests/\(child.digest)"])
            #expect(answer.status == 200, "\(child.platform)")
            #expect(answer.header("Docker-Content-Digest") == child.digest)
            #expect(answer.body == bytes(MultiPlatformImage.blobPath(layout: image.layout, digest: child.digest)))
        }
        // The children went up before the index that names them.
        let manifestPuts = ClientTools.workerRequests(server).filter { $0.method == "PUT" && $0.uri.contains("/manifests/") }
        #expect(manifestPuts.map(\.uri) == image.children.map { "/v2/team/multi/manifests/\($0.digest)" }
            + ["/v2/team/multi/manifests/v1"], "\(manifestPuts)")
        #expect(manifestPuts.allSatisfy { $0.status == 201 }, "\(manifestPuts)")

        let pulled = "\(server.directory.path)/pulled"
        let pull = skopeo(server, ["copy", "--all", "--src-cert-dir", server.certDirectory,
                                   "docker://\(server.host)/team/multi:v1", "oci:\(pulled):v1"])
        try #require(pull.succeeded, "\(pull.stderr)")

        #expect(skopeo(server, ["inspect", "--raw", "oci:\(pulled):v1"]).stdout == String(decoding: image.indexBody, as: UTF8.self))
        for child in image.children {
            let digests = try MultiPlatformImage.blobDigests(ofManifest: child.digest, in: image.layout)
            #expect(digests.count == 4, "\(child.platform): manifest, config and two layers")
            for digest in digests {
                let original = bytes(MultiPlatformImage.blobPath(layout: image.layout, digest: digest))
                let copy = bytes(MultiPlatformImage.blobPath(layout: pulled, digest: digest))
                #expect(original != nil && original == copy, "\(child.platform): blob \(digest)")
            }
        }
        // Each platform of the pulled index resolves to the image built for it.
        for child in image.children {
            let config = skopeo(server, ["--override-os", child.platform.os, "--override-arch", child.platform.architecture,
                                         "--override-variant", child.platform.variant ?? "",
                                         "inspect", "--config", "oci:\(pulled):v1"])
            #expect(config.succeeded, "\(config.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(config.stdout.utf8)) as? [String: Any]
            #expect(object?["architecture"] as? String == child.platform.architecture)
        }

        // The store is an OCI layout that skopeo reads directly, the index included.
        #expect(skopeo(server, ["inspect", "--raw", "oci:\(server.store)/team/multi:v1"]).stdout
            == String(decoding: image.indexBody, as: UTF8.self))
    }

    @Test func deleteOfATagRemovesItsManifestAndEveryTagNamingItWhileOtherTagsStay() throws {
        try ClientTools.require("skopeo", debianPackage: "skopeo")
        let server = try RegistryServer()
        defer { server.stop() }
        let image = try MultiPlatformImage.build(layout: "\(server.directory.path)/source", tag: "multi",
                                                 platforms: Self.platforms, layerSizes: [200_000], seed: 42)
        let single = try ImageBuilder.build(layout: "\(server.directory.path)/single", tag: "one",
                                            layerSizes: [100_000], seed: 43)
        let copies: [(String, String)] = [
            ("oci:\(image.layout):multi", "multi"), ("oci:\(image.layout):multi", "multi-alias"),
            ("oci:\(single):one", "one"),
        ]
        for (source, tag) in copies {
            let push = skopeo(server, ["copy", "--all", "--dest-cert-dir", server.certDirectory,
                                       source, "docker://\(server.host)/team/app:\(tag)"])
            try #require(push.succeeded, "\(push.stderr)")
        }
        let singleDigest = server.curl(["-I", "\(server.baseURL)/v2/team/app/manifests/one"]).header("Docker-Content-Digest")
        try #require(singleDigest != nil)
        #expect(tags(server, "team/app") == ["multi", "multi-alias", "one"])

        // skopeo resolves the tag and deletes the manifest by digest: the index goes, with
        // both tags naming it; the other tag and the children (manifests of their own) stay.
        let delete = skopeo(server, ["delete", "--cert-dir", server.certDirectory, "docker://\(server.host)/team/app:multi"])
        try #require(delete.succeeded, "\(delete.stderr)")
        let deletes = ClientTools.workerRequests(server).filter { $0.method == "DELETE" }
        #expect(deletes.map(\.description) == ["DELETE /v2/team/app/manifests/\(image.indexDigest) -> 202"])

        for reference in ["multi", "multi-alias", image.indexDigest] {
            let gone = server.curl(["\(server.baseURL)/v2/team/app/manifests/\(reference)"])
            #expect(gone.status == 404, "\(reference)")
            #expect(gone.errorCode == "MANIFEST_UNKNOWN", "\(reference)")
            #expect(server.curl(["-I", "\(server.baseURL)/v2/team/app/manifests/\(reference)"]).status == 404, "\(reference)")
        }
        #expect(tags(server, "team/app") == ["one"])
        let one = server.curl(["\(server.baseURL)/v2/team/app/manifests/one"])
        #expect(one.status == 200)
        #expect(one.body == skopeo(server, ["inspect", "--raw", "oci:\(single):one"]).stdout.data(using: .utf8))
        for child in image.children {
            #expect(server.curl(["-I", "\(server.baseURL)/v2/team/app/manifests/\(child.digest)"]).status == 200)
        }
        let inspect = skopeo(server, ["inspect", "--cert-dir", server.certDirectory, "docker://\(server.host)/team/app:multi"])
        #expect(!inspect.succeeded)

        // Deleting by digest takes that manifest only.
        let child = image.children[0]
        let byDigest = skopeo(server, ["delete", "--cert-dir", server.certDirectory,
                                       "docker://\(server.host)/team/app@\(child.digest)"])
        #expect(byDigest.succeeded, "\(byDigest.stderr)")
        #expect(server.curl(["\(server.baseURL)/v2/team/app/manifests/\(child.digest)"]).status == 404)
        #expect(server.curl(["-I", "\(server.baseURL)/v2/team/app/manifests/\(image.children[1].digest)"]).status == 200)
        #expect(server.curl(["-I", "\(server.baseURL)/v2/team/app/manifests/\(singleDigest!)"]).status == 200)
        #expect(tags(server, "team/app") == ["one"])
    }

    func tags(_ server: RegistryServer, _ repository: String) -> [String]? {
        struct List: Decodable { let tags: [String]? }
        return (try? JSONDecoder().decode(List.self, from: server.curl(["\(server.baseURL)/v2/\(repository)/tags/list"]).body))?.tags
    }
}
