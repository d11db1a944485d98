#if canImport(Glibc)
import Glibc
#endif

/// Which file is at a path right now: device, inode, size and modification time to the
/// nanosecond. Writers always rename a new file into place, so a changed file shows a
/// changed identity; caches keyed by it trust an identity only once the file is more
/// than a second old, because a freed inode number can come back within one clock tick.
public struct FileIdentity: Equatable, Sendable {
    let device: UInt64
    let inode: UInt64
    let size: Int64
    let seconds: Int
    let nanoseconds: Int

    /// nil when nothing is at `path` (or it cannot be looked at).
    public init?(of path: String) {
        guard let info = try? FileSystem.fileStatus(path) else { return nil }
        self.init(info)
    }

    /// The identity of the file at `path`; nil when nothing is there. A failure to look
    /// (ESTALE past its retries, EIO) throws rather than reading as "no file".
    static func current(_ path: String) throws(StorageError) -> FileIdentity? {
        try FileSystem.fileStatus(path).map(FileIdentity.init)
    }

    private init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        seconds = info.st_mtim.tv_sec
        nanoseconds = info.st_mtim.tv_nsec
    }

    /// True once the file is old enough that a later file cannot share its identity.
    /// `now` is the time of the clock that stamped the file: for a file in the store,
    /// `StoreClock.now()`, never this node's clock.
    public func isSettled(now: Int) -> Bool { now - seconds > 1 }
}
