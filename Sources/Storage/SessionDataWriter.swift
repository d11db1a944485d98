#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// Appends request bytes to an upload session's data file from one aligned buffer,
/// sending every whole, aligned block past the page cache (`O_DIRECT`).
///
/// Why: an upload is hashed once as it arrives and read again only by nginx when
/// pulled, so copying it into the page cache buys nothing. On the reference VM
/// (`bench/results/`) that copy was 70% of the worker's CPU for a large upload and
/// capped it near the speed of page-cache allocation; direct writes go to the disk
/// at its own speed and leave pull-hot pages in the cache.
///
/// The bytes before the first block boundary and after the last one go through the
/// page cache as ordinary writes; the caller's fsync makes both kinds durable. Where
/// the file system refuses `O_DIRECT` (or one direct write), every write is ordinary.
struct SessionDataWriter: ~Copyable {
    /// Alignment of file offsets, lengths and memory for direct writes: 4096 satisfies
    /// every block device's logical block size and the page size.
    static let blockSize = 4096
    static let bufferSize = 1 << 20

    /// `O_DIRECT` (from `CLinux`: Glibc's module leaves it out).
    static let directFlag: Int32 = berth_o_direct

    /// How many bytes written through the page cache are handed to writeback at a time
    /// (`sync_file_range`), so the disk works while the body arrives and the fsync before
    /// the commit waits only for the last few MiB (a mirror's fetch, `writeThrough`: a whole
    /// uncached 256 MiB GET through a mirror went from 1.53 to 1.14 s on the reference VM).
    static let writebackBatch: UInt64 = 8 << 20

    private let fd: Int32
    private let path: String
    /// A second descriptor of the same file opened with `O_DIRECT` at the first whole
    /// block (small bodies never need it); -1 when direct writes are off.
    private var directFD: Int32 = Self.notOpened
    private static let notOpened: Int32 = -2
    private let buffer: UnsafeMutableRawBufferPointer
    /// Bytes read into `buffer` and not written yet.
    private var filled = 0
    /// The file offset of `buffer[0]`.
    private var fileOffset: UInt64
    /// Bytes still to go before `fileOffset` reaches a block boundary (written ordinarily).
    private var headBytes: Int
    private let writeThrough: Bool
    /// Where the bytes not yet handed to writeback start.
    private var writebackStart: UInt64

    /// Prepares to append to `fd` (the data file at `path`) at `offset`.
    init(fd: Int32, path: String, offset: UInt64, writeThrough: Bool = false) {
        self.fd = fd
        self.path = path
        self.fileOffset = offset
        self.writebackStart = offset
        self.writeThrough = writeThrough
        self.headBytes = writeThrough ? 0 : Int((UInt64(Self.blockSize) - offset % UInt64(Self.blockSize)) % UInt64(Self.blockSize))
        self.buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bufferSize, alignment: Self.blockSize)
    }

    deinit {
        if directFD >= 0 { close(directFD) }
        buffer.deallocate()
    }

    /// Where the next read from the source goes: the free part of the buffer (before the
    /// next block boundary while the unaligned head is still being collected).
    var freeSpace: UnsafeMutableRawBufferPointer {
        let limit = headBytes > 0 ? headBytes : buffer.count
        return UnsafeMutableRawBufferPointer(rebasing: buffer[filled..<limit])
    }

    /// Takes the `count` bytes just read into `freeSpace` and returns them (to hash);
    /// writes out whatever became a full head or a full buffer.
    mutating func commit(_ count: Int) throws(StorageError) -> UnsafeRawBufferPointer {
        let received = UnsafeRawBufferPointer(rebasing: buffer[filled..<(filled + count)])
        filled += count
        if writeThrough {
            try writeOrdinarily(filled)
        } else if headBytes > 0, filled == headBytes {
            try writeOrdinarily(filled)
            headBytes = 0
        } else if filled == buffer.count {
            try writeDirectly(filled)
        }
        return received
    }

    /// Writes what is left: the whole blocks directly, the tail ordinarily.
    mutating func finish() throws(StorageError) {
        guard filled > 0 else { return }
        if headBytes > 0 {
            try writeOrdinarily(filled)
            return
        }
        let whole = filled - filled % Self.blockSize
        if whole > 0 { try writeDirectly(whole) }
        if filled > 0 { try writeOrdinarily(filled) }
    }

    /// Writes `buffer[0..<count]` at `fileOffset` with `O_DIRECT` (count is a whole number
    /// of blocks) and keeps what follows it.
    private mutating func writeDirectly(_ count: Int) throws(StorageError) {
        if directFD == Self.notOpened {
            directFD = Glibc.open(path, O_WRONLY | Self.directFlag | O_CLOEXEC)
        }
        var done = 0
        while directFD >= 0, done < count {
            guard let base = buffer.baseAddress else { break }
            let written = pwrite(directFD, base + done, count - done, off_t(fileOffset) + off_t(done))
            if written < 0, errno == EINTR { continue }
            if written < 0, errno != EINVAL { throw FileSystem.fail("write", path) }
            if written <= 0 || written % Self.blockSize != 0 {
                // Refused (EINVAL) or cut mid-block: the rest goes through the page cache.
                if written > 0 { done += written }
                close(directFD)
                directFD = -1
                break
            }
            done += written
        }
        if done < count {
            try pwriteAll(UnsafeRawBufferPointer(rebasing: buffer[done..<count]), at: fileOffset + UInt64(done))
        }
        advance(count)
    }

    private mutating func writeOrdinarily(_ count: Int) throws(StorageError) {
        try pwriteAll(UnsafeRawBufferPointer(rebasing: buffer[0..<count]), at: fileOffset)
        advance(count)
    }

    private func pwriteAll(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(StorageError) {
        var done = 0
        while done < bytes.count {
            guard let base = bytes.baseAddress else { return }
            let written = pwrite(fd, base + done, bytes.count - done, off_t(offset) + off_t(done))
            if written < 0 {
                if errno == EINTR { continue }
                throw FileSystem.fail("write", path)
            }
            done += written
        }
    }

    /// Drops the first `count` bytes of the buffer (written) and moves the rest to its start.
    private mutating func advance(_ count: Int) {
        fileOffset += UInt64(count)
        if fileOffset - writebackStart >= Self.writebackBatch {
            // Advisory: a file system without it (or a direct range, with no dirty pages)
            // leaves everything to the fsync, as before.
            _ = berth_start_writeback(fd, Int64(clamping: writebackStart), Int64(clamping: fileOffset - writebackStart))
            writebackStart = fileOffset
        }
        let rest = filled - count
        if rest > 0, let base = buffer.baseAddress {
            memmove(base, base + count, rest)
        }
        filled = rest
    }
}
