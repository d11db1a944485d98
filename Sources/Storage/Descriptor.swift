#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// An OCI content descriptor as Berth writes it into `index.json`.
public struct Descriptor: Codable, Equatable, Sendable {
    public static let refNameAnnotation = "org.opencontainers.image.ref.name"

    public var mediaType: String
    public var digest: String
    public var size: Int64
    public var artifactType: String?
    public var annotations: [String: String]?

    public init(mediaType: String, digest: Digest, size: Int64, artifactType: String? = nil, annotations: [String: String]? = nil) {
        self.mediaType = mediaType
        self.digest = digest.description
        self.size = size
        self.artifactType = artifactType
        self.annotations = annotations
    }

    /// The tag this descriptor carries, if any.
    public var tag: String? { annotations?[Self.refNameAnnotation] }
}
