import Foundation

/// A multi-platform OCI image in one image layout: one real single-platform image per
/// platform (built by `ImageBuilder` with umoci, its config saying its os and
/// architecture) and an OCI image index naming them, tagged in the layout's
/// `index.json`. umoci cannot write indexes, so the index is written here, byte for byte
/// known to the test.
public struct MultiPlatformImage: Sendable {
    /// The platform of one child, as the index's descriptor states it.
    public struct Platform: Sendable, Hashable, CustomStringConvertible {
        public let os: String
        public let architecture: String
        public let variant: String?

        public init(os: String = "linux", architecture: String, variant: String? = nil) {
            self.os = os
            self.architecture = architecture
            self.variant = variant
        }

        public var description: String { [os, architecture, variant].compactMap { $0 }.joined(separator: "/") }
    }

    /// One image of the index: its manifest as the index names it, and the tag it also
    /// has in the layout.
    public struct Child: Sendable {
        public let platform: Platform
        public let tag: String
        public let digest: String
        public let size: Int
        public let mediaType: String
    }

    public static let indexMediaType = "application/vnd.oci.image.index.v1+json"

    /// The image layout holding everything.
    public let layout: String
    /// The tag of the index in the layout.
    public let tag: String
    /// The index's exact bytes and their digest.
    public let indexBody: Data
    public let indexDigest: String
    public let children: [Child]

    /// Builds one image per platform into `layout` (created if missing; each child gets
    /// its own layers from `layerSizes` and a seed derived from `seed`), then writes
    /// their index and tags it `tag`. Each child is also tagged `<tag>-<os>-<arch>`.
    public static func build(layout: String, tag: String, platforms: [Platform], layerSizes: [Int],
                             seed: UInt64) throws -> MultiPlatformImage {
        var children: [Child] = []
        for (position, platform) in platforms.enumerated() {
            let childTag = ([tag, platform.os, platform.architecture] + [platform.variant].compactMap { $0 })
                .joined(separator: "-")
            try ImageBuilder.build(layout: layout, tag: childTag, layerSizes: layerSizes, seed: seed &+ UInt64(position) &* 7919)
            try umoci(["config", "--image", "\(layout):\(childTag)", "--os", platform.os,
                       "--architecture", platform.architecture])
            try umoci(["gc", "--layout", layout])
            guard let entry = try tagEntries(layout).first(where: { refName($0) == childTag }),
                  let digest = entry["digest"] as? String, let size = entry["size"] as? Int
            else { throw MultiPlatformImageError.layout("no manifest tagged \(childTag) in \(layout)") }
            children.append(Child(platform: platform, tag: childTag, digest: digest, size: size,
                                  mediaType: entry["mediaType"] as? String ?? "application/vnd.oci.image.manifest.v1+json"))
        }

        let descriptors: [[String: Any]] = children.map { child in
            var platform: [String: Any] = ["os": child.platform.os, "architecture": child.platform.architecture]
            if let variant = child.platform.variant { platform["variant"] = variant }
            return ["mediaType": child.mediaType, "digest": child.digest, "size": child.size, "platform": platform]
        }
        let index: [String: Any] = [
            "schemaVersion": 2, "mediaType": indexMediaType, "manifests": descriptors,
        ]
        let body = try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys, .withoutEscapingSlashes])
        let digest = Shell.sha256Digest(body)
        try body.write(to: URL(fileURLWithPath: "\(layout)/blobs/sha256/\(digest.dropFirst("sha256:".count))"))

        let indexPath = "\(layout)/index.json"
        guard var top = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: indexPath))) as? [String: Any]
        else { throw MultiPlatformImageError.layout("\(indexPath) is not an image index") }
        top["manifests"] = try tagEntries(layout).filter { refName($0) != tag } + [[
            "mediaType": indexMediaType, "digest": digest, "size": body.count,
            "annotations": ["org.opencontainers.image.ref.name": tag],
        ]]
        try JSONSerialization.data(withJSONObject: top, options: [.sortedKeys, .withoutEscapingSlashes])
            .write(to: URL(fileURLWithPath: indexPath))
        return MultiPlatformImage(layout: layout, tag: tag, indexBody: body, indexDigest: digest, children: children)
    }

    /// The path of a blob (layer, config, manifest or index) in an image layout.
    public static func blobPath(layout: String, digest: String) -> String {
        "\(layout)/blobs/\(digest.replacingOccurrences(of: ":", with: "/"))"
    }

    /// Every blob a child image is made of (manifest, config, layers), read from `layout`.
    public static func blobDigests(ofManifest digest: String, in layout: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: blobPath(layout: layout, digest: digest)),
              let manifest = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let config = manifest["config"] as? [String: Any], let configDigest = config["digest"] as? String,
              let layers = manifest["layers"] as? [[String: Any]]
        else { throw MultiPlatformImageError.layout("manifest \(digest) is missing or not an image manifest in \(layout)") }
        return [digest, configDigest] + layers.compactMap { $0["digest"] as? String }
    }

    private static func tagEntries(_ layout: String) throws -> [[String: Any]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(layout)/index.json"))
        return ((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["manifests"] as? [[String: Any]]) ?? []
    }

    private static func refName(_ entry: [String: Any]) -> String? {
        (entry["annotations"] as? [String: String])?["org.opencontainers.image.ref.name"]
    }

    private static func umoci(_ arguments: [String]) throws {
        let result = Shell.run("umoci", arguments)
        guard result.succeeded else {
            throw MultiPlatformImageError.layout("umoci \(arguments.joined(separator: " ")): \(result.stderr)")
        }
    }

    public enum MultiPlatformImageError: Error, CustomStringConvertible {
        case layout(String)
        public var description: String {
            switch self { case .layout(let text): "multi-platform image: \(text)" }
        }
    }
}
