import Foundation
import Testing
import IntegrationSupport

/// podman and buildah (vfs storage in a temp folder, TLS verified with `--cert-dir`) pull
/// from Berth, push under other names and push multi-platform lists, through real nginx.
@Suite(.serialized) struct PodmanBuildahTests {
    /// skopeo with its own blob-info cache, to put the starting images into Berth.
    func skopeo(_ server: RegistryServer, _ arguments: [String]) -> Shell.Result {
        Shell.run("skopeo", arguments, environment: [
            "XDG_DATA_HOME": "\(server.directory.path)/xdg", "_CONTAINERS_ROOTLESS_UID": "1000",
            "HOME": server.directory.path,
        ], timeout: 300)
    }

    func pushWithSkopeo(_ server: RegistryServer, _ source: String, to repositoryAndTag: String) throws {
        let push = skopeo(server, ["copy", "--dest-cert-dir", server.certDirectory, source,
                                   "docker://\(server.host)/\(repositoryAndTag)"])
        try #require(push.succeeded, "\(push.stderr)")
    }

    func manifest(_ server: RegistryServer, _ repository: String,
                  _ reference: String) throws -> (body: Data, image: ImageManifestDocument) {
        let answer = server.curl(["\(server.baseURL)/v2/\(repository)/manifests/\(reference)"])
        try #require(answer.status == 200, "GET \(repository) manifest \(reference): \(answer.status) \(answer.text)")
        return (answer.body, try JSONDecoder().decode(ImageManifestDocument.self, from: answer.body))
    }

    func blob(_ server: RegistryServer, _ repository: String, _ digest: String) throws -> Data {
        let answer = server.curl(["\(server.baseURL)/v2/\(repository)/blobs/\(digest)"])
        try #require(answer.status == 200, "GET \(repository) blob \(digest): \(answer.status)")
        #expect(answer.header("Docker-Content-Digest") == digest)
        #expect(Shell.sha256Digest(answer.body) == digest, "blob \(digest) served with other bytes")
        return answer.body
    }

    /// Checks that the image `reference` in `repository` is complete in Berth and is the
    /// image whose config is `config`: same config bytes, and every layer, decompressed,
    /// has the diff ID the config lists for it (the check a runtime makes on pull).
    func expectImage(_ server: RegistryServer, _ repository: String, _ reference: String, hasConfig config: Data,
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (_, image) = try manifest(server, repository, reference)
        #expect(try blob(server, repository, image.config.digest) == config, sourceLocation: sourceLocation)
        let diffIDs = try JSONDecoder().decode(ImageConfigDocument.self, from: config).rootfs.diff_ids
        #expect(image.layers.count == diffIDs.count, sourceLocation: sourceLocation)
        for (layer, diffID) in zip(image.layers, diffIDs) {
            let compressed = try blob(server, repository, layer.digest)
            #expect(compressed.count == layer.size, sourceLocation: sourceLocation)
            let uncompressed = Shell.run("sh", ["-c", "gzip -dc | sha256sum"], input: compressed)
            #expect("sha256:" + (uncompressed.stdout.split(separator: " ").first ?? "") == diffID,
                    "layer \(layer.digest) of \(repository):\(reference)", sourceLocation: sourceLocation)
        }
    }

    func requireTools(_ tool: String) throws {
        try ClientTools.require(tool, debianPackage: tool)
        try ClientTools.require("skopeo", debianPackage: "skopeo")
    }

    // MARK: podman

    @Test func podmanPullsByTagAndDigestThenPushesUnderAnotherNameMountingTheLayersItPulled() throws {
        try requireTools("podman")
        let server = try RegistryServer()
        defer { server.stop() }
        let sandbox = try ContainerToolSandbox(path: "\(server.directory.path)/podman")
        let source = try ImageBuilder.build(layout: "\(server.directory.path)/source", tag: "v1",
                                            layerSizes: [700_000, 200_000], seed: 51)
        try pushWithSkopeo(server, "oci:\(source):v1", to: "team/base:v1")
        let (baseBody, base) = try manifest(server, "team/base", "v1")
        let baseDigest = Shell.sha256Digest(baseBody)
        let config = try blob(server, "team/base", base.config.digest)

        let pull = sandbox.podman(["pull", "--cert-dir", server.certDirectory, "\(server.host)/team/base:v1"])
        try #require(pull.succeeded, "\(pull.stderr)")
        // podman's image ID is the digest of the config it pulled.
        #expect(pull.stdout.split(separator: "\n").last.map(String.init) == String(base.config.digest.dropFirst("sha256:".count)))
        let byDigest = sandbox.podman(["pull", "--cert-dir", server.certDirectory, "\(server.host)/team/base@\(baseDigest)"])
        #expect(byDigest.succeeded, "\(byDigest.stderr)")
        #expect(byDigest.stdout == pull.stdout)

        let tag = sandbox.podman(["tag", "\(server.host)/team/base:v1", "\(server.host)/team/copy:v2"])
        try #require(tag.succeeded, "\(tag.stderr)")
        let push = sandbox.podman(["push", "--cert-dir", server.certDirectory, "\(server.host)/team/copy:v2"])
        try #require(push.succeeded, "\(push.stderr)")

        // podman knew where it had pulled each layer from and asked Berth to mount it.
        let requests = ClientTools.workerRequests(server)
        for layer in base.layers {
            let mountParameter = "mount=" + layer.digest.replacingOccurrences(of: ":", with: "%3A")
            let mount = requests.first { $0.method == "POST" && $0.uri.hasPrefix("/v2/team/copy/blobs/uploads/?")
                && $0.uri.contains("from=team%2Fbase") && $0.uri.contains(mountParameter) }
            #expect(mount?.status == 201, "no mount of \(layer.digest): \(requests)")
        }
        let (_, copy) = try manifest(server, "team/copy", "v2")
        #expect(copy.config.digest == base.config.digest)
        #expect(copy.layers.map(\.digest) == base.layers.map(\.digest))
        try expectImage(server, "team/copy", "v2", hasConfig: config)
        #expect(server.curl(["\(server.baseURL)/v2/team/copy/tags/list"]).text == "{\"name\":\"team/copy\",\"tags\":[\"v2\"]}")
        // The pushed image pulls back into a fresh store.
        let fresh = try ContainerToolSandbox(path: "\(server.directory.path)/podman-fresh")
        let again = fresh.podman(["pull", "--cert-dir", server.certDirectory, "\(server.host)/team/copy:v2"])
        #expect(again.succeeded, "\(again.stderr)")
        #expect(again.stdout == pull.stdout)
    }

    @Test func podmanManifestPushAllUploadsBothLocalImagesThenTheIndexNamingThem() throws {
        try requireTools("podman")
        let server = try RegistryServer()
        defer { server.stop() }
        let sandbox = try ContainerToolSandbox(path: "\(server.directory.path)/podman")
        let image = try MultiPlatformImage.build(
            layout: "\(server.directory.path)/source", tag: "v1",
            platforms: [.init(architecture: "amd64"), .init(architecture: "arm64")], layerSizes: [600_000, 90_000], seed: 52)

        // Both images come from an OCI layout, so podman has nothing to mount: every layer
        // is compressed again and uploaded. (podman names an image pulled from a layout
        // after its path, which must be lowercase: the temp folder's name is not.)
        let layout = "/tmp/berth-oci-\(UUID().uuidString.lowercased())"
        try FileManager.default.createSymbolicLink(atPath: layout, withDestinationPath: image.layout)
        defer { try? FileManager.default.removeItem(atPath: layout) }
        let list = "localhost/berth-test/list:v1"
        try #require(sandbox.podman(["manifest", "create", list]).succeeded)
        var configs: [String: Data] = [:]
        for child in image.children {
            let local = "localhost/berth-test/\(child.platform.architecture):v1"
            let pull = sandbox.podman(["pull", "oci:\(layout):\(child.tag)"])
            try #require(pull.succeeded, "\(pull.stderr)")
            try #require(sandbox.podman(["tag", pull.stdout.trimmingCharacters(in: .whitespacesAndNewlines), local]).succeeded)
            let add = sandbox.podman(["manifest", "add", list, "containers-storage:\(local)"])
            try #require(add.succeeded, "\(add.stderr)")
            let childManifest = try JSONDecoder().decode(ImageManifestDocument.self, from: Data(contentsOf: URL(
                fileURLWithPath: MultiPlatformImage.blobPath(layout: image.layout, digest: child.digest))))
            configs[child.platform.architecture] = FileManager.default.contents(
                atPath: MultiPlatformImage.blobPath(layout: image.layout, digest: childManifest.config.digest))
        }
        let push = sandbox.podman(["manifest", "push", "--all", "--cert-dir", server.certDirectory, list,
                                   "docker://\(server.host)/team/multi:v1"])
        try #require(push.succeeded, "\(push.stderr)")

        let answer = server.curl(["\(server.baseURL)/v2/team/multi/manifests/v1"])
        try #require(answer.status == 200)
        #expect(answer.header("Docker-Content-Digest") == Shell.sha256Digest(answer.body))
        let index = try JSONDecoder().decode(IndexDocument.self, from: answer.body)
        #expect(answer.header("Content-Type") == index.mediaType)
        #expect(["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"]
            .contains(index.mediaType))
        #expect(index.manifests.map(\.platform.architecture).sorted() == ["amd64", "arm64"])
        for entry in index.manifests {
            #expect(entry.platform.os == "linux")
            let child = server.curl(["\(server.baseURL)/v2/team/multi/manifests/\(entry.digest)"])
            #expect(child.status == 200)
            #expect(child.body.count == entry.size)
            #expect(child.header("Content-Type") == entry.mediaType)
            let config = try #require(configs[entry.platform.architecture])
            try expectImage(server, "team/multi", entry.digest, hasConfig: config)
        }

        // Children by digest first, then the index by tag; layers went up in upload sessions.
        let requests = ClientTools.workerRequests(server)
        let manifestPuts = requests.filter { $0.method == "PUT" && $0.uri.hasPrefix("/v2/team/multi/manifests/") }
        #expect(manifestPuts.map(\.uri).last == "/v2/team/multi/manifests/v1", "\(manifestPuts)")
        #expect(Set(manifestPuts.dropLast().map(\.uri)) == Set(index.manifests.map { "/v2/team/multi/manifests/\($0.digest)" }))
        #expect(manifestPuts.allSatisfy { $0.status == 201 }, "\(manifestPuts)")
        #expect(!requests.contains { $0.uri.contains("mount=") }, "\(requests)")
        #expect(requests.filter { $0.method == "PUT" && $0.uri.contains("/blobs/uploads/") && $0.status == 201 }.count == 6)

        // skopeo pulls the whole list back.
        let pulled = "\(server.directory.path)/pulled"
        let back = skopeo(server, ["copy", "--all", "--src-cert-dir", server.certDirectory,
                                   "docker://\(server.host)/team/multi:v1", "oci:\(pulled):v1"])
        #expect(back.succeeded, "\(back.stderr)")
        #expect(skopeo(server, ["inspect", "--raw", "oci:\(pulled):v1"]).stdout.data(using: .utf8) == answer.body)
    }

    // MARK: buildah

    @Test func buildahPullsThenPushesUnderAnotherNameAndTheImageArrivesWhole() throws {
        try requireTools("buildah")
        let server = try RegistryServer()
        defer { server.stop() }
        let sandbox = try ContainerToolSandbox(path: "\(server.directory.path)/buildah")
        let source = try ImageBuilder.build(layout: "\(server.directory.path)/source", tag: "v1",
                                            layerSizes: [500_000, 300_000, 100_000], seed: 53)
        try pushWithSkopeo(server, "oci:\(source):v1", to: "team/base:v1")
        let (_, base) = try manifest(server, "team/base", "v1")
        let config = try blob(server, "team/base", base.config.digest)

        let pull = sandbox.buildah(["pull", "--cert-dir", server.certDirectory, "\(server.host)/team/base:v1"])
        try #require(pull.succeeded, "\(pull.stderr)")
        #expect(pull.stdout.split(separator: "\n").last.map(String.init) == String(base.config.digest.dropFirst("sha256:".count)))
        try #require(sandbox.buildah(["tag", "\(server.host)/team/base:v1", "\(server.host)/other/app:v7"]).succeeded)
        let push = sandbox.buildah(["push", "--cert-dir", server.certDirectory, "\(server.host)/other/app:v7"])
        try #require(push.succeeded, "\(push.stderr)")

        let (_, pushed) = try manifest(server, "other/app", "v7")
        #expect(pushed.config.digest == base.config.digest)
        try expectImage(server, "other/app", "v7", hasConfig: config)
        #expect(server.curl(["\(server.baseURL)/v2/_catalog"]).text == "{\"repositories\":[\"other/app\",\"team/base\"]}")
        let inspect = skopeo(server, ["inspect", "--cert-dir", server.certDirectory, "docker://\(server.host)/other/app:v7"])
        #expect(inspect.succeeded, "\(inspect.stderr)")
        #expect(inspect.stdout.contains("\"Layers\": ["))
    }

    @Test func buildahManifestPushAllCopiesTheListedRegistryImagesByDigestThenTheIndex() throws {
        try requireTools("buildah")
        let server = try RegistryServer()
        defer { server.stop() }
        let sandbox = try ContainerToolSandbox(path: "\(server.directory.path)/buildah")
        let image = try MultiPlatformImage.build(
            layout: "\(server.directory.path)/source", tag: "v1",
            platforms: [.init(architecture: "amd64"), .init(architecture: "arm64")], layerSizes: [300_000], seed: 54)
        for child in image.children {
            try pushWithSkopeo(server, "oci:\(image.layout):\(child.tag)", to: "team/src:\(child.platform.architecture)")
        }

        let list = "\(server.host)/team/list:v1"
        try #require(sandbox.buildah(["manifest", "create", list]).succeeded)
        for child in image.children {
            let add = sandbox.buildah(["manifest", "add", "--cert-dir", server.certDirectory, list,
                                       "docker://\(server.host)/team/src:\(child.platform.architecture)"])
            try #require(add.succeeded, "\(add.stderr)")
            #expect(add.stdout.contains(child.digest), "\(add.stdout)")
        }
        let push = sandbox.buildah(["manifest", "push", "--all", "--cert-dir", server.certDirectory, list,
                                    "docker://\(server.host)/team/list:v1"])
        try #require(push.succeeded, "\(push.stderr)")

        let answer = server.curl(["\(server.baseURL)/v2/team/list/manifests/v1"])
        try #require(answer.status == 200)
        let index = try JSONDecoder().decode(IndexDocument.self, from: answer.body)
        #expect(answer.header("Content-Type") == index.mediaType)
        #expect(answer.header("Docker-Content-Digest") == Shell.sha256Digest(answer.body))
        // The children are the very manifests added, by digest, with the platforms of their configs.
        #expect(index.manifests.map(\.digest) == image.children.map(\.digest))
        #expect(index.manifests.map(\.platform.architecture) == ["amd64", "arm64"])
        for child in image.children {
            let copied = server.curl(["\(server.baseURL)/v2/team/list/manifests/\(child.digest)"])
            #expect(copied.status == 200)
            #expect(copied.body
                == FileManager.default.contents(atPath: MultiPlatformImage.blobPath(layout: image.layout, digest: child.digest)))
            for digest in try MultiPlatformImage.blobDigests(ofManifest: child.digest, in: image.layout).dropFirst() {
                #expect(try blob(server, "team/list", digest)
                    == FileManager.default.contents(atPath: MultiPlatformImage.blobPath(layout: image.layout, digest: digest)))
            }
        }
        let manifestPuts = ClientTools.workerRequests(server)
            .filter { $0.method == "PUT" && $0.uri.hasPrefix("/v2/team/list/manifests/") }
        #expect(manifestPuts.map(\.uri)
            == image.children.map { "/v2/team/list/manifests/\($0.digest)" } + ["/v2/team/list/manifests/v1"], "\(manifestPuts)")
        #expect(manifestPuts.allSatisfy { $0.status == 201 })
    }
}

struct ImageManifestDocument: Decodable {
    struct Descriptor: Decodable {
        let mediaType: String
        let digest: String
        let size: Int
    }
    let mediaType: String?
    let config: Descriptor
    let layers: [Descriptor]
}

struct ImageConfigDocument: Decodable {
    struct RootFS: Decodable { let diff_ids: [String] }
    let rootfs: RootFS
}

/// An OCI image index or Docker manifest list as the tests read it back.
struct IndexDocument: Decodable {
    struct Entry: Decodable {
        struct Platform: Decodable {
            let os: String
            let architecture: String
            let variant: String?
        }
        let mediaType: String
        let digest: String
        let size: Int
        let platform: Platform
    }
    let mediaType: String
    let manifests: [Entry]
}
