#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import COpenSSL
import Registry
import Storage
import Locks

/// A trusted issuer of identity tokens (an OIDC provider, Kubernetes service-account
/// tokens, a distribution-compatible token server), as berth.conf's `issuer.<name>.*` says.
public struct IssuerConfiguration: Sendable, Equatable {
    public var name: String
    /// The `iss` its tokens carry.
    public var issuer: String?
    /// The `aud` its tokens must name (a string, or one of a list).
    public var audience: String?
    /// Its JWKS (RSA and P-256 keys), read again when the file changes.
    public var jwksFile: String?
    /// A distribution-compatible token server's trusted certificates (PEM, its
    /// `rootcertbundle`): tokens whose `x5c` chain leads to one, or whose `kid` names one
    /// of their keys. Read again when the file changes.
    public var rootCertBundle: String?
    /// The claim that names the user (`sub` unless set); users are `<name>:<value>` to the policy.
    public var userClaim = "sub"
    /// A claim holding a list of groups (for `@group` rules), if any.
    public var groupsClaim: String?
    /// Seconds of clock difference allowed on exp, nbf and iat.
    public var clockSkew = 60

    public init(name: String) { self.name = name }

    /// What is missing for it to work; nil when complete.
    public var problem: String? {
        if issuer == nil { return "issuer.\(name).issuer is not set" }
        if audience == nil { return "issuer.\(name).audience is not set" }
        if jwksFile == nil, rootCertBundle == nil { return "neither issuer.\(name).jwks_file nor issuer.\(name).rootcertbundle is set" }
        return nil
    }
}

/// Any JSON value (the claims of a foreign token).
enum JSONValue: Decodable, Equatable {
    case string(String), number(Double), bool(Bool), array([JSONValue]), object([String: JSONValue]), null

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    var string: String? { if case .string(let value) = self { value } else { nil } }
    /// A whole number of seconds, within Int.
    var seconds: Int? {
        guard case .number(let value) = self, value.isFinite, value.magnitude < 1e15 else { return nil }
        return Int(value)
    }
}

/// Verifies tokens of one external issuer: `alg` RS256 or ES256 only, matching the key's
/// type (never `none`, never HMAC), a key of its JWKS (by `kid` when the token names one)
/// or of its certificate bundle (by `x5c` chain or libtrust `kid`), then `iss`, `aud`,
/// `exp` (required), `nbf`, `iat` with the configured skew. A token that carries
/// distribution's `access` claim is held to it (and, as always, to the policy).
final class ExternalIssuer: Sendable {
    struct JWK: Decodable {
        let kty: String
        let kid: String?
        let alg: String?
        let use: String?
        let n: String?, e: String?, crv: String?, x: String?, y: String?
    }
    private struct JWKS: Decodable { let keys: [JWK] }
    private struct Header: Decodable { let alg: String; let kid: String?; let x5c: [String]? }
    private struct Keys {
        var watch: FileWatch
        var jwks: [JWK] = []
        var bundleWatch: FileWatch
        var bundle: CertificateBundle?
    }

    let configuration: IssuerConfiguration
    private let state: Locked<Keys>

    init(_ configuration: IssuerConfiguration, checkIntervalMilliseconds: Int64) {
        self.configuration = configuration
        state = Locked(Keys(watch: FileWatch(intervalMilliseconds: checkIntervalMilliseconds),
                            bundleWatch: FileWatch(intervalMilliseconds: checkIntervalMilliseconds)))
    }

    /// The `iss` of a token, unverified: only to choose which issuer verifies it.
    static func unverifiedIssuer(_ token: String) -> String? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard token.utf8.count <= JWT.maximumLength, parts.count == 3, let payload = Secrets.base64URLDecode(parts[1]),
              let claims = try? JSONDecoder().decode([String: JSONValue].self, from: Data(payload)) else { return nil }
        return claims["iss"]?.string
    }

    /// Its JWKS keys and certificate bundle, each as last read (again when its file changed).
    private var keys: (jwks: [JWK], bundle: CertificateBundle?) {
        state.withLock { state in
            if let path = configuration.jwksFile, state.watch.needsReload({ FileIdentity(of: path) }) {
                let bytes = (try? AuthFiles.readFile(path, limit: 1 << 20)) ?? nil
                state.jwks = bytes.flatMap { try? JSONDecoder().decode(JWKS.self, from: Data($0)) }?.keys ?? []
            }
            if let path = configuration.rootCertBundle, state.bundleWatch.needsReload({ FileIdentity(of: path) }) {
                let bytes = (try? AuthFiles.readFile(path, limit: 1 << 20)) ?? nil
                state.bundle = bytes.flatMap { CertificateBundle(pem: $0) }
            }
            return (state.jwks, state.bundle)
        }
    }

    /// The identity a token stands for, and until when; or why it is refused.
    func verify(_ token: String, now: Int) -> Result<(identity: Identity, expires: Int), AuthError> {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard token.utf8.count <= JWT.maximumLength, parts.count == 3, let headerBytes = Secrets.base64URLDecode(parts[0]),
              let header = try? JSONDecoder().decode(Header.self, from: Data(headerBytes)),
              let signature = Secrets.base64URLDecode(parts[2]) else { return .failure(AuthError("malformed")) }
        guard header.alg == "RS256" || header.alg == "ES256" else { return .failure(AuthError("algorithm \(header.alg.prefix(10)) not accepted")) }
        let message = Array("\(parts[0]).\(parts[1])".utf8)
        let (jwks, bundle) = keys
        let es256 = header.alg == "ES256"
        var signed = false
        if let bundle {
            if let chain = header.x5c {
                signed = bundle.verify(chain: chain, es256: es256, message: message, signature: signature)
            } else if let kid = header.kid {
                signed = bundle.verify(keyID: kid, es256: es256, message: message, signature: signature)
            }
        }
        if !signed {
            let candidates = jwks.filter { key in
                (header.kid == nil || key.kid == header.kid) && (key.alg == nil || key.alg == header.alg) && (key.use == nil || key.use == "sig")
            }
            signed = candidates.contains { Self.verify(message, signature, alg: header.alg, key: $0) }
        }
        guard signed else { return .failure(AuthError("signature")) }
        guard let payload = Secrets.base64URLDecode(parts[1]),
              let claims = try? JSONDecoder().decode([String: JSONValue].self, from: Data(payload)) else { return .failure(AuthError("malformed")) }
        let skew = configuration.clockSkew
        guard claims["iss"]?.string == configuration.issuer else { return .failure(AuthError("wrong issuer")) }
        let audiences: [String] = switch claims["aud"] {
        case .string(let value): [value]
        case .array(let values): values.compactMap(\.string)
        default: []
        }
        guard let audience = configuration.audience, audiences.contains(audience) else { return .failure(AuthError("wrong audience")) }
        guard let exp = claims["exp"]?.seconds, exp > now - skew else { return .failure(AuthError("expired")) }
        if let nbf = claims["nbf"]?.seconds, nbf > now + skew { return .failure(AuthError("not valid yet")) }
        if let iat = claims["iat"]?.seconds, iat > now + skew { return .failure(AuthError("issued in the future")) }
        guard let user = claims[configuration.userClaim]?.string, !user.isEmpty, user.utf8.count <= 256 else {
            return .failure(AuthError("no \(configuration.userClaim) claim"))
        }
        var groups: [String] = []
        if let claim = configuration.groupsClaim, case .array(let values)? = claims[claim] {
            groups = values.compactMap(\.string)
        }
        var grants: [AccessGrant]?
        if let access = claims["access"] {
            guard let parsed = Self.grants(access) else { return .failure(AuthError("malformed access claim")) }
            grants = parsed
        }
        return .success((Identity(user: "\(configuration.name):\(user)", groups: groups, grants: grants), exp))
    }

    /// Distribution's `access` claim as grants: exact repository names only (a name with
    /// a `*` would read as a policy pattern here, so it grants nothing). nil when malformed.
    static func grants(_ access: JSONValue) -> [AccessGrant]? {
        guard case .array(let entries) = access, entries.count <= 1_000 else { return nil }
        var grants: [AccessGrant] = []
        for entry in entries {
            guard case .object(let fields) = entry, let type = fields["type"]?.string, let name = fields["name"]?.string,
                  case .array(let actions)? = fields["actions"] else { return nil }
            guard !name.contains("*") else { continue }
            grants.append(AccessGrant(type: type, name: name, actions: actions.compactMap(\.string)))
        }
        return grants
    }

    static func verify(_ message: [UInt8], _ signature: [UInt8], alg: String, key: JWK) -> Bool {
        switch (alg, key.kty) {
        case ("RS256", "RSA"):
            guard let n = key.n.flatMap(Secrets.base64URLDecode), let e = key.e.flatMap(Secrets.base64URLDecode) else { return false }
            return berth_rs256_verify(n, n.count, e, e.count, message, message.count, signature, signature.count) == 1
        case ("ES256", "EC"):
            guard key.crv == "P-256", signature.count == 64, let x = key.x.flatMap(Secrets.base64URLDecode),
                  let y = key.y.flatMap(Secrets.base64URLDecode), x.count == 32, y.count == 32 else { return false }
            return berth_es256_verify(x, y, message, message.count, signature) == 1
        default:
            return false
        }
    }
}
