#if canImport(Glibc)
import Glibc
#endif

/// Parsed `index.json` files, kept per process so the pull path does one `stat` and a
/// dictionary lookup instead of parsing the file on every request.
///
/// An entry is used only while the file on disk is the same one (device, inode, size,
/// modification time to the nanosecond). Writers always rename a new file into place;
/// because a freed inode number can come back within one clock tick, a file is cached
/// only once its modification time is more than a second old, so a later file can never
/// carry the cached one's identity.
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

    private struct Identity: Equatable {
        let device: UInt64
        let inode: UInt64
        let size: Int64
        let seconds: Int
        let nanoseconds: Int
    }

    private let entries = ReadWriteLock<[String: (identity: Identity, lookup: Lookup)]>([:])
    private let capacity: Int

    init(capacity: Int = 4096) { self.capacity = capacity }

    /// The index at `path`, from memory when the file is unchanged; an empty index when
    /// there is no file.
    func lookup(_ path: String) throws(StorageError) -> Lookup {
        var info = stat()
        guard stat(path, &info) == 0 else { return Lookup(ImageIndex()) }
        let identity = Identity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                                seconds: info.st_mtim.tv_sec, nanoseconds: info.st_mtim.tv_nsec)
        if let cached = entries.read({ $0[path] }), cached.identity == identity { return cached.lookup }
        guard let bytes = try FileSystem.readFile(path) else { return Lookup(ImageIndex()) }
        let lookup = Lookup(try ImageIndex.decode(bytes, path: path))
        if time(nil) - identity.seconds > 1 {
            entries.write { entries in
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
                entries[path] = (identity, lookup)
            }
        }
        return lookup
    }
}
