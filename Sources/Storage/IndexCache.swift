#if canImport(Glibc)
import Glibc
#endif

/// Parsed `index.json` files, kept per process so the pull path does one `stat` and a
/// dictionary lookup instead of parsing the file on every request.
///
/// An entry is used only while the file on disk is the same one (`FileIdentity`), and a
/// file is cached only once it is settled, so a later file can never carry its identity.
final class IndexCache: Sendable {
    /// An index prepared for lookups.
    struct Lookup: Sendable {
        let byTag: [String: Descriptor]
        let byDigest: [String: Descriptor]
        let sortedTags: [String]

        init(_ index: ImageIndex) {
            var byTag: [String: Descriptor] = [:]
            var byDigest: [String: Descriptor] = [:]
            for descriptor in index.manifests {
                if let tag = descriptor.tag { byTag[tag] = descriptor }
                if byDigest[descriptor.digest] == nil { byDigest[descriptor.digest] = descriptor }
            }
            self.byTag = byTag
            self.byDigest = byDigest
            sortedTags = byTag.keys.sorted()
        }
    }

    private let entries = ReadWriteLock<[String: (identity: FileIdentity, lookup: Lookup)]>([:])
    private let capacity: Int

    init(capacity: Int = 4096) { self.capacity = capacity }

    /// The index at `path`, from memory when the file is unchanged; an empty index when
    /// there is no file.
    func lookup(_ path: String) throws(StorageError) -> Lookup {
        guard let identity = FileIdentity(of: path) else { return Lookup(ImageIndex()) }
        if let cached = entries.read({ $0[path] }), cached.identity == identity { return cached.lookup }
        guard let bytes = try FileSystem.readFile(path) else { return Lookup(ImageIndex()) }
        let lookup = Lookup(try ImageIndex.decode(bytes, path: path))
        if identity.isSettled() {
            entries.write { entries in
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
                entries[path] = (identity, lookup)
            }
        }
        return lookup
    }
}
