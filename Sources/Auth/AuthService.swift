#if canImport(Glibc)
import Glibc
#endif
import Registry
import Storage
import Synchronization

/// The worker's authenticator and token issuer: htpasswd users (bcrypt through
/// libxcrypt), robot tokens, and the Ed25519 tokens of the token endpoint, over files
/// that every worker process shares (the htpasswd file, the store's `_berth/auth/`).
///
/// - A successful Basic check is cached (keyed HMAC, bounded, `cacheTTL`, dropped when
///   the htpasswd file or the robots change); a failed one never is.
/// - Failed logins are counted per client address and per user; past the threshold,
///   attempts get 429 with `Retry-After` without any password check.
/// - A bearer token must be signed by a known key with `alg: EdDSA`, name this registry
///   as issuer and audience, be within `exp`/`nbf` (± `clockSkew`), and its subject must
///   still exist (a revoked robot's or a removed user's tokens stop working within a check).
public final class AuthService: Authenticator, TokenIssuer {
    public struct Options: Sendable {
        public var htpasswd: String?
        public var service = Defaults.tokenService
        /// `iss` of the tokens; the service name unless set.
        public var issuer: String?
        public var tokenTTL = Defaults.tokenTTL
        public var refreshTokenTTL = Defaults.refreshTokenTTL
        public var cacheTTL = 60
        public var cacheCapacity = 4096
        public var clockSkew = 30
        public var failureThreshold = 5
        /// Password hashes checked at once by this process; beyond, 429 (a flood of
        /// logins with fresh names and addresses cannot take every thread into bcrypt).
        public var concurrentHashChecks = 4
        /// Milliseconds a login waits for a free hash-check slot before its 429.
        public var hashCheckWaitMilliseconds: Int64 = 2000
        /// The operator's signing key (PEM), which then signs instead of the store's keys.
        public var tokenKey: String?
        /// How often the htpasswd file and the key folder are looked at (robots: half of it).
        public var checkIntervalMilliseconds: Int64 = 1000
        /// Trusted external issuers (their tokens work as Bearer and as a Basic password).
        public var issuers: [IssuerConfiguration] = []
        /// Seconds since 1970 (tests move it).
        public var now: @Sendable () -> Int = Secrets.wallClock
        public init() {}
    }

    public let options: Options
    public var service: String { options.service }
    var issuerName: String { options.issuer ?? options.service }
    let htpasswd: HtpasswdFile?
    public let robots: Robots
    let keys: SigningKeys
    let cache: CredentialCache
    let throttle: FailureThrottle
    let issuers: [ExternalIssuer]
    private let hashChecks = Atomic<Int>(0)
    /// Checked when a user is unknown, so an unknown user costs as much as a known one.
    private let decoyHash: String?

    public init(files: AuthFiles, options: Options = Options()) throws {
        self.options = options
        htpasswd = options.htpasswd.map { HtpasswdFile(path: $0, checkIntervalMilliseconds: options.checkIntervalMilliseconds) }
        robots = Robots(files: files, checkIntervalMilliseconds: max(options.checkIntervalMilliseconds / 2, 0))
        var configured: SigningKey?
        if let path = options.tokenKey {
            guard let pem = try AuthFiles.readFile(path, limit: 64 << 10), let key = SigningKey(pem: pem) else {
                throw AuthError("token_key \(path) is not an Ed25519 private key in PEM (openssl genpkey -algorithm ed25519)")
            }
            configured = key
        }
        keys = SigningKeys(files: files, configured: configured, checkIntervalMilliseconds: options.checkIntervalMilliseconds)
        cache = CredentialCache(capacity: options.cacheCapacity, ttl: options.cacheTTL)
        throttle = FailureThrottle(threshold: options.failureThreshold)
        for issuer in options.issuers {
            if let problem = issuer.problem { throw AuthError(problem) }
        }
        issuers = options.issuers.map { ExternalIssuer($0, checkIntervalMilliseconds: options.checkIntervalMilliseconds) }
        decoyHash = PasswordHash.bcrypt(Secrets.hex(Secrets.randomBytes(8)), cost: 10)
        if configured == nil, keys.snapshot().current == nil {
            try SigningKeys.create(in: files, now: options.now())
        }
    }

    /// Adds a new signing key to the store (`berth token rotate-key`); it signs from the
    /// next check on, and the older keys keep verifying until removed.
    public static func rotateKey(in files: AuthFiles, now: Int = Secrets.wallClock()) throws -> AuthName {
        try SigningKeys.create(in: files, now: now).id
    }

    /// The ids of the store's signing keys.
    public static func signingKeyIDs(in files: AuthFiles) throws -> [AuthName] {
        try files.signingKeys().map(\.id)
    }

    /// Takes one of the `concurrentHashChecks` slots, waiting up to 2 s (by default) for one (a burst of
    /// first logins with one credential then finds it cached); false when none came free.
    private func acquireHashCheck() -> Bool {
        let deadline = Secrets.monotonicMilliseconds() + options.hashCheckWaitMilliseconds
        while true {
            if hashChecks.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue <= options.concurrentHashChecks { return true }
            hashChecks.wrappingSubtract(1, ordering: .acquiringAndReleasing)
            if Secrets.monotonicMilliseconds() >= deadline { return false }
            usleep(2000)
        }
    }

    /// The generation of everything a cached success depends on.
    private var generation: Int { (htpasswd?.generation ?? 0) &* 1_000_003 &+ robots.generation }

    public func authenticate(_ credentials: Credentials, client: String?) -> Authentication {
        switch credentials {
        case .basic(let user, let password): basic(user, password, client: client)
        case .bearer(let token): bearer(token)
        }
    }

    private func basic(_ user: String, _ password: String, client: String?) -> Authentication {
        let now = options.now()
        let key = cache.key(["basic", user, password])
        let generation = generation
        if let identity = cache.lookup(key, generation: generation, now: now) { return .authenticated(identity) }
        let throttleKeys = FailureThrottle.keys(user: user, client: client)
        if let wait = throttle.retryAfter(throttleKeys, now: now) {
            return .refused(RegistryError(.tooManyRequests, "too many failed logins; try again in \(wait) s",
                                          headers: [("Retry-After", String(wait))]))
        }
        var identity: Identity?
        var expires: Int?
        if password.hasPrefix(Robots.secretPrefix), let robot = robots.verify(user, secret: password, now: now) {
            identity = Identity(user: robot.name, grants: robot.grants)
        } else if let issuer = externalIssuer(of: password) {
            if case .success(let found) = issuer.verify(password, now: now) {
                identity = found.identity
                expires = found.expires
            }
        } else if let htpasswd {
            guard acquireHashCheck() else {
                return .refused(RegistryError(.tooManyRequests, "too many logins at once; try again", headers: [("Retry-After", "1")]))
            }
            defer { hashChecks.wrappingSubtract(1, ordering: .acquiringAndReleasing) }
            // The same credential may have been checked by another thread meanwhile.
            if let identity = cache.lookup(key, generation: generation, now: now) { return .authenticated(identity) }
            let (hash, _) = htpasswd.hash(of: user)
            if let hash {
                if PasswordHash.verify(password, against: hash) { identity = Identity(user: user) }
            } else if let decoyHash {
                _ = PasswordHash.verify(password, against: decoyHash)
            }
        }
        guard let identity else {
            throttle.recordFailure(throttleKeys, now: now)
            return .refused(RegistryError(.unauthorized, "invalid username or password"))
        }
        throttle.recordSuccess(throttleKeys)
        cache.store(key, identity, generation: generation, now: now, expires: expires)
        return .authenticated(identity)
    }

    private func bearer(_ token: String) -> Authentication {
        let now = options.now()
        let key = cache.key(["bearer", token])
        // Tied to the credential files' generation too: a robot revoked and made again,
        // or a user removed, drops every cached token at once.
        let generation = generation
        if let identity = cache.lookup(key, generation: generation, now: now),
           identity.grants == nil || subjectIsLive(identity, kind: nil, issuedAt: nil, now: now) {
            return .authenticated(identity)
        }
        if let issuer = externalIssuer(of: token) {
            switch issuer.verify(token, now: now) {
            case .failure(let reason):
                return .refused(RegistryError(.unauthorized, "the bearer token is not valid: \(reason)"))
            case .success(let found):
                cache.store(key, found.identity, generation: generation, now: now, expires: found.expires)
                return .authenticated(found.identity)
            }
        }
        switch verify(token, audience: service, now: now) {
        case .failure(let reason):
            return .refused(RegistryError(.unauthorized, "the bearer token is not valid: \(reason)"))
        case .success(let claims):
            let identity = Identity(user: claims.sub.isEmpty ? nil : claims.sub, groups: claims.groups ?? [], grants: claims.access ?? [],
                                    grantsAreToken: true)
            cache.store(key, identity, generation: generation, now: now, expires: claims.exp)
            return .authenticated(identity)
        }
    }

    /// The configured external issuer a token claims to come from (its `iss`, unverified).
    private func externalIssuer(of token: String) -> ExternalIssuer? {
        guard !issuers.isEmpty, token.hasPrefix("eyJ"), let iss = ExternalIssuer.unverifiedIssuer(token), iss != issuerName else { return nil }
        return issuers.first { $0.configuration.issuer == iss }
    }

    /// Why a token is refused (part of the 401's message; never the token itself).
    enum TokenFailure: Error, CustomStringConvertible {
        case signature(JWT.Failure), claims(String), revoked
        var description: String {
            switch self {
            case .signature(let failure): "\(failure)"
            case .claims(let reason): reason
            case .revoked: "its subject no longer exists"
            }
        }
    }

    func verify(_ token: String, audience: String, now: Int) -> Result<TokenClaims, TokenFailure> {
        let claims: TokenClaims
        let keys = self.keys
        switch JWT.verify(token, key: { kid in keys.snapshot().publicKeys[kid] ?? keys.snapshot(missing: kid).publicKeys[kid] }) {
        case .failure(let failure): return .failure(.signature(failure))
        case .success(let found): claims = found
        }
        let skew = options.clockSkew
        guard claims.iss == issuerName else { return .failure(.claims("wrong issuer")) }
        guard claims.aud == audience else { return .failure(.claims("wrong audience")) }
        guard claims.exp > now - skew else { return .failure(.claims("expired")) }
        guard claims.nbf <= now + skew, claims.iat <= now + skew else { return .failure(.claims("not valid yet")) }
        let identity = Identity(user: claims.sub.isEmpty ? nil : claims.sub)
        guard subjectIsLive(identity, kind: claims.kind, issuedAt: claims.iat, now: now) else { return .failure(.revoked) }
        return .success(claims)
    }

    /// True while the subject of a token still exists: a robot not revoked (nor made
    /// again since the token), an htpasswd user still in the file.
    private func subjectIsLive(_ identity: Identity, kind: String?, issuedAt: Int?, now: Int) -> Bool {
        guard let user = identity.user else { return true }
        // An external issuer's user (`<issuer>:<claim>`; no htpasswd user or robot has a
        // colon): valid for the short life of the token Berth gave it.
        if kind == "external" { return true }
        if let robot = robots.robot(user, now: now), kind != "user" {
            return issuedAt.map { $0 >= robot.created } ?? true
        }
        if kind == "robot" { return false }
        return htpasswd?.hash(of: user).hash != nil
    }

    // MARK: TokenIssuer

    public func issue(for identity: Identity?, access: [AccessGrant]) throws(RegistryError) -> IssuedToken {
        let now = options.now()
        let subject = identity?.user
        let claims = TokenClaims(iss: issuerName, sub: subject ?? "", aud: service, exp: now + options.tokenTTL, nbf: now - 1, iat: now,
                                 jti: Secrets.hex(Secrets.randomBytes(16)), access: access, kind: kind(of: subject, now: now),
                                 groups: identity.map(\.groups).flatMap { $0.isEmpty ? nil : $0 })
        return IssuedToken(token: try sign(claims), expiresIn: options.tokenTTL, issuedAt: now)
    }

    public func refreshToken(for identity: Identity) throws(RegistryError) -> String? {
        let now = options.now()
        // An external identity must come back with a fresh token of its issuer.
        guard kind(of: identity.user, now: now) != "external" else { return nil }
        let claims = TokenClaims(iss: issuerName, sub: identity.user ?? "", aud: refreshAudience, exp: now + options.refreshTokenTTL,
                                 nbf: now - 1, iat: now, jti: Secrets.hex(Secrets.randomBytes(16)), access: nil,
                                 kind: kind(of: identity.user, now: now), groups: nil)
        return try sign(claims)
    }

    public func redeem(refreshToken: String) -> Identity? {
        let now = options.now()
        guard case .success(let claims) = verify(refreshToken, audience: refreshAudience, now: now), !claims.sub.isEmpty else { return nil }
        if claims.kind == "external" { return nil }
        if claims.kind == "robot" {
            guard let robot = robots.robot(claims.sub, now: now) else { return nil }
            return Identity(user: robot.name, grants: robot.grants)
        }
        return Identity(user: claims.sub)
    }

    private var refreshAudience: String { service + "#refresh" }

    private func kind(of subject: String?, now: Int) -> String? {
        guard let subject else { return nil }
        if subject.contains(":") { return "external" }
        return robots.robot(subject, now: now) != nil ? "robot" : "user"
    }

    private func sign(_ claims: TokenClaims) throws(RegistryError) -> String {
        guard let key = keys.snapshot().current, let token = JWT.sign(claims, with: key) else {
            throw RegistryError(.unknown, "no token signing key", cause: .init(operation: "sign token", reason: "no signing key in _berth/auth/keys"))
        }
        return token
    }
}
