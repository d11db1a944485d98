#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import COpenSSL
import Registry
import Storage

/// An Ed25519 key that signs tokens (`alg: EdDSA`), named by its `kid`.
public struct SigningKey: Sendable {
    public let id: AuthName
    let seed: [UInt8]
    public let publicKey: [UInt8]

    /// nil when `seed` is not 32 bytes or OpenSSL refuses it.
    public init?(id: AuthName, seed: [UInt8]) {
        guard seed.count == 32 else { return nil }
        var publicKey = [UInt8](repeating: 0, count: 32)
        guard berth_ed25519_public_key(seed, &publicKey) == 1 else { return nil }
        self.id = id
        self.seed = seed
        self.publicKey = publicKey
    }

    /// A new random key; its id sorts after every id made earlier (`k<seconds>-<random>`).
    public static func generate(now: Int) -> SigningKey? {
        let stamp = String(now)
        let padded = String(repeating: "0", count: max(0, 12 - stamp.count)) + stamp
        guard let id = AuthName("k\(padded)-\(Secrets.hex(Secrets.randomBytes(4)))") else { return nil }
        return SigningKey(id: id, seed: Secrets.randomBytes(32))
    }

    /// A key from a PEM file (`openssl genpkey -algorithm ed25519`); its id is derived
    /// from its public key.
    public init?(pem: [UInt8]) {
        var seed = [UInt8](repeating: 0, count: 32)
        let ok = pem.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { berth_ed25519_seed_from_pem($0.baseAddress, $0.count, &seed) }
        }
        var publicKey = [UInt8](repeating: 0, count: 32)
        guard ok == 1, berth_ed25519_public_key(seed, &publicKey) == 1,
              let id = AuthName("pem-" + Secrets.hex(Array(Secrets.sha256(publicKey).prefix(8)))) else { return nil }
        self.init(id: id, seed: seed)
    }

    /// The bytes of the key file Berth stores (hex seed).
    public var fileBytes: [UInt8] { Array((Secrets.hex(seed) + "\n").utf8) }

    /// A key from its stored file.
    public init?(id: AuthName, fileBytes: [UInt8]) {
        let text = String(decoding: fileBytes.filter { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: " ") }, as: UTF8.self)
        guard let seed = Secrets.unhex(text) else { return nil }
        self.init(id: id, seed: seed)
    }

    func sign(_ message: [UInt8]) -> [UInt8]? {
        var signature = [UInt8](repeating: 0, count: 64)
        guard berth_ed25519_sign(seed, message, message.count, &signature) == 1 else { return nil }
        return signature
    }

    static func verify(publicKey: [UInt8], _ message: [UInt8], _ signature: [UInt8]) -> Bool {
        guard publicKey.count == 32, signature.count == 64 else { return false }
        return berth_ed25519_verify(publicKey, message, message.count, signature) == 1
    }
}

/// The claims of Berth's tokens: the JWT registered claims and distribution's `access`.
public struct TokenClaims: Codable, Sendable, Equatable {
    public var iss: String
    public var sub: String
    public var aud: String
    public var exp: Int
    public var nbf: Int
    public var iat: Int
    public var jti: String
    public var access: [AccessGrant]?
    /// What the subject is: `user` (htpasswd), `robot`, `external`, or absent for anonymous.
    public var kind: String?
    /// Groups an external issuer asserted for the subject.
    public var groups: [String]?
}

/// Compact JWS (JWT) with `alg: EdDSA` only: the header's algorithm must be exactly that
/// (never `none`, never an HMAC or RSA one), its `kid` must name a key Berth holds, and
/// the signature must verify, before any claim is read.
public enum JWT {
    struct Header: Codable {
        let alg: String
        let typ: String?
        let kid: String?
    }

    public static let maximumLength = 16 << 10

    public static func sign(_ claims: TokenClaims, with key: SigningKey) -> String? {
        let header = JSONText.encode(Header(alg: "EdDSA", typ: "JWT", kid: key.id.value))
        let input = Secrets.base64URL(header) + "." + Secrets.base64URL(JSONText.encode(claims))
        guard let signature = key.sign(Array(input.utf8)) else { return nil }
        return input + "." + Secrets.base64URL(signature)
    }

    public enum Failure: Error, Equatable {
        case malformed, algorithm, unknownKey, signature
    }

    /// The claims of `token` once its header and signature check out against `keys` (by kid).
    public static func verify(_ token: String, keys: [String: [UInt8]]) -> Result<TokenClaims, Failure> {
        verify(token) { keys[$0] }
    }

    /// The claims of `token`, with `key(kid)` giving the public key a kid names.
    public static func verify(_ token: String, key: (String) -> [UInt8]?) -> Result<TokenClaims, Failure> {
        guard token.utf8.count <= maximumLength else { return .failure(.malformed) }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Secrets.base64URLDecode(parts[0]),
              let header = try? JSONDecoder().decode(Header.self, from: Data(headerBytes)) else { return .failure(.malformed) }
        guard header.alg == "EdDSA" else { return .failure(.algorithm) }
        guard let kid = header.kid, kid.utf8.count <= 64, let publicKey = key(kid) else { return .failure(.unknownKey) }
        guard let signature = Secrets.base64URLDecode(parts[2]),
              SigningKey.verify(publicKey: publicKey, Array("\(parts[0]).\(parts[1])".utf8), signature) else {
            return .failure(.signature)
        }
        guard let payload = Secrets.base64URLDecode(parts[1]),
              let claims = try? JSONDecoder().decode(TokenClaims.self, from: Data(payload)) else { return .failure(.malformed) }
        return .success(claims)
    }
}
