#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A repository's `index.json`: one descriptor per tag and one per untagged manifest.
/// Pure value logic; `ManifestStore` reads and replaces the file.
public struct ImageIndex: Codable, Equatable, Sendable {
    /// The top-level annotation naming the commit that wrote the file (see `IndexGeneration`).
    public static let generationAnnotation = "org.berth.generation"

    public var schemaVersion = 2
    public var mediaType: String? = MediaType.ociIndex
    public var manifests: [Descriptor] = []
    /// Top-level annotations; Berth writes only `generationAnnotation`.
    public var annotations: [String: String]?

    public init() {}

    /// The descriptor carrying `tag`.
    public func descriptor(for tag: Tag) -> Descriptor? {
        manifests.first { $0.tag == tag.value }
    }

    /// Any descriptor of the manifest `digest`.
    public func descriptor(for digest: Digest) -> Descriptor? {
        let text = digest.description
        return manifests.first { $0.digest == text }
    }

    /// All tags, sorted.
    public var tags: [String] { manifests.compactMap(\.tag).sorted() }

    /// Records a manifest pushed by digest alone; no change if it is already listed.
    public mutating func addUntagged(_ descriptor: Descriptor) {
        guard !manifests.contains(where: { $0.digest == descriptor.digest }) else { return }
        var plain = descriptor
        plain.annotations = nil
        manifests.append(plain)
    }

    /// Points `tag` at `descriptor`. The manifest's untagged entry goes (it is tagged now);
    /// the manifest the tag left keeps an untagged entry if no other tag names it.
    public mutating func setTag(_ tag: Tag, to descriptor: Descriptor) {
        let previous = removeTagEntry(tag)
        manifests.removeAll { $0.digest == descriptor.digest && $0.tag == nil }
        var tagged = descriptor
        tagged.annotations = (descriptor.annotations ?? [:]).merging([Descriptor.refNameAnnotation: tag.value]) { $1 }
        manifests.append(tagged)
        if let previous, previous.digest != descriptor.digest { addUntagged(previous) }
    }

    /// Removes `tag`; its manifest stays listed (untagged if no other tag names it).
    /// Returns false when the tag did not exist.
    @discardableResult
    public mutating func removeTag(_ tag: Tag) -> Bool {
        guard let previous = removeTagEntry(tag) else { return false }
        addUntagged(previous)
        return true
    }

    /// Removes every entry of the manifest `digest`, tags included. False when absent.
    @discardableResult
    public mutating func removeManifest(_ digest: Digest) -> Bool {
        let count = manifests.count
        manifests.removeAll { $0.digest == digest.description }
        return manifests.count != count
    }

    private mutating func removeTagEntry(_ tag: Tag) -> Descriptor? {
        guard let index = manifests.firstIndex(where: { $0.tag == tag.value }) else { return nil }
        return manifests.remove(at: index)
    }

    /// The commit that wrote this index, if Berth did.
    public var generation: String? { annotations?[Self.generationAnnotation] }

    /// The file's bytes: canonical JSON (sorted keys, unescaped slashes), written by hand
    /// because JSONEncoder costs several times the write at tens of thousands of tags.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + manifests.count * 256)
        appendHeader(to: &out)
        for (position, descriptor) in manifests.enumerated() {
            if position > 0 { out.append(UInt8(ascii: ",")) }
            Self.append(descriptor, to: &out)
        }
        appendTrailer(to: &out)
        return out
    }

    /// What comes before the first entry: `{"annotations":{…},"manifests":[`.
    func appendHeader(to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        if let annotations {
            Self.appendKey("annotations", to: &out)
            Self.appendObject(annotations, to: &out)
            out.append(UInt8(ascii: ","))
        }
        Self.appendKey("manifests", to: &out)
        out.append(UInt8(ascii: "["))
    }

    /// What comes after the last entry: `],"mediaType":…,"schemaVersion":2}`.
    func appendTrailer(to out: inout [UInt8]) {
        out.append(UInt8(ascii: "]"))
        if let mediaType {
            out.append(UInt8(ascii: ","))
            Self.appendKey("mediaType", to: &out)
            JSONText.appendString(mediaType, to: &out)
        }
        out.append(UInt8(ascii: ","))
        Self.appendKey("schemaVersion", to: &out)
        out.append(contentsOf: String(schemaVersion).utf8)
        out.append(UInt8(ascii: "}"))
    }

    /// One entry of `manifests`, canonical.
    static func append(_ descriptor: Descriptor, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        if let annotations = descriptor.annotations {
            appendKey("annotations", to: &out)
            appendObject(annotations, to: &out)
            out.append(UInt8(ascii: ","))
        }
        if let artifactType = descriptor.artifactType {
            appendKey("artifactType", to: &out)
            JSONText.appendString(artifactType, to: &out)
            out.append(UInt8(ascii: ","))
        }
        appendKey("digest", to: &out)
        JSONText.appendString(descriptor.digest, to: &out)
        out.append(UInt8(ascii: ","))
        appendKey("mediaType", to: &out)
        JSONText.appendString(descriptor.mediaType, to: &out)
        out.append(UInt8(ascii: ","))
        appendKey("size", to: &out)
        out.append(contentsOf: String(descriptor.size).utf8)
        out.append(UInt8(ascii: "}"))
    }

    private static func appendKey(_ key: StaticString, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        key.withUTF8Buffer { out.append(contentsOf: $0) }
        out.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
    }

    private static func appendKey(_ key: String, to out: inout [UInt8]) {
        JSONText.appendString(key, to: &out)
        out.append(UInt8(ascii: ":"))
    }

    private static func appendObject(_ object: [String: String], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        if object.count == 1, let (key, value) = object.first {
            appendKey(key, to: &out)
            JSONText.appendString(value, to: &out)
        } else {
            for (position, key) in object.keys.sorted().enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                appendKey(key, to: &out)
                JSONText.appendString(object[key] ?? "", to: &out)
            }
        }
        out.append(UInt8(ascii: "}"))
    }

    public static func decode(_ bytes: [UInt8], path: String) throws(StorageError) -> ImageIndex {
        do {
            return try JSONDecoder().decode(ImageIndex.self, from: Data(bytes))
        } catch {
            throw .corrupt(path: path, reason: "index.json does not parse: \(error)")
        }
    }
}
