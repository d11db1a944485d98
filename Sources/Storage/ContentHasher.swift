#if canImport(Glibc)
import Glibc
#endif
import COpenSSL

/// One-shot digests of bytes in memory and of files on disk.
public enum ContentHasher {
    public static func digest(of bytes: [UInt8], algorithm: Digest.Algorithm = .sha256) -> Digest {
        var hasher = StreamHasher(algorithm)
        bytes.withUnsafeBytes { hasher.update($0) }
        return hasher.finalize()
    }

    /// Hashes a file by streaming it; used where no running state exists (scrub, and an
    /// upload whose session hashed another algorithm than its final digest names).
    public static func digest(ofFile path: String, algorithm: Digest.Algorithm) throws(StorageError) -> Digest {
        try hasher(ofFile: path, algorithm: algorithm, length: nil).finalize()
    }

    /// Hashes the first `length` bytes of a file (all of it when nil); a file shorter than
    /// `length` is `corrupt`.
    public static func hasher(ofFile path: String, algorithm: Digest.Algorithm, length: UInt64?) throws(StorageError) -> StreamHasher {
        let fd = try FileSystem.open(path, O_RDONLY)
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var hasher = StreamHasher(algorithm)
        var remaining = length ?? UInt64.max
        while remaining > 0 {
            let wanted = Int(min(UInt64(buffer.count), remaining))
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, wanted) }
            if count < 0 {
                if errno == EINTR { continue }
                throw FileSystem.fail("read", path)
            }
            if count == 0 {
                guard length == nil else { throw .corrupt(path: path, reason: "file shorter than its recorded size") }
                break
            }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            remaining -= UInt64(count)
        }
        return hasher
    }

    static func digest(_ algorithm: Digest.Algorithm, bytes: [UInt8]) -> Digest {
        // A hash output of the right length always forms a valid digest.
        guard let digest = Digest(algorithm: algorithm, hex: Hex.encode(bytes)) else {
            preconditionFailure("hash output of unexpected length")
        }
        return digest
    }
}
