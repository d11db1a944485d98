import COpenSSL

/// An OpenSSL SHA-2 context as `SavedStateHasher` drives it.
public protocol HashContext: Sendable {
    static var algorithm: Digest.Algorithm { get }
    /// A context ready for the first byte.
    static func started() -> Self
    mutating func update(_ buffer: UnsafeRawBufferPointer)
    /// The digest of everything so far (from a copy: `self` goes on).
    func finished() -> [UInt8]
}

extension SHA256_CTX: HashContext {
    public static var algorithm: Digest.Algorithm { .sha256 }

    public static func started() -> SHA256_CTX {
        var context = SHA256_CTX()
        SHA256_Init(&context)
        return context
    }

    public mutating func update(_ buffer: UnsafeRawBufferPointer) {
        guard let base = buffer.baseAddress else { return }
        SHA256_Update(&self, base, buffer.count)
    }

    public func finished() -> [UInt8] {
        var copy = self
        var output = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        SHA256_Final(&output, &copy)
        return output
    }
}

extension SHA512_CTX: HashContext {
    public static var algorithm: Digest.Algorithm { .sha512 }

    public static func started() -> SHA512_CTX {
        var context = SHA512_CTX()
        SHA512_Init(&context)
        return context
    }

    public mutating func update(_ buffer: UnsafeRawBufferPointer) {
        guard let base = buffer.baseAddress else { return }
        SHA512_Update(&self, base, buffer.count)
    }

    public func finished() -> [UInt8] {
        var copy = self
        var output = [UInt8](repeating: 0, count: Int(SHA512_DIGEST_LENGTH))
        SHA512_Final(&output, &copy)
        return output
    }
}
