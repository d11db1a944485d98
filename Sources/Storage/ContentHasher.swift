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

/// Incremental SHA-512, saved and restored like `SHA256Hasher` (OpenSSL's `SHA512_CTX`
/// is a plain struct too), with its own version tag.
public struct SHA512Hasher: Sendable {
    private var context = SHA512_CTX()

    public init() { SHA512_Init(&context) }

    public mutating func update(_ buffer: UnsafeRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        SHA512_Update(&context, base, buffer.count)
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The digest of everything so far; the hasher itself is left untouched.
    public func finalize() -> Digest {
        var copy = context
        var output = [UInt8](repeating: 0, count: Int(SHA512_DIGEST_LENGTH))
        SHA512_Final(&output, &copy)
        return ContentHasher.digest(.sha512, bytes: output)
    }

    /// The saved state, tagged with the layout version and OpenSSL's build number.
    public var savedState: [UInt8] {
        var bytes = Self.stateTag
        withUnsafeBytes(of: context) { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// Restores a state saved by `savedState`; nil if it came from another layout or build.
    public init?(savedState: [UInt8]) {
        let tag = Self.stateTag
        guard savedState.count == tag.count + MemoryLayout<SHA512_CTX>.size,
              Array(savedState[0..<tag.count]) == tag else { return nil }
        var restored = SHA512_CTX()
        withUnsafeMutableBytes(of: &restored) { target in
            savedState[tag.count...].withUnsafeBytes { target.copyMemory(from: $0) }
        }
        context = restored
    }

    private static var stateTag: [UInt8] {
        let version = UInt64(OpenSSL_version_num())
        let size = UInt64(MemoryLayout<SHA512_CTX>.size)
        return Array("berth-sha512-v1".utf8) + withUnsafeBytes(of: version.littleEndian, Array.init)
            + withUnsafeBytes(of: size.littleEndian, Array.init)
    }
}

/// A running hash of one of the supported algorithms (an upload session's).
public enum StreamHasher: Sendable {
    case sha256(SHA256Hasher)
    case sha512(SHA512Hasher)

    public init(_ algorithm: Digest.Algorithm) {
        switch algorithm {
        case .sha256: self = .sha256(SHA256Hasher())
        case .sha512: self = .sha512(SHA512Hasher())
        }
    }

    /// Restores a state saved by `savedState` for `algorithm`; nil if it does not fit.
    public init?(_ algorithm: Digest.Algorithm, savedState: [UInt8]) {
        switch algorithm {
        case .sha256:
            guard let hasher = SHA256Hasher(savedState: savedState) else { return nil }
            self = .sha256(hasher)
        case .sha512:
            guard let hasher = SHA512Hasher(savedState: savedState) else { return nil }
            self = .sha512(hasher)
        }
    }

    public var algorithm: Digest.Algorithm {
        switch self {
        case .sha256: .sha256
        case .sha512: .sha512
        }
    }

    public mutating func update(_ buffer: UnsafeRawBufferPointer) {
        switch self {
        case .sha256(var hasher):
            hasher.update(buffer)
            self = .sha256(hasher)
        case .sha512(var hasher):
            hasher.update(buffer)
            self = .sha512(hasher)
        }
    }

    public func finalize() -> Digest {
        switch self {
        case .sha256(let hasher): hasher.finalize()
        case .sha512(let hasher): hasher.finalize()
        }
    }

    public var savedState: [UInt8] {
        switch self {
        case .sha256(let hasher): hasher.savedState
        case .sha512(let hasher): hasher.savedState
        }
    }
}

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
