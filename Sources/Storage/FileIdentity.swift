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

    /// nil when nothing is at `path`.
    public init?(of path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        seconds = info.st_mtim.tv_sec
        nanoseconds = info.st_mtim.tv_nsec
    }

    /// True once the file is old enough that a later file cannot share its identity.
    public func isSettled(now: Int = Int(time(nil))) -> Bool { now - seconds > 1 }
}
