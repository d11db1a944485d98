#if canImport(Glibc)
import Glibc
#endif
import Locks

/// The store's clock: the time its filesystem stamps on the files it writes. On a shared
/// filesystem that is the server's clock (NFS) or the writing node's (GlusterFS), not
/// necessarily this node's, so the age of a file in the store is measured against this
/// clock, never against `time()`: a node whose clock is a minute behind the others must
/// not find a file a minute younger than it is (gc's grace period), nor one written a
/// second ago settled (the caches' identity checks).
///
/// Reading it costs nothing: the offset from this node's clock is measured by creating
/// and removing a file in the store's `tmp/` at most once per `remeasureSeconds`.
public final class StoreClock: Sendable {
    public static let remeasureSeconds: Int64 = 60

    private let layout: StoreLayout
    /// Nanoseconds to add to this node's clock, and when (monotonic seconds) they were measured.
    private let offset = Locked<(nanoseconds: Int64, measured: Int64)?>(nil)

    init(layout: StoreLayout) { self.layout = layout }

    /// The store's time now, in seconds. Falls back on the last offset measured (or this
    /// node's clock) while the store cannot be written.
    public func now() -> Int {
        let monotonic = Self.monotonicSeconds()
        let known = offset.withLock { $0 }
        if let known, monotonic - known.measured < Self.remeasureSeconds {
            return Int((Self.wallNanoseconds() + known.nanoseconds) / 1_000_000_000)
        }
        let measured = (try? measureOffset()) ?? known?.nanoseconds ?? 0
        offset.withLock { $0 = (measured, monotonic) }
        return Int((Self.wallNanoseconds() + measured) / 1_000_000_000)
    }

    /// Measures the offset again now: the modification time of a file just created,
    /// minus the midpoint of this node's clock around its creation.
    @discardableResult
    public func measureOffset() throws(StorageError) -> Int64 {
        let path = layout.clockProbeFile(.current)
        try FileSystem.makeDirectories(layout.temporaryDirectory)
        let before = Self.wallNanoseconds()
        let fd = try FileSystem.open(path, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644)
        defer { close(fd) }
        defer { _ = unlink(path) }
        var one: UInt8 = 0x0a
        guard Glibc.write(fd, &one, 1) == 1 else { throw FileSystem.fail("write", path) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileSystem.fail("fstat", path) }
        let after = Self.wallNanoseconds()
        let stamped = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        let measured = stamped - (before + (after - before) / 2)
        offset.withLock { $0 = (measured, Self.monotonicSeconds()) }
        return measured
    }

    private static func wallNanoseconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }

    private static func monotonicSeconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec)
    }
}
