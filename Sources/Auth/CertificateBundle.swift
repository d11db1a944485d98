#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import COpenSSL

/// The trusted certificates of a distribution-compatible token server (distribution's
/// `rootcertbundle`, a PEM file), and the two ways its tokens name their signer: an
/// `x5c` chain in the JWS header leading to one of these certificates, or the `kid` of
/// one of their keys, in libtrust's form (the SHA-256 of the DER public key, its first
/// 240 bits in base32, in groups of four joined by colons).
struct CertificateBundle: Sendable {
    /// At most this many certificates are read from a bundle, and this many in a chain.
    static let maximumCertificates = 64
    static let maximumChain = 8

    private let pem: [UInt8]
    /// libtrust key id -> index of the certificate in the bundle.
    private let keyIndexes: [String: Int]

    /// nil when `pem` holds no certificate.
    init?(pem: [UInt8]) {
        self.pem = pem
        var indexes: [String: Int] = [:]
        var publicKey = [UInt8](repeating: 0, count: 8192)
        for index in 0..<Self.maximumCertificates {
            var length = 0
            let found = pem.withUnsafeBufferPointer { text in
                text.withMemoryRebound(to: CChar.self) { chars in
                    berth_bundle_public_key(chars.baseAddress, chars.count, index, &publicKey, publicKey.count, &length)
                }
            }
            guard found == 1 else { break }
            let keyID = Self.libtrustKeyID(ofPublicKey: Array(publicKey.prefix(length)))
            if indexes[keyID] == nil { indexes[keyID] = index }
        }
        guard !indexes.isEmpty else { return nil }
        keyIndexes = indexes
    }

    /// libtrust's key id of a DER SubjectPublicKeyInfo.
    static func libtrustKeyID(ofPublicKey der: [UInt8]) -> String {
        let hashed = Secrets.sha256(der).prefix(30)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)
        var letters: [UInt8] = []
        var buffer = 0, bits = 0
        for byte in hashed {
            buffer = (buffer << 8) | Int(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                letters.append(alphabet[(buffer >> bits) & 31])
            }
            buffer &= (1 << bits) - 1
        }
        var out: [UInt8] = []
        for (position, letter) in letters.enumerated() {
            if position > 0, position % 4 == 0 { out.append(UInt8(ascii: ":")) }
            out.append(letter)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// True when the chain (base64 DER, the signer's first) leads to a certificate of the
    /// bundle and its signer's key checks `signature` over `message`.
    func verify(chain: [String], es256: Bool, message: [UInt8], signature: [UInt8]) -> Bool {
        guard !chain.isEmpty, chain.count <= Self.maximumChain else { return false }
        var ders: [[UInt8]] = []
        for entry in chain {
            guard entry.utf8.count <= 16_384, let der = Data(base64Encoded: entry) else { return false }
            ders.append(Array(der))
        }
        let lengths = ders.map(\.count)
        // Pointers to each certificate, alive for the call.
        let buffers = ders.map { bytes -> UnsafeMutableBufferPointer<UInt8> in
            let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(bytes.count, 1))
            _ = buffer.initialize(from: bytes)
            return buffer
        }
        defer { buffers.forEach { $0.deallocate() } }
        let pointers: [UnsafePointer<UInt8>?] = buffers.map { UnsafePointer($0.baseAddress) }
        return pem.withUnsafeBufferPointer { text in
            text.withMemoryRebound(to: CChar.self) { chars in
                berth_x5c_verify(chars.baseAddress, chars.count, pointers, lengths, ders.count, es256 ? 1 : 0,
                                 message, message.count, signature, signature.count) == 1
            }
        }
    }

    /// True when `keyID` names a key of the bundle and that key checks `signature`.
    func verify(keyID: String, es256: Bool, message: [UInt8], signature: [UInt8]) -> Bool {
        guard let index = keyIndexes[keyID] else { return false }
        return pem.withUnsafeBufferPointer { text in
            text.withMemoryRebound(to: CChar.self) { chars in
                berth_bundle_verify(chars.baseAddress, chars.count, index, es256 ? 1 : 0,
                                    message, message.count, signature, signature.count) == 1
            }
        }
    }
}
