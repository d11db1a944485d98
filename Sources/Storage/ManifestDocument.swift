#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A manifest body parsed far enough to validate it and to know what it references.
/// Parsing is pure: whether the referenced blobs exist is `ManifestStore`'s check.
public struct ManifestDocument: Sendable {
    public static let maximumSize = 4 << 20

    /// A descriptor inside a manifest, with its digest validated.
    public struct Reference: Sendable, Equatable {
        public let mediaType: String
        public let digest: Digest
        public let size: Int64
        public let artifactType: String?
        public let annotations: [String: String]?
    }

    /// The media type the manifest is stored and served with.
    public let mediaType: String
    /// Config and layers of an image manifest; empty for an index.
    public let blobs: [Reference]
    /// Children of an index; empty for an image manifest.
    public let children: [Reference]
    /// The manifest this one refers to (referrers API).
    public let subject: Reference?
    /// `artifactType`, or else the config's media type (as the referrers API reports it).
    public let artifactType: String?
    public let annotations: [String: String]?

    /// Parses and validates `body`, declared as `contentType` (may be nil or generic).
    /// Throws `StorageError.manifestInvalid` with a reason a person can act on.
    public init(body: [UInt8], contentType: String?) throws(StorageError) {
        let wire: WireManifest
        do {
            wire = try JSONDecoder().decode(WireManifest.self, from: Data(body))
        } catch {
            throw .manifestInvalid("body is not a valid manifest JSON document: \(Self.describe(error))")
        }
        let declared = contentType.map(Self.essence).flatMap { $0.isEmpty ? nil : $0 }
        if let declared, MediaType.schema1.contains(declared) || wire.schemaVersion == 1 {
            throw .manifestInvalid("Docker schema 1 manifests are not supported; push schema 2 or OCI")
        }
        if wire.schemaVersion == 1 {
            throw .manifestInvalid("Docker schema 1 manifests are not supported; push schema 2 or OCI")
        }
        guard wire.schemaVersion == 2 else {
            throw .manifestInvalid("schemaVersion must be 2, found \(wire.schemaVersion.map(String.init) ?? "none")")
        }
        let mediaType = try Self.resolveMediaType(declared: declared, inBody: wire.mediaType, wire: wire)

        let subject = try wire.subject.map { (descriptor) throws(StorageError) in try Self.reference(descriptor, field: "subject") }
        if MediaType.indexes.contains(mediaType) {
            guard let manifests = wire.manifests else { throw .manifestInvalid("an index needs a \"manifests\" array") }
            var children: [Reference] = []
            for (position, descriptor) in manifests.enumerated() {
                children.append(try Self.reference(descriptor, field: "manifests[\(position)]"))
            }
            self.children = children
            self.blobs = []
            self.artifactType = wire.artifactType
        } else {
            guard let config = wire.config else { throw .manifestInvalid("an image manifest needs a \"config\" descriptor") }
            guard let layers = wire.layers else { throw .manifestInvalid("an image manifest needs a \"layers\" array") }
            var blobs = [try Self.reference(config, field: "config")]
            for (position, descriptor) in layers.enumerated() {
                blobs.append(try Self.reference(descriptor, field: "layers[\(position)]"))
            }
            self.blobs = blobs
            self.children = []
            self.artifactType = wire.artifactType ?? config.mediaType
        }
        self.mediaType = mediaType
        self.subject = subject
        self.annotations = wire.annotations
    }

    /// The layers and config the registry must hold (non-distributable layers excepted).
    public var requiredBlobs: [Reference] {
        blobs.filter { !MediaType.isNonDistributable($0.mediaType) }
    }

    private static func resolveMediaType(declared: String?, inBody: String?, wire: WireManifest) throws(StorageError) -> String {
        let declaredManifestType = declared.flatMap { MediaType.manifests.contains($0) ? $0 : nil }
        if let inBody {
            if MediaType.schema1.contains(inBody) {
                throw .manifestInvalid("Docker schema 1 manifests are not supported; push schema 2 or OCI")
            }
            guard MediaType.manifests.contains(inBody) else {
                throw .manifestInvalid("unsupported manifest media type \"\(inBody)\"")
            }
            if let declaredManifestType, declaredManifestType != inBody {
                throw .manifestInvalid("Content-Type \(declaredManifestType) does not match the body's mediaType \(inBody)")
            }
            return inBody
        }
        if let declaredManifestType { return declaredManifestType }
        if let declared, declared != "application/json", declared != "application/octet-stream" {
            throw .manifestInvalid("unsupported manifest media type \"\(declared)\"")
        }
        // Neither says: OCI allows the field to be absent, so tell the kinds apart by shape.
        if wire.manifests != nil, wire.config == nil { return MediaType.ociIndex }
        if wire.config != nil { return MediaType.ociManifest }
        throw .manifestInvalid("cannot tell the manifest's media type: no mediaType, config or manifests")
    }

    private static func reference(_ wire: WireDescriptor, field: String) throws(StorageError) -> Reference {
        guard let digest = Digest(wire.digest) else {
            throw .manifestInvalid("\(field) has an invalid or unsupported digest \"\(wire.digest)\"")
        }
        guard wire.size >= 0 else { throw .manifestInvalid("\(field) has a negative size") }
        guard !wire.mediaType.isEmpty else { throw .manifestInvalid("\(field) has an empty mediaType") }
        return Reference(mediaType: wire.mediaType, digest: digest, size: wire.size,
                         artifactType: wire.artifactType, annotations: wire.annotations)
    }

    /// `type/subtype` without parameters, lowercased.
    static func essence(_ contentType: String) -> String {
        let base = contentType.split(separator: ";", maxSplits: 1).first ?? ""
        return String(base.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed()).lowercased()
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
             DecodingError.keyNotFound(_, let context), DecodingError.dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }
}

/// The JSON fields Berth reads; every field optional so absence is reported by validation.
private struct WireManifest: Decodable {
    var schemaVersion: Int?
    var mediaType: String?
    var artifactType: String?
    var config: WireDescriptor?
    var layers: [WireDescriptor]?
    var manifests: [WireDescriptor]?
    var subject: WireDescriptor?
    var annotations: [String: String]?
}

private struct WireDescriptor: Decodable {
    var mediaType: String
    var digest: String
    var size: Int64
    var artifactType: String?
    var annotations: [String: String]?
}
