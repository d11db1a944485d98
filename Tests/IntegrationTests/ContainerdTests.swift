import Foundation
import Testing
import IntegrationSupport

/// containerd 1.6's `ctr` pushes to and pulls from Berth through real nginx with TLS
/// (hosts.toml with the server's CA). ctr never PATCHes: it sends each blob in one PUT
/// and fails unless every PUT answer carries Docker-Content-Digest.
@Suite(.serialized) struct ContainerdTests {
    static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    static let ociIndex = "application/vnd.oci.image.index.v1+json"

    @Test func ctrPushesEachBlobInOneMonolithicPutAndAFreshNamespacePullsTheSameDigestsBack() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let containerd = try Containerd(directory: "\(server.directory.path)/containerd")
        defer { containerd.stop() }
        let hosts = try containerd.hostsDirectory(for: server)
        let layout = try ImageBuilder.build(layout: "\(server.directory.path)/source", tag: "v1",
                                            layerSizes: [1 << 20, 300_000, 2 << 20], seed: 71)
        let manifestDigest = try taggedDigest(layout: layout, tag: "v1")
        let blobs = try blobDigests(layout: layout, manifest: manifestDigest)
        #expect(blobs.count == 4)
        let reference = "\(server.host)/ctr/app:v1"
        try importArchive(containerd, server, layout: layout, tag: "v1", baseName: "\(server.host)/ctr/app", namespace: "push")
        #expect(containerd.imageDigest(reference, namespace: "push") == manifestDigest)

        let push = containerd.ctr(["images", "push", "--hosts-dir", hosts, reference], namespace: "push")
        try #require(push.succeeded, "ctr push: \(push.stderr)\n\(push.stdout)\nworker:\n\(server.workerLog.suffix(4000))")

        // One POST and one PUT ?digest= per blob, never a PATCH; then the manifest by tag.
        let requests = server.loggedRequests.filter { $0.uri.hasPrefix("/v2/ctr/app/") }
        #expect(!requests.contains { $0.method == "PATCH" }, "\(requests)")
        let blobPuts = requests.filter { $0.method == "PUT" && $0.uri.contains("/blobs/uploads/") }
        #expect(blobPuts.count == blobs.count && blobPuts.allSatisfy { $0.status == 201 && $0.uri.contains("?digest=") },
                "\(blobPuts)")
        #expect(requests.contains { $0.method == "PUT" && $0.uri == "/v2/ctr/app/manifests/v1" && $0.status == 201 })

        // The registry holds ctr's bytes exactly: the manifest under its digest, every blob.
        let head = server.curl(["-I", "-H", "Accept: \(Self.ociManifest)", "\(server.baseURL)/v2/ctr/app/manifests/v1"])
        #expect(head.status == 200)
        #expect(head.header("Docker-Content-Digest") == manifestDigest)
        #expect(head.header("Content-Type") == Self.ociManifest)
        for digest in blobs {
            let hex = digest.dropFirst("sha256:".count)
            let stored = FileManager.default.contents(atPath: "\(server.store)/ctr/app/blobs/sha256/\(hex)")
            #expect(stored != nil && stored == FileManager.default.contents(atPath: "\(layout)/blobs/sha256/\(hex)"), "\(digest)")
        }

        // A namespace that holds nothing (content is isolated per namespace) pulls and
        // unpacks it: every blob comes from the registry and the digests are the same.
        #expect(containerd.contentDigests(namespace: "pull").isEmpty)
        let pull = containerd.ctr(["images", "pull", "--hosts-dir", hosts, "--snapshotter", "native", reference], namespace: "pull")
        try #require(pull.succeeded, "ctr pull: \(pull.stderr)\n\(pull.stdout)")
        #expect(pull.stdout.contains("unpacking linux/amd64 \(manifestDigest)"), "\(pull.stdout)")
        #expect(containerd.imageDigest(reference, namespace: "pull") == manifestDigest)
        #expect(containerd.contentDigests(namespace: "pull") == Set(blobs + [manifestDigest]))
        let reads = server.loggedRequests.filter { $0.method == "GET" && $0.status == 200 }.map(\.uri)
        for digest in blobs {
            #expect(reads.contains("/v2/ctr/app/blobs/\(digest)"), "GET of \(digest)")
        }
    }

    @Test func ctrPushesAMultiPlatformIndexAfterItsChildrenAndPullsEveryPlatformBack() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let containerd = try Containerd(directory: "\(server.directory.path)/containerd")
        defer { containerd.stop() }
        let hosts = try containerd.hostsDirectory(for: server)
        let image = try buildTwoPlatformLayout(server)
        let reference = "\(server.host)/ctr/multi:v1"
        try importArchive(containerd, server, layout: image.layout, tag: "v1", baseName: "\(server.host)/ctr/multi",
                          namespace: "push", allPlatforms: true)
        #expect(containerd.imageDigest(reference, namespace: "push") == image.index)

        let push = containerd.ctr(["images", "push", "--hosts-dir", hosts, reference], namespace: "push")
        try #require(push.succeeded, "ctr push: \(push.stderr)\n\(push.stdout)\nworker:\n\(server.workerLog.suffix(4000))")

        // Children first, by digest, then the index by tag; all accepted.
        let manifestPuts = server.loggedRequests.filter { $0.method == "PUT" && $0.uri.hasPrefix("/v2/ctr/multi/manifests/") }
        #expect(manifestPuts.map(\.uri).suffix(1) == ["/v2/ctr/multi/manifests/v1"], "\(manifestPuts)")
        #expect(Set(manifestPuts.dropLast().map(\.uri)) == Set([image.amd64, image.arm64].map { "/v2/ctr/multi/manifests/\($0)" }),
                "\(manifestPuts)")
        #expect(manifestPuts.allSatisfy { $0.status == 201 }, "\(manifestPuts)")
        #expect(!server.loggedRequests.contains { $0.method == "PATCH" })

        // The index is served as an OCI index, byte-exact, and both children resolve.
        let served = server.curl(["-H", "Accept: \(Self.ociIndex)", "\(server.baseURL)/v2/ctr/multi/manifests/v1"])
        #expect(served.status == 200)
        #expect(served.header("Content-Type") == Self.ociIndex)
        #expect(served.header("Docker-Content-Digest") == image.index)
        #expect(Shell.sha256Digest(served.body) == image.index)
        for child in [image.amd64, image.arm64] {
            let head = server.curl(["-I", "-H", "Accept: \(Self.ociManifest)", "\(server.baseURL)/v2/ctr/multi/manifests/\(child)"])
            #expect(head.status == 200 && head.header("Docker-Content-Digest") == child, "\(child)")
            #expect(head.header("Content-Type") == Self.ociManifest)
        }

        // A fresh namespace pulls all platforms: the same index and every blob of both.
        let pull = containerd.ctr(["images", "pull", "--hosts-dir", hosts, "--snapshotter", "native", "--all-platforms", reference],
                                  namespace: "pull")
        try #require(pull.succeeded, "ctr pull: \(pull.stderr)\n\(pull.stdout)")
        #expect(containerd.imageDigest(reference, namespace: "pull") == image.index)
        #expect(containerd.contentDigests(namespace: "pull") == image.everyDigest)
    }

    @Test func ctrPushOfOnePlatformOfAnIndexSendsOnlyThatImageAndItPullsBack() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let containerd = try Containerd(directory: "\(server.directory.path)/containerd")
        defer { containerd.stop() }
        let hosts = try containerd.hostsDirectory(for: server)
        let image = try buildTwoPlatformLayout(server)
        let local = "\(server.host)/ctr/multi:v1"
        try importArchive(containerd, server, layout: image.layout, tag: "v1", baseName: "\(server.host)/ctr/multi",
                          namespace: "push", allPlatforms: true)

        let remote = "\(server.host)/ctr/arm:v1"
        let push = containerd.ctr(["images", "push", "--hosts-dir", hosts, "--platform", "linux/arm64", remote, local],
                                  namespace: "push")
        try #require(push.succeeded, "ctr push: \(push.stderr)\n\(push.stdout)\nworker:\n\(server.workerLog.suffix(4000))")

        let head = server.curl(["-I", "-H", "Accept: \(Self.ociManifest), \(Self.ociIndex)", "\(server.baseURL)/v2/ctr/arm/manifests/v1"])
        #expect(head.status == 200)
        #expect(head.header("Docker-Content-Digest") == image.arm64)
        #expect(head.header("Content-Type") == Self.ociManifest)
        for digest in try blobDigests(layout: image.layout, manifest: image.arm64) {
            #expect(server.curl(["-I", "\(server.baseURL)/v2/ctr/arm/blobs/\(digest)"]).status == 200, "\(digest)")
        }
        for digest in try blobDigests(layout: image.layout, manifest: image.amd64) {
            let missing = server.curl(["\(server.baseURL)/v2/ctr/arm/blobs/\(digest)"])
            #expect(missing.status == 404 && missing.errorCode == "BLOB_UNKNOWN", "\(digest)")
        }

        let pull = containerd.ctr(["images", "pull", "--hosts-dir", hosts, "--snapshotter", "native",
                                   "--platform", "linux/arm64", remote], namespace: "pull")
        try #require(pull.succeeded, "ctr pull: \(pull.stderr)\n\(pull.stdout)")
        #expect(containerd.imageDigest(remote, namespace: "pull") == image.arm64)
        #expect(containerd.contentDigests(namespace: "pull")
            == Set(try blobDigests(layout: image.layout, manifest: image.arm64) + [image.arm64]))
    }

    // MARK: - helpers

    struct TwoPlatformLayout {
        let layout: String
        let index: String
        let amd64: String
        let arm64: String
        let everyDigest: Set<String>
    }

    /// An OCI layout with a linux/amd64 image (two layers), a linux/arm64/v8 image (one
    /// layer) and an OCI index of both tagged `v1`.
    func buildTwoPlatformLayout(_ server: RegistryServer) throws -> TwoPlatformLayout {
        let layout = "\(server.directory.path)/source"
        try ImageBuilder.build(layout: layout, tag: "amd64", layerSizes: [500_000, 250_000], seed: 81)
        try ImageBuilder.setPlatform(layout: layout, tag: "amd64", os: "linux", architecture: "amd64")
        try ImageBuilder.build(layout: layout, tag: "arm64", layerSizes: [400_000], seed: 82)
        try ImageBuilder.setPlatform(layout: layout, tag: "arm64", os: "linux", architecture: "arm64")
        let index = try ImageBuilder.addIndex(layout: layout, tag: "v1", children: [
            .init(tag: "amd64", os: "linux", architecture: "amd64"),
            .init(tag: "arm64", os: "linux", architecture: "arm64", variant: "v8"),
        ])
        let amd64 = try taggedDigest(layout: layout, tag: "amd64"), arm64 = try taggedDigest(layout: layout, tag: "arm64")
        let every = Set([index, amd64, arm64] + (try blobDigests(layout: layout, manifest: amd64))
            + (try blobDigests(layout: layout, manifest: arm64)))
        #expect(every.count == 8)
        return TwoPlatformLayout(layout: layout, index: index, amd64: amd64, arm64: arm64, everyDigest: every)
    }

    /// Gets `layout:tag` into containerd the way an air-gapped site would: skopeo writes
    /// an OCI archive, `ctr images import` reads it (no unpacking) as `<baseName>:<tag>`.
    func importArchive(_ containerd: Containerd, _ server: RegistryServer, layout: String, tag: String, baseName: String,
                       namespace: String, allPlatforms: Bool = false) throws {
        let archive = "\(server.directory.path)/\(tag).oci.tar"
        let copy = Shell.run("skopeo", (allPlatforms ? ["copy", "--all"] : ["copy"])
            + ["oci:\(layout):\(tag)", "oci-archive:\(archive):\(tag)"], environment: [
                "XDG_DATA_HOME": "\(server.directory.path)/xdg", "_CONTAINERS_ROOTLESS_UID": "1000",
                "HOME": server.directory.path,
            ], timeout: 120)
        try #require(copy.succeeded, "skopeo copy to oci-archive: \(copy.stderr)")
        let imported = containerd.ctr(["images", "import", "--no-unpack", "--base-name", baseName]
            + (allPlatforms ? ["--all-platforms"] : []) + [archive], namespace: namespace)
        try #require(imported.succeeded, "ctr import: \(imported.stderr)\n\(imported.stdout)\ncontainerd:\n\(containerd.log.suffix(3000))")
    }

    /// The digest of the manifest (or index) tagged `tag` in an OCI layout.
    func taggedDigest(layout: String, tag: String) throws -> String {
        let index = try JSONDecoder().decode(LayoutIndex.self, from: Data(contentsOf: URL(fileURLWithPath: "\(layout)/index.json")))
        return try #require(index.manifests.first { $0.annotations?["org.opencontainers.image.ref.name"] == tag }?.digest,
                            "no \(tag) in \(layout)")
    }

    /// The config and layer digests of the manifest `manifest` in an OCI layout.
    func blobDigests(layout: String, manifest: String) throws -> [String] {
        let path = "\(layout)/blobs/sha256/\(manifest.dropFirst("sha256:".count))"
        let decoded = try JSONDecoder().decode(LayoutManifest.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        return [decoded.config.digest] + decoded.layers.map(\.digest)
    }
}

private struct LayoutIndex: Decodable {
    struct Entry: Decodable {
        let digest: String
        let annotations: [String: String]?
    }
    let manifests: [Entry]
}

private struct LayoutManifest: Decodable {
    struct Descriptor: Decodable { let digest: String }
    let config: Descriptor
    let layers: [Descriptor]
}
