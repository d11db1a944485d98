#if canImport(Glibc)
import Glibc
#endif
import COpenSSL

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
