#if canImport(Glibc)
import Glibc
#endif
import COpenSSL

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
