#if canImport(Glibc)
import Glibc
#endif
import COpenSSL

/// Incremental SHA-256 whose state can be saved after part of a stream and restored
/// in another process (OpenSSL's `SHA256_CTX` is a plain struct).
public struct SHA256Hasher: Sendable {
    private var context = SHA256_CTX()

    public init() { SHA256_Init(&context) }

    public mutating func update(_ buffer: UnsafeRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        SHA256_Update(&context, base, buffer.count)
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The digest of everything so far; the hasher itself is left untouched.
    public func finalize() -> Digest {
        var copy = context
        var output = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        SHA256_Final(&output, &copy)
        return ContentHasher.digest(.sha256, bytes: output)
    }

    /// The saved state, tagged with the layout version and OpenSSL's build number so a
    /// different build refuses it instead of misreading it.
    public var savedState: [UInt8] {
        var bytes = Self.stateTag
        withUnsafeBytes(of: context) { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// Restores a state saved by `savedState`; nil if it came from another layout or build.
    public init?(savedState: [UInt8]) {
        let tag = Self.stateTag
        guard savedState.count == tag.count + MemoryLayout<SHA256_CTX>.size,
              Array(savedState[0..<tag.count]) == tag else { return nil }
        var restored = SHA256_CTX()
        withUnsafeMutableBytes(of: &restored) { target in
            savedState[tag.count...].withUnsafeBytes { target.copyMemory(from: $0) }
        }
        context = restored
    }

    private static var stateTag: [UInt8] {
        let version = UInt64(OpenSSL_version_num())
        let size = UInt64(MemoryLayout<SHA256_CTX>.size)
        return Array("berth-sha256-v1".utf8) + withUnsafeBytes(of: version.littleEndian, Array.init)
            + withUnsafeBytes(of: size.littleEndian, Array.init)
    }
}

/// One-shot digests of bytes in memory and of files on disk.
public enum ContentHasher {
    public static func digest(of bytes: [UInt8], algorithm: Digest.Algorithm = .sha256) -> Digest {
        switch algorithm {
        case .sha256:
            var hasher = SHA256Hasher()
            hasher.update(bytes)
            return hasher.finalize()
        case .sha512:
            var output = [UInt8](repeating: 0, count: Int(SHA512_DIGEST_LENGTH))
            bytes.withUnsafeBytes { buffer in _ = SHA512(buffer.baseAddress?.assumingMemoryBound(to: UInt8.self), buffer.count, &output) }
            return digest(.sha512, bytes: output)
        }
    }

    /// Hashes a file by streaming it; used where no running state exists (sha512 uploads, scrub).
    public static func digest(ofFile path: String, algorithm: Digest.Algorithm) throws(StorageError) -> Digest {
        let fd = try FileSystem.open(path, O_RDONLY)
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var sha256 = SHA256Hasher()
        var sha512 = SHA512_CTX()
        SHA512_Init(&sha512)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw FileSystem.fail("read", path)
            }
            if count == 0 { break }
            buffer.withUnsafeBytes { chunk in
                let slice = UnsafeRawBufferPointer(rebasing: chunk[0..<count])
                switch algorithm {
                case .sha256: sha256.update(slice)
                case .sha512: _ = SHA512_Update(&sha512, slice.baseAddress, slice.count)
                }
            }
        }
        switch algorithm {
        case .sha256:
            return sha256.finalize()
        case .sha512:
            var output = [UInt8](repeating: 0, count: Int(SHA512_DIGEST_LENGTH))
            SHA512_Final(&output, &sha512)
            return digest(.sha512, bytes: output)
        }
    }

    static func digest(_ algorithm: Digest.Algorithm, bytes: [UInt8]) -> Digest {
        // A hash output of the right length always forms a valid digest.
        guard let digest = Digest(algorithm: algorithm, hex: Hex.encode(bytes)) else {
            preconditionFailure("hash output of unexpected length")
        }
        return digest
    }
}
