/// An `index.json` prepared for lookups and for the next commit: the index as written,
/// its tags and manifests by name, its tags sorted, and the encoding of every entry.
///
/// Changed only through its methods, which follow `ImageIndex`'s rules entry by entry
/// and keep everything in step without rebuilding it: a new tag appends one entry and
/// its bytes, a moved tag removes one and appends one, so a commit at 20,000 tags costs
/// neither encoding nor sorting them all again.
///
/// A commit changes a copy of the snapshot the cache holds (readers keep using that one
/// meanwhile), so every part is stored in pieces that copy-on-write separately: the
/// entries and their bytes in chunks, the lookup tables in shards. Changing one entry
/// copies its chunk and one shard per table, not 20,000 entries and four megabytes.
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

    /// The index's own fields; its entries are in `chunks`.
    private var header: ImageIndex
    private var chunks: EntryChunks<Entry>
    private var byTag: Shards<Entry>
    private var byDigest: Shards<Entry>
    private(set) var sortedTags: [String]
    /// Entries per digest, and the digests with an untagged entry.
    private var entryCounts: Shards<Int>
    private var untagged: Shards<Bool>
    /// What `perform` changed since the snapshot was read or last written: the next
    /// commit's entry in the `IndexJournal`.
    private(set) var performed: [IndexOperation] = []

    init(_ index: ImageIndex) {
        header = index
        header.manifests = []
        chunks = EntryChunks()
        byTag = Shards()
        byDigest = Shards()
        sortedTags = []
        entryCounts = Shards()
        untagged = Shards()
        for descriptor in index.manifests { append(descriptor) }
        sortedTags = byTag.keys.sorted()
    }

    /// The generation of the commit that wrote it, if Berth did.
    var generation: String? { header.generation }

    /// The whole index as a value (for rewrites that rebuild it).
    var index: ImageIndex {
        var index = header
        index.manifests = chunks.all.map(\.descriptor)
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
        for piece in encodedPieces() { out.append(contentsOf: piece) }
        return out
    }

    /// `encoded()` as the pieces it is made of, in order, to be written one after the
    /// other without joining megabytes into one buffer first.
    func encodedPieces() -> [ArraySlice<UInt8>] {
        var head: [UInt8] = []
        header.appendHeader(to: &head)
        var trailer: [UInt8] = []
        header.appendTrailer(to: &trailer)
        // Every entry's bytes start with a comma; the first entry's must not.
        var pieces = [head[...]]
        for (position, bytes) in chunks.encodedChunks.enumerated() {
            pieces.append(position == 0 ? bytes.dropFirst() : bytes[...])
        }
        pieces.append(trailer[...])
        return pieces
    }

    /// Applies `operation` and records it for the journal; false when it found nothing
    /// to change (a tag or manifest that is not there).
    @discardableResult
    mutating func perform(_ operation: IndexOperation) -> Bool {
        let changed: Bool
        switch operation {
        case .setTag(let tag, let descriptor):
            setTag(tag, to: descriptor)
            changed = true
        case .addUntagged(let descriptor):
            addUntagged(descriptor)
            changed = true
        case .removeTag(let tag): changed = removeTag(tag)
        case .removeManifest(let digest): changed = removeManifest(digest)
        }
        if changed { performed.append(operation) }
        return changed
    }

    /// Forgets the performed operations (they were journaled, or replayed from it).
    mutating func clearPerformed() { performed = [] }

    /// The size of `encoded()`, without encoding.
    var encodedSize: Int { encodedPieces().reduce(0) { $0 + $1.count } }

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
        if untagged[descriptor.digest] != nil {
            while let position = chunks.firstPosition(where: { $0.tag == nil && $0.descriptor.digest == descriptor.digest }) {
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
        let kept = performed
        self = IndexSnapshot(changed)
        performed = kept
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
        var bytes: [UInt8] = [UInt8(ascii: ",")]
        ImageIndex.append(descriptor, to: &bytes)
        chunks.append(entry, bytes: bytes)
        entryCounts[descriptor.digest] = (entryCounts[descriptor.digest] ?? 0) + 1
        if byDigest[descriptor.digest] == nil { byDigest[descriptor.digest] = entry }
        if let tag = entry.tag { byTag[tag] = entry } else { untagged[descriptor.digest] = true }
    }

    /// Removes the first entry carrying `tag`, as `ImageIndex` does; its descriptor.
    private mutating func removeTagEntry(_ tag: String) -> Descriptor? {
        guard byTag[tag] != nil, let position = chunks.firstPosition(where: { $0.tag == tag }) else { return nil }
        let removed = chunks[position].descriptor
        removeEntry(at: position)
        return removed
    }

    private mutating func removeEntry(at position: EntryChunks<Entry>.Position) {
        let removed = chunks.remove(at: position)
        let digest = removed.descriptor.digest
        let remaining = (entryCounts[digest] ?? 1) - 1
        if remaining == 0 {
            entryCounts[digest] = nil
            byDigest[digest] = nil
        } else {
            entryCounts[digest] = remaining
            if byDigest[digest] === removed { byDigest[digest] = chunks.first { $0.descriptor.digest == digest } }
        }
        if let tag = removed.tag {
            // Another entry with the same tag exists only in a hand-edited index.
            byTag[tag] = byTag[tag] === removed ? chunks.last { $0.tag == tag } : byTag[tag]
        } else if chunks.firstPosition(where: { $0.tag == nil && $0.descriptor.digest == digest }) == nil {
            untagged[digest] = nil
        }
    }
}

/// A list of elements with their encoded bytes, in chunks of at most `capacity`: a copy
/// that then changes one element copies that element's chunk (and the short list of
/// chunks), not the whole list.
struct EntryChunks<Element: AnyObject & Sendable>: Sendable {
    static var capacity: Int { 128 }

    private struct Chunk: Sendable {
        var elements: [Element] = []
        /// Every element's bytes, one after the other.
        var bytes: [UInt8] = []
        /// `ends[i]` is where element `i`'s bytes end in `bytes`.
        var ends: [Int] = []
    }

    /// An element's place: its chunk and its place in that chunk.
    struct Position: Equatable {
        let chunk: Int
        let offset: Int
    }

    private var chunks: [Chunk] = []

    subscript(position: Position) -> Element { chunks[position.chunk].elements[position.offset] }

    /// Every element, in order.
    var all: [Element] { chunks.flatMap(\.elements) }

    /// Every chunk's bytes, in order: together, every element's bytes.
    var encodedChunks: [[UInt8]] { chunks.map(\.bytes) }

    mutating func append(_ element: Element, bytes: [UInt8]) {
        if chunks.isEmpty || chunks[chunks.count - 1].elements.count >= Self.capacity { chunks.append(Chunk()) }
        let last = chunks.count - 1
        chunks[last].elements.append(element)
        chunks[last].bytes.append(contentsOf: bytes)
        chunks[last].ends.append(chunks[last].bytes.count)
    }

    /// Removes and returns the element at `position`. A chunk left empty goes, and one
    /// that fills at most half a chunk together with the next is merged with it, so
    /// removals cannot leave a long list of nearly empty chunks.
    @discardableResult
    mutating func remove(at position: Position) -> Element {
        let (chunk, offset) = (position.chunk, position.offset)
        let removed = chunks[chunk].elements.remove(at: offset)
        let start = offset == 0 ? 0 : chunks[chunk].ends[offset - 1]
        let end = chunks[chunk].ends[offset]
        chunks[chunk].bytes.removeSubrange(start..<end)
        chunks[chunk].ends.remove(at: offset)
        for later in offset..<chunks[chunk].ends.count { chunks[chunk].ends[later] -= end - start }
        if chunks[chunk].elements.isEmpty {
            chunks.remove(at: chunk)
        } else if chunk + 1 < chunks.count,
                  chunks[chunk].elements.count + chunks[chunk + 1].elements.count <= Self.capacity / 2 {
            let next = chunks.remove(at: chunk + 1)
            let shift = chunks[chunk].bytes.count
            chunks[chunk].elements.append(contentsOf: next.elements)
            chunks[chunk].bytes.append(contentsOf: next.bytes)
            chunks[chunk].ends.append(contentsOf: next.ends.map { $0 + shift })
        }
        return removed
    }

    func firstPosition(where matches: (Element) -> Bool) -> Position? {
        for (chunk, each) in chunks.enumerated() {
            if let offset = each.elements.firstIndex(where: matches) { return Position(chunk: chunk, offset: offset) }
        }
        return nil
    }

    func first(where matches: (Element) -> Bool) -> Element? {
        for each in chunks { if let found = each.elements.first(where: matches) { return found } }
        return nil
    }

    func last(where matches: (Element) -> Bool) -> Element? {
        for each in chunks.reversed() { if let found = each.elements.last(where: matches) { return found } }
        return nil
    }
}

/// A dictionary by string in a fixed number of shards: a copy that then changes one key
/// copies that key's shard, not every key.
struct Shards<Value: Sendable>: Sendable {
    private static var count: Int { 64 }

    private var shards = [[String: Value]](repeating: [:], count: Self.count)

    private static func shard(of key: String) -> Int { Int(UInt(bitPattern: key.hashValue) % UInt(count)) }

    subscript(key: String) -> Value? {
        get { shards[Self.shard(of: key)][key] }
        set { shards[Self.shard(of: key)][key] = newValue }
    }

    /// Every key, in no particular order.
    var keys: [String] { shards.flatMap(\.keys) }
}
