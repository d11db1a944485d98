#if canImport(Glibc)
import Glibc
#endif

/// Large files the store no longer needs, moved aside by a rename so that freeing them is
/// not paid on a request: `_berth/trash/<uuid>`, emptied within a second by the worker's
/// background thread, and by `berth gc`.
///
/// Why: freeing a large file is work proportional to its size (extents, and a synchronous
/// TRIM on file systems mounted with `discard`). A chunked upload of content the store
/// already had freed its gigabyte in the final PUT's `close`: 150 ms instead of 6 ms on
/// the benchmark VM.
public struct Trash: Sendable {
    public let layout: StoreLayout

    /// Built by `Store`.
    init(layout: StoreLayout) { self.layout = layout }

    /// Below this many bytes a discarded file is freed at once: cheap, and on a full disk
    /// the room comes back before the next request.
    static let deferredSize: UInt64 = 16 << 20

    /// Frees `path` (a file or a directory), by moving it into the trash when it is large;
    /// nothing happens when it is gone.
    func discard(_ path: String) throws(StorageError) {
        if FileSystem.treeSize(path) < Self.deferredSize {
            try FileSystem.removeTree(path)
            return
        }
        try FileSystem.makeDirectories(layout.trashDirectory)
        if rename(path, layout.trashEntry(UploadID.random().value)) == 0 { return }
        switch errno {
        case ENOENT: return
        case EXDEV: try FileSystem.removeTree(path)  // not one file system: free it here
        default: throw FileSystem.fail("rename", path)
        }
    }

    /// Frees everything in the trash; returns how many bytes it held. Another process
    /// emptying it at the same time is harmless (a vanished entry is skipped).
    @discardableResult
    public func empty() throws(StorageError) -> UInt64 {
        var freed: UInt64 = 0
        for entry in try FileSystem.listDirectory(layout.trashDirectory) {
            let path = layout.trashEntry(entry.name)
            freed += FileSystem.treeSize(path)
            try FileSystem.removeTree(path)
        }
        return freed
    }
}
