import Foundation
import Testing
import IntegrationSupport

/// The docker engine 20.10 (Debian's docker.io: dockerd on its own containerd, and the
/// 20.10 CLI) pushes to and pulls from Berth through real nginx with TLS.
@Suite(.serialized) struct DockerEngineTests {
    static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"

    @Test func pushedMultiLayerImageIsPulledBackWithItsImageIDAndTheDigestTheRegistryServes() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let engine = try DockerEngine(directory: "\(server.directory.path)/engine")
        defer { engine.stop() }
        let layout = try ImageBuilder.build(layout: "\(server.directory.path)/source", tag: "v1",
                                            layerSizes: [1 << 20, 300_000, 2 << 20], seed: 51)
        let source = try sourceImage(server, layout: layout, tag: "v1")
        let reference = "\(server.host)/team/app:v1"
        try load(engine, server, layout: layout, tag: "v1", as: reference)

        let push = engine.docker(["push", reference])
        try #require(push.succeeded, "docker push: \(push.stderr)\n\(push.stdout)\ndockerd:\n\(engine.log.suffix(3000))")
        let pushed = try #require(digest(after: "v1: digest: ", in: push.stdout), "\(push.stdout)")

        // The registry serves exactly the manifest docker pushed: a schema 2 manifest with
        // the three layers (recompressed by docker) and the config that names the image.
        let head = server.curl(["-I", "-H", "Accept: \(Self.dockerManifest)", "\(server.baseURL)/v2/team/app/manifests/v1"])
        #expect(head.status == 200)
        #expect(head.header("Docker-Content-Digest") == pushed)
        #expect(head.header("Content-Type") == Self.dockerManifest)
        let get = server.curl(["-H", "Accept: \(Self.dockerManifest)", "\(server.baseURL)/v2/team/app/manifests/v1"])
        #expect(Shell.sha256Digest(get.body) == pushed)
        let manifest = try JSONDecoder().decode(PushedManifest.self, from: get.body)
        #expect(manifest.mediaType == Self.dockerManifest)
        #expect(manifest.config.digest == source.configDigest)
        #expect(manifest.layers.count == 3)
        for blob in [manifest.config] + manifest.layers {
            let blobHead = server.curl(["-I", "\(server.baseURL)/v2/team/app/blobs/\(blob.digest)"])
            #expect(blobHead.status == 200 && blobHead.header("Content-Length") == String(blob.size), "\(blob.digest)")
        }
        // docker uploaded each blob with PATCH (chunked) and a closing PUT, all accepted.
        let requests = server.loggedRequests.filter { $0.uri.hasPrefix("/v2/team/app/") }
        #expect(requests.filter { $0.method == "PATCH" }.count == 4)
        #expect(requests.filter { $0.status >= 500 }.isEmpty, "\(requests)")

        // Gone from the engine, then pulled back: same image ID (the config digest), the
        // registry's digest recorded, the same uncompressed layers.
        let remove = engine.docker(["rmi", reference])
        #expect(remove.succeeded, "\(remove.stderr)")
        #expect(engine.docker(["images", "--quiet"]).stdout.isEmpty)
        let pull = engine.docker(["pull", reference])
        try #require(pull.succeeded, "docker pull: \(pull.stderr)\n\(pull.stdout)\ndockerd:\n\(engine.log.suffix(3000))")
        #expect(digest(after: "Digest: ", in: pull.stdout) == pushed)
        let inspect = engine.docker(["image", "inspect", "--format",
                                     "{{.Id}} {{json .RepoDigests}} {{json .RootFS.Layers}} {{.Os}}/{{.Architecture}}", reference])
        let fields = inspect.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").map(String.init)
        try #require(fields.count == 4, "\(inspect.stdout)\(inspect.stderr)")
        #expect(fields[0] == source.configDigest)
        #expect(fields[1] == "[\"\(server.host)/team/app@\(pushed)\"]")
        #expect(fields[2] == jsonArray(source.diffIDs))
        #expect(fields[3] == "linux/amd64")

        // containerd's ctr, on the engine's own containerd, resolves the same manifest.
        let hosts = try engine.containerd.hostsDirectory(for: server)
        let ctrPull = engine.containerd.ctr(["images", "pull", "--hosts-dir", hosts, "--snapshotter", "native", reference],
                                            namespace: "ctr-pull")
        #expect(ctrPull.succeeded, "ctr pull: \(ctrPull.stderr)\n\(ctrPull.stdout)")
        #expect(engine.containerd.imageDigest(reference, namespace: "ctr-pull") == pushed)
    }

    @Test func manifestListFromDockerManifestPushIsServedAsAManifestListWhoseChildrenResolveAndPull() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let engine = try DockerEngine(directory: "\(server.directory.path)/engine")
        defer { engine.stop() }
        let layout = "\(server.directory.path)/source"
        try ImageBuilder.build(layout: layout, tag: "amd64", layerSizes: [400_000, 200_000], seed: 61)
        try ImageBuilder.setPlatform(layout: layout, tag: "amd64", os: "linux", architecture: "amd64")
        try ImageBuilder.build(layout: layout, tag: "arm64", layerSizes: [300_000], seed: 62)
        try ImageBuilder.setPlatform(layout: layout, tag: "arm64", os: "linux", architecture: "arm64")

        // Each platform's image goes to its own repository with docker push.
        var childDigests: [String: String] = [:]
        var configDigests: [String: String] = [:]
        for architecture in ["amd64", "arm64"] {
            let reference = "\(server.host)/team/app-\(architecture):v1"
            try load(engine, server, layout: layout, tag: architecture, as: reference)
            configDigests[architecture] = try sourceImage(server, layout: layout, tag: architecture).configDigest
            let push = engine.docker(["push", reference])
            try #require(push.succeeded, "docker push: \(push.stderr)\n\(push.stdout)")
            let pushed = try #require(digest(after: "v1: digest: ", in: push.stdout), "\(push.stdout)")
            childDigests[architecture] = pushed
        }

        // docker manifest create/annotate/push (the CLI alone, no daemon), through a plain
        // TCP to TLS forwarder: see PlainToTLSForwarder for why.
        let forwarder = try PlainToTLSForwarder(to: server, logFile: "\(server.directory.path)/socat.log")
        defer { forwarder.stop() }
        let list = "\(forwarder.host)/team/app:v1"
        let create = engine.docker(["manifest", "create", "--insecure", list,
                                    "\(forwarder.host)/team/app-amd64:v1", "\(forwarder.host)/team/app-arm64:v1"])
        try #require(create.succeeded, "docker manifest create: \(create.stderr)\n\(create.stdout)")
        let annotate = engine.docker(["manifest", "annotate", "--os", "linux", "--arch", "arm64", "--variant", "v8",
                                      list, "\(forwarder.host)/team/app-arm64:v1"])
        try #require(annotate.succeeded, "docker manifest annotate: \(annotate.stderr)")
        let push = engine.docker(["manifest", "push", "--insecure", list])
        try #require(push.succeeded, "docker manifest push: \(push.stderr)\n\(push.stdout)")
        // It prints each child it pushed into team/app, then the list's digest.
        let lines = push.stdout.split(separator: "\n").map(String.init)
        let listDigest = lines.last ?? ""
        #expect(listDigest.hasPrefix("sha256:") && listDigest.count == 71, "\(push.stdout)")
        for architecture in ["amd64", "arm64"] {
            #expect(lines.contains("Pushed ref \(forwarder.host)/team/app@\(childDigests[architecture]!) with digest: \(childDigests[architecture]!)"),
                    "\(push.stdout)")
        }

        // The CLI mounted every child blob from the child repositories (201 each), then
        // pushed the children by digest and the list by tag.
        let requests = server.loggedRequests
        let mounts = requests.filter { $0.method == "POST" && $0.uri.hasPrefix("/v2/team/app/blobs/uploads/?") }
        #expect(mounts.count == 5 && mounts.allSatisfy { $0.status == 201 && $0.uri.contains("mount=") }, "\(mounts)")
        let manifestPuts = requests.filter { $0.method == "PUT" && $0.uri.hasPrefix("/v2/team/app/manifests/") }
        #expect(manifestPuts.map(\.uri).suffix(1) == ["/v2/team/app/manifests/v1"], "\(manifestPuts)")
        #expect(Set(manifestPuts.dropLast().map(\.uri)) == Set(childDigests.values.map { "/v2/team/app/manifests/\($0)" }))
        #expect(manifestPuts.allSatisfy { $0.status == 201 }, "\(manifestPuts)")

        let served = server.curl(["-H", "Accept: \(Self.dockerManifestList)", "\(server.baseURL)/v2/team/app/manifests/v1"])
        #expect(served.status == 200)
        #expect(served.header("Content-Type") == Self.dockerManifestList)
        #expect(served.header("Docker-Content-Digest") == listDigest)
        #expect(Shell.sha256Digest(served.body) == listDigest)
        let index = try JSONDecoder().decode(IndexDocument.self, from: served.body)
        #expect(index.mediaType == Self.dockerManifestList)
        let platforms = Dictionary(uniqueKeysWithValues: index.manifests.map {
            ($0.digest, "\($0.platform.os)/\($0.platform.architecture)" + ($0.platform.variant.map { "/\($0)" } ?? ""))
        })
        #expect(platforms == [childDigests["amd64"]!: "linux/amd64", childDigests["arm64"]!: "linux/arm64/v8"])
        for child in index.manifests {
            #expect(child.mediaType == Self.dockerManifest)
            let head = server.curl(["-I", "-H", "Accept: \(Self.dockerManifest)", "\(server.baseURL)/v2/team/app/manifests/\(child.digest)"])
            #expect(head.status == 200 && head.header("Docker-Content-Digest") == child.digest, "\(child.digest)")
            #expect(head.header("Content-Type") == Self.dockerManifest)
            #expect(head.header("Content-Length") == String(child.size))
            let body = server.curl(["-H", "Accept: \(Self.dockerManifest)", "\(server.baseURL)/v2/team/app/manifests/\(child.digest)"]).body
            let manifest = try JSONDecoder().decode(PushedManifest.self, from: body)
            for blob in [manifest.config] + manifest.layers {
                let blobHead = server.curl(["-I", "\(server.baseURL)/v2/team/app/blobs/\(blob.digest)"])
                #expect(blobHead.status == 200, "blob \(blob.digest) of \(child.digest) in team/app")
            }
        }

        // The engine pulls the list by tag over TLS and gets its own platform's image.
        for architecture in ["amd64", "arm64"] {
            let remove = engine.docker(["rmi", "\(server.host)/team/app-\(architecture):v1"])
            #expect(remove.succeeded, "\(remove.stderr)")
        }
        let pull = engine.docker(["pull", "\(server.host)/team/app:v1"])
        try #require(pull.succeeded, "docker pull: \(pull.stderr)\n\(pull.stdout)\ndockerd:\n\(engine.log.suffix(3000))")
        #expect(digest(after: "Digest: ", in: pull.stdout) == listDigest)
        let inspect = engine.docker(["image", "inspect", "--format", "{{.Id}} {{json .RepoDigests}}", "\(server.host)/team/app:v1"])
        #expect(inspect.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            == "\(configDigests["amd64"]!) [\"\(server.host)/team/app@\(listDigest)\"]", "\(inspect.stderr)")
    }

    // MARK: - helpers

    /// skopeo with its own blob-info cache under the server's directory.
    func skopeo(_ server: RegistryServer, _ arguments: [String]) -> Shell.Result {
        Shell.run("skopeo", arguments, environment: [
            "XDG_DATA_HOME": "\(server.directory.path)/xdg", "_CONTAINERS_ROOTLESS_UID": "1000",
            "HOME": server.directory.path,
        ], timeout: 120)
    }

    /// Puts `layout:tag` into the engine as `reference`, without any registry: skopeo
    /// writes a docker-archive, `docker load` reads it.
    func load(_ engine: DockerEngine, _ server: RegistryServer, layout: String, tag: String, as reference: String) throws {
        let archive = "\(server.directory.path)/\(tag).docker.tar"
        let copy = skopeo(server, ["copy", "oci:\(layout):\(tag)", "docker-archive:\(archive):\(reference)"])
        try #require(copy.succeeded, "skopeo copy to docker-archive: \(copy.stderr)")
        let load = engine.docker(["load", "--input", archive])
        try #require(load.succeeded && load.stdout.contains("Loaded image: \(reference)"),
                     "docker load: \(load.stderr)\n\(load.stdout)\ndockerd:\n\(engine.log.suffix(3000))")
    }

    /// The config digest and uncompressed layer digests of `layout:tag`.
    func sourceImage(_ server: RegistryServer, layout: String, tag: String) throws -> (configDigest: String, diffIDs: [String]) {
        let raw = skopeo(server, ["inspect", "--raw", "oci:\(layout):\(tag)"])
        let manifest = try JSONDecoder().decode(PushedManifest.self, from: Data(raw.stdout.utf8))
        let hex = manifest.config.digest.dropFirst("sha256:".count)
        let config = try JSONDecoder().decode(ImageConfig.self,
                                              from: Data(contentsOf: URL(fileURLWithPath: "\(layout)/blobs/sha256/\(hex)")))
        return (manifest.config.digest, config.rootfs.diff_ids)
    }

    /// The `sha256:…` digest that follows `marker` in a client's output.
    func digest(after marker: String, in output: String) -> String? {
        guard let range = output.range(of: marker) else { return nil }
        let digest = output[range.upperBound...].prefix { !$0.isWhitespace }
        return digest.hasPrefix("sha256:") ? String(digest) : nil
    }

    func jsonArray(_ strings: [String]) -> String {
        "[" + strings.map { "\"\($0)\"" }.joined(separator: ",") + "]"
    }
}

private struct PushedManifest: Decodable {
    struct Descriptor: Decodable {
        let digest: String
        let size: Int
    }
    let mediaType: String?
    let config: Descriptor
    let layers: [Descriptor]
}

private struct ImageConfig: Decodable {
    struct RootFS: Decodable { let diff_ids: [String] }
    let rootfs: RootFS
}
