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
