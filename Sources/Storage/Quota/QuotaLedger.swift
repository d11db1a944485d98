#if canImport(Glibc)
import Glibc
#endif
import Locks

/// The distinct blobs the repositories of one quota account hold, with their sizes, in
/// `_berth/quota/<key>/ledger` (`StoreLayout.quotaLedgerFile`).
///
/// The file is a header line naming this version of the file (a fresh random id each time
/// it is replaced whole), then one line per change: `+ <digest> <size>` when a blob joins
/// the account, `- <digest>` when the last of its repositories lets it go. Changes are
/// appended and fsynced under the account's lock (`QuotaBook`); a line cut off by a crash
/// has no newline and is dropped by the next writer. Each process caches what it has read
/// and on every look reads only what was appended since (a changed header: read it all).
/// The file is replaced whole (temp file, fsync, rename) when it is compacted and when
/// `berth scrub` or `gc` reconciles it with the disk.
final class QuotaLedger: Sendable {
    struct Contents: Sendable {
        /// The header of the file these were read from; nil: no file yet.
        var header: String?
        /// Bytes of the file taken in, ending at a newline.
        var offset = 0
        var sizes: [Digest: UInt64] = [:]
        /// The sum of `sizes` (saturating).
        var used: UInt64 = 0
        /// Change lines taken in, for deciding when to compact.
        var lines = 0

        mutating func apply(_ change: Change) {
            switch change {
            case .added(let digest, let size):
                guard sizes[digest] == nil else { return }
                sizes[digest] = size
                let (sum, overflow) = used.addingReportingOverflow(size)
                used = overflow ? .max : sum
            case .removed(let digest):
                guard let size = sizes.removeValue(forKey: digest) else { return }
                used = used >= size ? used - size : 0
            }
        }
    }

    enum Change: Sendable, Equatable {
        case added(Digest, UInt64)
        case removed(Digest)

        var line: String {
            switch self {
            case .added(let digest, let size): "+ \(digest) \(size)\n"
            case .removed(let digest): "- \(digest)\n"
            }
        }

        /// nil for anything that is not a change line (the header, a damaged line).
        init?(line: Substring) {
            let fields = line.split(separator: " ")
            switch fields.first {
            case "+"?:
                guard fields.count == 3, let digest = Digest(String(fields[1])), let size = UInt64(fields[2]) else { return nil }
                self = .added(digest, size)
            case "-"?:
                guard fields.count == 2, let digest = Digest(String(fields[1])) else { return nil }
                self = .removed(digest)
            default:
                return nil
            }
        }
    }

    let account: QuotaAccount
    let path: String
    private let temporaryDirectory: String
    private let cache = Locked(Contents())

    init(account: QuotaAccount, layout: StoreLayout) {
        self.account = account
        path = layout.quotaLedgerFile(account)
        temporaryDirectory = layout.temporaryDirectory
    }

    /// The account as the file says now. Safe without the account's lock (a line being
    /// appended is not taken in until its newline is there).
    func read() throws(StorageError) -> Contents {
        try cache.withLock { (cached: inout Contents) throws(StorageError) -> Contents in
            try refresh(&cached)
            return cached
        }
    }

    /// Appends `changes` (those that change something) durably. The caller holds the
    /// account's lock.
    func append(_ changes: [Change]) throws(StorageError) {
        try cache.withLock { (cached: inout Contents) throws(StorageError) in
            try refresh(&cached)
            var next = cached
            var text = ""
            for change in changes {
                let before = next.sizes.count
                next.apply(change)
                if next.sizes.count != before { text += change.line }
            }
            guard !text.isEmpty else { return }
            if cached.header == nil {
                cached = try replace(with: [:])
                next.header = cached.header
                next.offset = cached.offset
            }
            let fd = try FileSystem.open(path, O_WRONLY)
            defer { close(fd) }
            // A line cut off by a crash (no newline) goes before anything is added after it.
            if ftruncate(fd, off_t(cached.offset)) != 0 { throw FileSystem.fail("ftruncate", path) }
            let bytes = Array(text.utf8)
            if lseek(fd, off_t(cached.offset), SEEK_SET) < 0 { throw FileSystem.fail("lseek", path) }
            var failure: StorageError?
            bytes.withUnsafeBytes { buffer in
                do throws(StorageError) { try FileSystem.writeAll(fd, buffer, path: path) } catch { failure = error }
            }
            if let failure { throw failure }
            try FileSystem.fsync(fd, path: path)
            next.offset += bytes.count
            next.lines += changes.count
            cached = next
            if cached.lines > 2 * cached.sizes.count + 4096 { cached = try replace(with: cached.sizes) }
        }
    }

    /// Replaces the file whole with `sizes` (compaction, reconciliation). The caller
    /// holds the account's lock.
    func reset(to sizes: [Digest: UInt64]) throws(StorageError) {
        try cache.withLock { (cached: inout Contents) throws(StorageError) in cached = try replace(with: sizes) }
    }

    private func replace(with sizes: [Digest: UInt64]) throws(StorageError) -> Contents {
        var contents = Contents()
        // The pattern is for people reading the file; cut so the header stays short.
        contents.header = "# berth quota ledger \(UploadID.random().value) for \(account.pattern.text.prefix(200))"
        var text = (contents.header ?? "") + "\n"
        contents.offset = text.utf8.count
        for (digest, size) in sizes.sorted(by: { $0.key < $1.key }) {
            contents.apply(.added(digest, size))
            text += Change.added(digest, size).line
        }
        contents.offset = text.utf8.count
        try FileSystem.makeDirectories(FileSystem.parent(of: path))
        try FileSystem.makeDirectories(temporaryDirectory)
        try FileSystem.writeAtomically(Array(text.utf8), to: path, temporaryDirectory: temporaryDirectory)
        return contents
    }

    /// Takes in what the file gained since `cached` was read, or all of it when the file
    /// was replaced meanwhile.
    private func refresh(_ cached: inout Contents) throws(StorageError) {
        let fd: Int32
        do { fd = try FileSystem.open(path, O_RDONLY) } catch {
            if case .io(_, _, let code) = error, code == ENOENT { cached = Contents(); return }
            throw error
        }
        defer { close(fd) }
        var headBuffer = [UInt8](repeating: 0, count: 4096)
        let headCount = try readAt(fd, into: &headBuffer, offset: 0)
        guard let newline = headBuffer[0..<headCount].firstIndex(of: UInt8(ascii: "\n")) else {
            throw .corrupt(path: path, reason: "quota ledger without a header line")
        }
        let header = String(decoding: headBuffer[0..<newline], as: UTF8.self)
        if header != cached.header {
            cached = Contents()
            cached.header = header
            cached.offset = newline + 1
        }
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 256 * 1024)
        var position = cached.offset
        while true {
            let count = try readAt(fd, into: &chunk, offset: position)
            if count == 0 { break }
            position += count
            pending.append(contentsOf: chunk[0..<count])
            guard let last = pending.lastIndex(of: UInt8(ascii: "\n")) else { continue }
            for line in pending[...last].split(separator: UInt8(ascii: "\n")) {
                if let change = Change(line: Substring(String(decoding: line, as: UTF8.self))) { cached.apply(change) }
                cached.lines += 1
            }
            cached.offset += last + 1
            pending.removeFirst(last + 1)
        }
    }

    private func readAt(_ fd: Int32, into buffer: inout [UInt8], offset: Int) throws(StorageError) -> Int {
        while true {
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
            if count >= 0 { return count }
            if errno == EINTR { continue }
            throw FileSystem.fail("pread", path)
        }
    }
}
