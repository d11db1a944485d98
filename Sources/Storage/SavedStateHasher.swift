#if canImport(Glibc)
import Glibc
#endif
import COpenSSL

/// Incremental SHA-2 whose state can be saved after part of a stream and restored in
/// another process: OpenSSL's `SHA256_CTX` and `SHA512_CTX` are plain structs. The saved
/// bytes carry a tag (algorithm, layout version, OpenSSL's build number, struct size), so
/// a different build refuses them instead of misreading them.
public struct SavedStateHasher<Context: HashContext>: Sendable {
    private var context: Context

    public init() { context = Context.started() }

    public mutating func update(_ buffer: UnsafeRawBufferPointer) {
        guard buffer.baseAddress != nil, buffer.count > 0 else { return }
        context.update(buffer)
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The digest of everything so far; the hasher itself is left untouched.
    public func finalize() -> Digest {
        ContentHasher.digest(Context.algorithm, bytes: context.finished())
    }

    /// The state, tagged as above.
    public var savedState: [UInt8] {
        var bytes = Self.stateTag
        withUnsafeBytes(of: context) { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// Restores a state saved by `savedState`; nil if it came from another algorithm,
    /// layout or build.
    public init?(savedState: [UInt8]) {
        let tag = Self.stateTag
        guard savedState.count == tag.count + MemoryLayout<Context>.size,
              Array(savedState[0..<tag.count]) == tag else { return nil }
        var restored = Context.started()
        withUnsafeMutableBytes(of: &restored) { target in
            savedState[tag.count...].withUnsafeBytes { target.copyMemory(from: $0) }
        }
        context = restored
    }

    private static var stateTag: [UInt8] {
        let version = UInt64(OpenSSL_version_num())
        let size = UInt64(MemoryLayout<Context>.size)
        return Array("berth-\(Context.algorithm.rawValue)-v1".utf8) + withUnsafeBytes(of: version.littleEndian, Array.init)
            + withUnsafeBytes(of: size.littleEndian, Array.init)
    }
}

public typealias SHA256Hasher = SavedStateHasher<SHA256_CTX>
public typealias SHA512Hasher = SavedStateHasher<SHA512_CTX>
