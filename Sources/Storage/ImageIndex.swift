#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A repository's `index.json`: one descriptor per tag and one per untagged manifest.
/// Pure value logic; `ManifestStore` reads and replaces the file.
public struct ImageIndex: Codable, Equatable, Sendable {
    public var schemaVersion = 2
    public var mediaType: String? = MediaType.ociIndex
    public var manifests: [Descriptor] = []

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

    /// The file's bytes: sorted keys, unescaped slashes.
    public func encoded() -> [UInt8] { JSONText.encode(self) }

    public static func decode(_ bytes: [UInt8], path: String) throws(StorageError) -> ImageIndex {
        do {
            return try JSONDecoder().decode(ImageIndex.self, from: Data(bytes))
        } catch {
            throw .corrupt(path: path, reason: "index.json does not parse: \(error)")
        }
    }
}
