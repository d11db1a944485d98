#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Thin, typed wrappers over the POSIX calls the store needs. Every failure becomes a
/// `StorageError.io` carrying the operation, the path and errno.
enum FileSystem {
    static func fail(_ operation: String, _ path: String, _ code: Int32 = errno) -> StorageError {
        .io(operation: operation, path: path, errno: code)
    }

    /// Opens `path`, retrying on EINTR, and on ESTALE up to `Defaults.staleHandleRetries`
    /// times: a shared filesystem (NFS, GlusterFS) answers ESTALE for a path whose file
    /// another node just replaced by rename, and a new lookup finds the new file. Past the
    /// retries the ESTALE is thrown (the registry answers 503).
    static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws(StorageError) -> Int32 {
        var stale = 0
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return fd }
            let code = errno
            if code == EINTR { continue }
            if code == ESTALE, retryStale(&stale) { continue }
            throw fail("open", path, code)
        }
    }

    /// Counts one ESTALE and says whether to try again: true for the first
    /// `Defaults.staleHandleRetries` of one operation (after a short pause from the second on).
    static func retryStale(_ attempts: inout Int) -> Bool {
        StaleHandles.record(retried: attempts < Defaults.staleHandleRetries)
        guard attempts < Defaults.staleHandleRetries else { return false }
        attempts += 1
        if attempts > 1 { usleep(UInt32(attempts) * 1000) }
        return true
    }

    /// `stat` of `path` (not following a last symlink when `link`), with ESTALE retried
    /// as `open` does; nil when nothing is there (ENOENT, ENOTDIR). Other failures throw:
    /// "cannot tell" must never read as "missing".
    static func fileStatus(_ path: String, link: Bool = false) throws(StorageError) -> stat? {
        var stale = 0
        while true {
            var info = stat()
            if (link ? lstat(path, &info) : stat(path, &info)) == 0 { return info }
            let code = errno
            if code == ENOENT || code == ENOTDIR { return nil }
            if code == EINTR { continue }
            if code == ESTALE, retryStale(&stale) { continue }
            throw fail(link ? "lstat" : "stat", path, code)
        }
    }

    /// Writes every byte of `buffer` at the descriptor's position.
    static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, path: String) throws(StorageError) {
        var offset = 0
        while offset < buffer.count {
            guard let base = buffer.baseAddress else { return }
            let written = Glibc.write(fd, base + offset, buffer.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw fail("write", path)
            }
            offset += written
        }
    }

    static func fsync(_ fd: Int32, path: String) throws(StorageError) {
        if Glibc.fsync(fd) != 0 { throw fail("fsync", path) }
    }

    /// Makes a rename, link or unlink inside `directory` durable.
    static func fsyncDirectory(_ directory: String) throws(StorageError) {
        let fd = try open(directory, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        try fsync(fd, path: directory)
    }

    /// Reads a whole small file; nil when it does not exist. A read that fails with ESTALE
    /// (the file was replaced under an open descriptor on a shared filesystem) starts over
    /// from a new open, as `open` retries.
    static func readFile(_ path: String, limit: Int = 64 << 20) throws(StorageError) -> [UInt8]? {
        var stale = 0
        while true {
            let fd: Int32
            do { fd = try open(path, O_RDONLY) } catch {
                if case .io(_, _, let code) = error, code == ENOENT || code == ENOTDIR { return nil }
                throw error
            }
            defer { close(fd) }
            var result: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            reading: while true {
                let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if count < 0 {
                    let code = errno
                    if code == EINTR { continue }
                    if code == ESTALE, retryStale(&stale) { break reading }
                    throw fail("read", path, code)
                }
                if count == 0 { return result }
                result.append(contentsOf: chunk[0..<count])
                if result.count > limit { throw .corrupt(path: path, reason: "file larger than \(limit) bytes") }
            }
        }
    }

    /// Replaces `path` whole: writes a temp file in `temporaryDirectory` (same
    /// filesystem), fsyncs it, renames it over `path` and fsyncs the directory.
    /// A reader sees the old content or the new one, never a mix.
    /// `beforeRename` runs once the new content is durable, just before it takes `path`.
    static func writeAtomically(_ bytes: [UInt8], to path: String, temporaryDirectory: String,
                                mode: mode_t = 0o644, beforeRename: () -> Void = {}) throws(StorageError) {
        try writeAtomically(pieces: [bytes[...]], to: path, temporaryDirectory: temporaryDirectory, mode: mode,
                            beforeRename: beforeRename)
    }

    /// `writeAtomically` of the pieces one after the other, each written straight from
    /// its array (an index can be megabytes: no joining copy). `durable: false` skips
    /// both fsyncs: only for files whose readers check them and can do without them.
    static func writeAtomically(pieces: [ArraySlice<UInt8>], to path: String, temporaryDirectory: String,
                                mode: mode_t = 0o644, durable: Bool = true, beforeRename: () -> Void = {}) throws(StorageError) {
        let temp = "\(temporaryDirectory)/\(UploadID.random().value).tmp"
        let fd = try open(temp, O_WRONLY | O_CREAT | O_EXCL, mode: mode)
        var renamed = false
        defer { if !renamed { _ = unlink(temp) } }
        do throws(StorageError) {
            var failure: StorageError?
            for piece in pieces where failure == nil {
                piece.withUnsafeBytes { buffer in
                    do throws(StorageError) { try writeAll(fd, buffer, path: temp) } catch { failure = error }
                }
            }
            if let failure { throw failure }
            if durable { try fsync(fd, path: temp) }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        beforeRename()
        if Glibc.rename(temp, path) != 0 { throw fail("rename", path) }
        renamed = true
        if durable { try fsyncDirectory(parent(of: path)) }
    }

    /// Size of a regular file; nil when nothing (or not a regular file) is there.
    static func regularFileSize(_ path: String) -> UInt64? {
        guard let info = try? fileStatus(path), (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return UInt64(info.st_size)
    }

    static func isDirectory(_ path: String) -> Bool {
        guard let info = try? fileStatus(path) else { return false }
        return (info.st_mode & S_IFMT) == S_IFDIR
    }

    static func exists(_ path: String) -> Bool {
        (try? fileStatus(path, link: true)) != nil
    }

    /// `mkdir -p`, fsyncing each parent in which a directory was created (unless not
    /// `durable`). A parent that goes away meanwhile (an empty folder pruned, as the event
    /// outbox does) is made again.
    static func makeDirectories(_ path: String, durable: Bool = true) throws(StorageError) {
        if isDirectory(path) { return }
        let parentPath = parent(of: path)
        for attempt in 0..<4 {
            if parentPath != path { try makeDirectories(parentPath, durable: durable) }
            if mkdir(path, 0o755) == 0 { break }
            if errno == EEXIST, isDirectory(path) { return }
            if errno != ENOENT || parentPath == path || attempt == 3 { throw fail("mkdir", path) }
        }
        if durable { try fsyncDirectory(parentPath) }
    }

    /// Hard-links `source` to `destination`; true when created, false when it already existed.
    @discardableResult
    static func link(_ source: String, _ destination: String) throws(StorageError) -> Bool {
        if Glibc.link(source, destination) == 0 { return true }
        if errno == EEXIST { return false }
        throw fail("link", destination)
    }

    static func rename(_ source: String, _ destination: String) throws(StorageError) {
        if Glibc.rename(source, destination) != 0 { throw fail("rename", destination) }
    }

    /// Removes a file; a missing file is not an error.
    static func remove(_ path: String) throws(StorageError) {
        if unlink(path) != 0, errno != ENOENT { throw fail("unlink", path) }
    }

    /// Removes a directory and everything in it; a missing directory is not an error.
    static func removeTree(_ path: String) throws(StorageError) {
        guard isDirectory(path) else { try remove(path); return }
        for entry in try listDirectory(path) {
            let child = "\(path)/\(entry.name)"
            if entry.isDirectory { try removeTree(child) } else { try remove(child) }
        }
        if rmdir(path) != 0, errno != ENOENT { throw fail("rmdir", path) }
    }

    /// Bytes of the regular files at or under `path` (0 when it is gone).
    static func treeSize(_ path: String) -> UInt64 {
        guard isDirectory(path) else { return regularFileSize(path) ?? 0 }
        let entries = (try? listDirectory(path)) ?? []
        return entries.reduce(0) { $0 + treeSize("\(path)/\($1.name)") }
    }

    struct Entry {
        let name: String
        let isDirectory: Bool
    }

    /// The entries of a directory, without `.` and `..`; empty when it does not exist.
    static func listDirectory(_ path: String) throws(StorageError) -> [Entry] {
        guard let handle = try openDirectory(path) else { return [] }
        defer { closedir(handle) }
        var entries: [Entry] = []
        while let entry = readdir(handle) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            let type = entry.pointee.d_type
            let isDirectory = type == UInt8(DT_DIR) || (type == UInt8(DT_UNKNOWN) && Self.isDirectory("\(path)/\(name)"))
            entries.append(Entry(name: name, isDirectory: isDirectory))
        }
        return entries
    }

    /// Calls `body` with each entry of a directory as `readdir` returns it, without `.`
    /// and `..`, holding only one at a time (for folders of hundreds of thousands of
    /// blobs); nothing when it does not exist. Entries removed meanwhile may be skipped.
    static func forEachEntry(_ path: String, _ body: (Entry) throws(StorageError) -> Void) throws(StorageError) {
        guard let handle = try openDirectory(path) else { return }
        defer { closedir(handle) }
        while let entry = readdir(handle) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            let type = entry.pointee.d_type
            let isDirectory = type == UInt8(DT_DIR) || (type == UInt8(DT_UNKNOWN) && Self.isDirectory("\(path)/\(name)"))
            try body(Entry(name: name, isDirectory: isDirectory))
        }
    }

    /// `opendir`, with ESTALE retried as `open` does; nil when there is no directory.
    private static func openDirectory(_ path: String) throws(StorageError) -> OpaquePointer? {
        var stale = 0
        while true {
            if let handle = opendir(path) { return handle }
            let code = errno
            if code == ENOENT || code == ENOTDIR { return nil }
            if code == EINTR || (code == ESTALE && retryStale(&stale)) { continue }
            throw fail("opendir", path, code)
        }
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }
}

extension FileSystem {
    /// Hard-links like `link`, but answers false instead of failing when `source` vanished.
    static func linkIfSourceExists(_ source: String, _ destination: String) throws(StorageError) -> Bool {
        if Glibc.link(source, destination) == 0 || errno == EEXIST { return true }
        if errno == ENOENT, regularFileSize(source) == nil { return false }
        throw fail("link", destination)
    }
}

extension FileSystem {
    /// What garbage collection and scrub need to know of a file.
    struct Status {
        let size: UInt64
        let linkCount: UInt64
        let inode: UInt64
        let device: UInt64
        /// The later of modification and status change (a new hard link changes the latter).
        let lastChange: Int
        let isRegularFile: Bool
    }

    static func status(_ path: String) -> Status? {
        guard let info = try? fileStatus(path, link: true) else { return nil }
        return Status(size: UInt64(info.st_size), linkCount: UInt64(info.st_nlink), inode: UInt64(info.st_ino),
                      device: UInt64(info.st_dev), lastChange: max(info.st_mtim.tv_sec, info.st_ctim.tv_sec),
                      isRegularFile: (info.st_mode & S_IFMT) == S_IFREG)
    }

    /// Takes an flock without waiting; false when another holder has it. The lock goes
    /// when `fd` is closed.
    static func tryLock(_ fd: Int32) -> Bool { flock(fd, LOCK_EX | LOCK_NB) == 0 }
}
