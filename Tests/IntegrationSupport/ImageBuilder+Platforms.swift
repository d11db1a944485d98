import Foundation

extension ImageBuilder {
    /// Sets the os and architecture in the config of `layout:tag` (umoci config) and
    /// drops the replaced manifest and config.
    public static func setPlatform(layout: String, tag: String, os: String, architecture: String) throws {
        try checked(Shell.run("umoci", ["config", "--image", "\(layout):\(tag)", "--os", os, "--architecture", architecture]))
        try checked(Shell.run("umoci", ["gc", "--layout", layout]))
    }

    /// One child of an image index: the manifest tagged `tag` in the layout, and the
    /// platform the index says it is for.
    public struct IndexChild: Sendable {
        public let tag: String
        public let os: String
        public let architecture: String
        public let variant: String?

        public init(tag: String, os: String, architecture: String, variant: String? = nil) {
            self.tag = tag
            self.os = os
            self.architecture = architecture
            self.variant = variant
        }
    }

    /// Writes an OCI image index whose children are the manifests tagged in `children`
    /// into the layout's blobs and tags it `tag`. Returns the index's digest.
    @discardableResult
    public static func addIndex(layout: String, tag: String, children: [IndexChild]) throws -> String {
        let indexPath = "\(layout)/index.json"
        guard var top = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: indexPath))) as? [String: Any],
              let entries = top["manifests"] as? [[String: Any]]
        else { throw ImageBuilderError.failed("\(indexPath) is not an image index") }
        func refName(_ entry: [String: Any]) -> String? {
            (entry["annotations"] as? [String: String])?["org.opencontainers.image.ref.name"]
        }
        var descriptors: [[String: Any]] = []
        for child in children {
            guard let entry = entries.first(where: { refName($0) == child.tag }) else {
                throw ImageBuilderError.failed("no manifest tagged \(child.tag) in \(layout)")
            }
            var platform: [String: Any] = ["os": child.os, "architecture": child.architecture]
            if let variant = child.variant { platform["variant"] = variant }
            descriptors.append([
                "mediaType": entry["mediaType"] ?? "application/vnd.oci.image.manifest.v1+json",
                "digest": entry["digest"] ?? "", "size": entry["size"] ?? 0, "platform": platform,
            ])
        }
        let index: [String: Any] = [
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descriptors,
        ]
        let body = try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys, .withoutEscapingSlashes])
        let digest = Shell.sha256Digest(body)
        try body.write(to: URL(fileURLWithPath: "\(layout)/blobs/sha256/\(digest.dropFirst("sha256:".count))"))
        top["manifests"] = entries.filter { refName($0) != tag } + [[
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": body.count,
            "annotations": ["org.opencontainers.image.ref.name": tag],
        ]]
        try JSONSerialization.data(withJSONObject: top, options: [.sortedKeys, .withoutEscapingSlashes]).write(to: URL(fileURLWithPath: indexPath))
        return digest
    }

    private static func checked(_ result: Shell.Result) throws {
        guard result.succeeded else { throw ImageBuilderError.failed(result.stderr + result.stdout) }
    }
}
