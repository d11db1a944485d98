#if canImport(Glibc)
import Glibc
#endif

/// The commit that wrote an `index.json`, read from the file's first bytes.
///
/// Every commit under the repository lock writes a new value into the index's top-level
/// annotation `org.berth.generation`: the previous counter plus one and 64 random bits,
/// so two different files never carry the same value, whatever inode, size or mtime they
/// share, and whichever process or node wrote them. The canonical encoder sorts keys, so
/// the annotation comes first and `peek` reads it with one `pread` of the file's head:
/// a cache validated by it checks content, not attributes that a shared filesystem's
/// attribute cache or a reused inode can make lie.
struct IndexGeneration: Equatable, Sendable {
    /// What a file written by Berth starts with.
    private static let prefix = Array("{\"annotations\":{\"\(ImageIndex.generationAnnotation)\":\"".utf8)
    private static let headSize = 512

    let value: String
    /// The size of the file it was read from: a hand edit that keeps the annotation
    /// (umoci does) almost always changes it.
    let fileSize: Int64

    /// The generation of the file at `path`; nil when there is no file or it does not
    /// start with a generation (written by another tool, or before generations). A file
    /// that cannot be read (ESTALE past its retries, EIO) throws: it must not pass for
    /// one without a generation.
    static func peek(_ path: String) throws(StorageError) -> IndexGeneration? {
        var stale = 0
        while true {
            let fd: Int32
            do { fd = try FileSystem.open(path, O_RDONLY) } catch {
                if case .io(_, _, let code) = error, code == ENOENT || code == ENOTDIR { return nil }
                throw error
            }
            defer { close(fd) }
            var info = stat()
            var head = [UInt8](repeating: 0, count: headSize)
            let count = fstat(fd, &info) == 0 ? head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, headSize, 0) } : -1
            if count < 0 {
                let code = errno
                if code == EINTR || (code == ESTALE && FileSystem.retryStale(&stale)) { continue }
                throw FileSystem.fail("read", path, code)
            }
            guard count > 0 else { return nil }
            return parse(head[0..<count], fileSize: Int64(info.st_size))
        }
    }

    /// The generation in the head of a file's bytes.
    static func parse(_ head: ArraySlice<UInt8>, fileSize: Int64) -> IndexGeneration? {
        guard head.count > prefix.count, head.starts(with: prefix) else { return nil }
        let rest = head.dropFirst(prefix.count)
        guard let end = rest.firstIndex(of: UInt8(ascii: "\"")), end > rest.startIndex else { return nil }
        let value = rest[rest.startIndex..<end]
        guard value.allSatisfy({ $0 == UInt8(ascii: "-") || Hex.value($0) != nil }) else { return nil }
        return IndexGeneration(value: String(decoding: value, as: UTF8.self), fileSize: fileSize)
    }

    /// The value the commit after `previous` writes.
    static func next(after previous: String?) -> String {
        let counter = previous.flatMap { text in text.split(separator: "-").first.flatMap { UInt64($0) } } ?? 0
        let (incremented, overflow) = counter.addingReportingOverflow(1)
        let random = UInt64.random(in: .min ... .max)
        let suffix = String(random, radix: 16)
        return "\(overflow ? 1 : incremented)-\(String(repeating: "0", count: 16 - suffix.count))\(suffix)"
    }
}
