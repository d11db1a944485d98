/// An `index.json` prepared for lookups: the index as written, its tags and manifests by
/// name, and its tags sorted. Changed only through its methods, which keep the four in
/// step without rebuilding them (a commit at 20,000 tags must not re-sort them all).
struct IndexSnapshot: Sendable {
    private(set) var index: ImageIndex
    private(set) var byTag: [String: Descriptor]
    private(set) var byDigest: [String: Descriptor]
    private(set) var sortedTags: [String]

    init(_ index: ImageIndex) {
        var byTag: [String: Descriptor] = [:]
        var byDigest: [String: Descriptor] = [:]
        for descriptor in index.manifests {
            if let tag = descriptor.tag { byTag[tag] = descriptor }
            if byDigest[descriptor.digest] == nil { byDigest[descriptor.digest] = descriptor }
        }
        self.index = index
        self.byTag = byTag
        self.byDigest = byDigest
        sortedTags = byTag.keys.sorted()
    }

    /// See `ImageIndex.addUntagged`.
    mutating func addUntagged(_ descriptor: Descriptor) {
        index.addUntagged(descriptor)
        if byDigest[descriptor.digest] == nil { byDigest[descriptor.digest] = descriptor }
    }

    /// See `ImageIndex.setTag`.
    mutating func setTag(_ tag: Tag, to descriptor: Descriptor) {
        index.setTag(tag, to: descriptor)
        let isNew = byTag[tag.value] == nil
        byTag[tag.value] = index.manifests.last { $0.tag == tag.value }
        if byDigest[descriptor.digest] == nil { byDigest[descriptor.digest] = descriptor }
        if isNew { sortedTags.insert(tag.value, at: Self.insertionPoint(of: tag.value, in: sortedTags)) }
    }

    /// See `ImageIndex.removeTag`.
    @discardableResult
    mutating func removeTag(_ tag: Tag) -> Bool {
        guard index.removeTag(tag) else { return false }
        byTag[tag.value] = nil
        let position = Self.insertionPoint(of: tag.value, in: sortedTags)
        if position < sortedTags.count, sortedTags[position] == tag.value { sortedTags.remove(at: position) }
        return true
    }

    /// See `ImageIndex.removeManifest`.
    @discardableResult
    mutating func removeManifest(_ digest: Digest) -> Bool {
        var changed = index
        guard changed.removeManifest(digest) else { return false }
        self = IndexSnapshot(changed)
        return true
    }

    /// Marks the index as written by a new commit.
    mutating func setGeneration(_ value: String) {
        index.annotations = (index.annotations ?? [:]).merging([ImageIndex.generationAnnotation: value]) { $1 }
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
}
