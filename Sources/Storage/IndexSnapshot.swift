/// An `index.json` prepared for lookups and for the next commit: the index as written,
/// its tags and manifests by name, its tags sorted, and the encoding of every entry.
///
/// Changed only through its methods, which follow `ImageIndex`'s rules entry by entry
/// and keep everything in step without rebuilding it: a new tag appends one entry and
/// its bytes, a moved tag removes one and appends one, so a commit at 20,000 tags costs
/// copying the bytes, not encoding or sorting them all again.
struct IndexSnapshot: Sendable {
    /// One entry of `manifests`, shared by every snapshot that holds it (a commit copies
    /// references, not descriptors).
    private final class Entry: Sendable {
        let descriptor: Descriptor
        let tag: String?
        init(_ descriptor: Descriptor) {
            self.descriptor = descriptor
            tag = descriptor.tag
        }
    }

    /// The index's own fields; its entries are in `entries`.
    private var header: ImageIndex
    private var entries: [Entry]
    private var byTag: [String: Entry]
    private var byDigest: [String: Entry]
    private(set) var sortedTags: [String]
    /// Entries per digest, and the digests with an untagged entry.
    private var entryCounts: [String: Int]
    private var untagged: Set<String>
    /// `,{entry}` for every entry, in order; `ends[i]` is where entry `i`'s bytes end.
    private var region: [UInt8]
    private var ends: [Int]

    init(_ index: ImageIndex) {
        header = index
        header.manifests = []
        entries = []
        entries.reserveCapacity(index.manifests.count)
        byTag = [:]
        byDigest = [:]
        sortedTags = []
        entryCounts = [:]
        untagged = []
        region = []
        region.reserveCapacity(index.manifests.count * 256)
        ends = []
        ends.reserveCapacity(index.manifests.count)
        for descriptor in index.manifests { append(descriptor) }
        sortedTags = byTag.keys.sorted()
    }

    /// The generation of the commit that wrote it, if Berth did.
    var generation: String? { header.generation }

    /// The whole index as a value (for rewrites that rebuild it).
    var index: ImageIndex {
        var index = header
        index.manifests = entries.map(\.descriptor)
        return index
    }

    func descriptor(forTag tag: String) -> Descriptor? { byTag[tag]?.descriptor }
    func descriptor(forDigest digest: String) -> Descriptor? { byDigest[digest]?.descriptor }
    /// Every tag naming the manifest `digest`, in index order (a walk of the index: for
    /// deletes by digest, which rebuild it anyway).
    func tags(forDigest digest: String) -> [String] {
        guard entryCounts[digest] != nil else { return [] }
        return index.manifests.compactMap { $0.digest == digest ? $0.tag : nil }
    }

    /// The file's bytes: canonical JSON, identical to `index.encoded()`.
    func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(region.count + 256)
        header.appendHeader(to: &out)
        out.append(contentsOf: region.dropFirst())
        header.appendTrailer(to: &out)
        return out
    }

    /// See `ImageIndex.addUntagged`.
    mutating func addUntagged(_ descriptor: Descriptor) {
        guard entryCounts[descriptor.digest] == nil else { return }
        var plain = descriptor
        plain.annotations = nil
        append(plain)
    }

    /// See `ImageIndex.setTag`.
    mutating func setTag(_ tag: Tag, to descriptor: Descriptor) {
        let previous = removeTagEntry(tag.value)
        if untagged.contains(descriptor.digest) {
            while let position = entries.firstIndex(where: { $0.tag == nil && $0.descriptor.digest == descriptor.digest }) {
                removeEntry(at: position)
            }
        }
        var tagged = descriptor
        tagged.annotations = (descriptor.annotations ?? [:]).merging([Descriptor.refNameAnnotation: tag.value]) { $1 }
        append(tagged)
        if previous == nil { sortedTags.insert(tag.value, at: Self.insertionPoint(of: tag.value, in: sortedTags)) }
        if let previous, previous.digest != descriptor.digest { addUntagged(previous) }
    }

    /// See `ImageIndex.removeTag`.
    @discardableResult
    mutating func removeTag(_ tag: Tag) -> Bool {
        guard let previous = removeTagEntry(tag.value) else { return false }
        let position = Self.insertionPoint(of: tag.value, in: sortedTags)
        if byTag[tag.value] == nil, position < sortedTags.count, sortedTags[position] == tag.value {
            sortedTags.remove(at: position)
        }
        addUntagged(previous)
        return true
    }

    /// See `ImageIndex.removeManifest`.
    @discardableResult
    mutating func removeManifest(_ digest: Digest) -> Bool {
        guard entryCounts[digest.description] != nil else { return false }
        var changed = index
        guard changed.removeManifest(digest) else { return false }
        self = IndexSnapshot(changed)
        return true
    }

    /// Marks the index as written by a new commit.
    mutating func setGeneration(_ value: String) {
        header.annotations = (header.annotations ?? [:]).merging([ImageIndex.generationAnnotation: value]) { $1 }
    }

    /// The first position in `sorted` whose element is not below `key`.
    static func insertionPoint(of key: String, in sorted: [String]) -> Int {
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = low + (high - low) / 2
            if sorted[middle] < key { low = middle + 1 } else { high = middle }
        }
        return low
    }

    // MARK: Entries

    /// Adds an entry at the end, indexed and encoded.
    private mutating func append(_ descriptor: Descriptor) {
        let entry = Entry(descriptor)
        entries.append(entry)
        region.append(UInt8(ascii: ","))
        ImageIndex.append(descriptor, to: &region)
        ends.append(region.count)
        entryCounts[descriptor.digest, default: 0] += 1
        if byDigest[descriptor.digest] == nil { byDigest[descriptor.digest] = entry }
        if let tag = entry.tag { byTag[tag] = entry } else { untagged.insert(descriptor.digest) }
    }

    /// Removes the first entry carrying `tag`, as `ImageIndex` does; its descriptor.
    private mutating func removeTagEntry(_ tag: String) -> Descriptor? {
        guard byTag[tag] != nil, let position = entries.firstIndex(where: { $0.tag == tag }) else { return nil }
        let removed = entries[position].descriptor
        removeEntry(at: position)
        return removed
    }

    private mutating func removeEntry(at position: Int) {
        let removed = entries.remove(at: position)
        let digest = removed.descriptor.digest
        let start = position == 0 ? 0 : ends[position - 1]
        let length = ends[position] - start
        region.removeSubrange(start..<ends[position])
        ends.remove(at: position)
        for later in position..<ends.count { ends[later] -= length }
        let remaining = (entryCounts[digest] ?? 1) - 1
        if remaining == 0 {
            entryCounts[digest] = nil
            byDigest[digest] = nil
        } else {
            entryCounts[digest] = remaining
            if byDigest[digest] === removed { byDigest[digest] = entries.first { $0.descriptor.digest == digest } }
        }
        if let tag = removed.tag {
            // Another entry with the same tag exists only in a hand-edited index.
            byTag[tag] = byTag[tag] === removed ? entries.last { $0.tag == tag } : byTag[tag]
        } else if !entries.contains(where: { $0.tag == nil && $0.descriptor.digest == digest }) {
            untagged.remove(digest)
        }
    }
}
