import Storage

/// Decides when a file (or folder) read into memory must be read again: when its identity
/// (device, inode, size, mtime) changed, or while it is too recent for its identity to be
/// trusted. Looks at most once per `interval` milliseconds. Not thread-safe: callers hold a lock.
/// "Too recent" is judged on the clock that stamps the file: the store's (`StoreClock`)
/// for files in the store, which another node may have written, else this node's.
struct FileWatch {
    let interval: Int64
    private let fileClock: @Sendable () -> Int
    private var identity: FileIdentity?
    private var lastCheck: Int64?

    init(intervalMilliseconds: Int64, fileClock: @escaping @Sendable () -> Int = Secrets.wallClock) {
        interval = intervalMilliseconds
        self.fileClock = fileClock
    }

    /// The next `needsReload` looks and reloads, whatever the interval.
    mutating func invalidate() { lastCheck = nil }

    /// True when the file should be read again now; `identity` is the current one.
    mutating func needsReload(_ current: () -> FileIdentity?, now: Int64 = Secrets.monotonicMilliseconds()) -> Bool {
        if let lastCheck, now - lastCheck < interval { return false }
        let first = lastCheck == nil
        lastCheck = now
        let found = current()
        defer { identity = found }
        if first { return true }
        if found != identity { return true }
        if let found, !found.isSettled(now: fileClock()) { return true }
        return false
    }
}
