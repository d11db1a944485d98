#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Storage

extension Registry {
    /// How a registry asks for credentials in its 401 answers.
    public enum Challenge: Sendable, Equatable {
        /// `Basic realm="…"`.
        case basic
        /// `Bearer realm="<realm>",service="<service>",scope="…"` (distribution's token
        /// spec); the realm is `https://<Host>/token` unless `realm` names it.
        case bearer(realm: String?)
    }

    /// Who sent the request: from the `Authorization` header through the authenticator
    /// when the worker authenticates (nil when the header is absent), or the user nginx
    /// authenticated (REMOTE_USER) when it does not. Throws the 401/429 of refused credentials.
    func identify(_ request: RegistryRequest) throws(RegistryError) -> Identity? {
        guard let authenticator = options.authenticator else {
            guard let user = request.headers["remote-user"], !user.isEmpty else { return nil }
            return Identity(user: user)
        }
        guard let header = request.headers["authorization"] else { return nil }
        guard let credentials = Self.credentials(header) else {
            throw unauthorized("the Authorization header is neither Basic nor Bearer credentials", request, nil)
        }
        switch authenticator.authenticate(credentials, client: request.headers["remote-addr"]) {
        case .authenticated(let identity):
            return identity
        case .refused(var error):
            if error.code == .unauthorized, !error.headers.contains(where: { $0.name == "WWW-Authenticate" }) {
                error.headers.append(("WWW-Authenticate", challengeHeader(request, scope: nil, error: nil)))
            }
            throw error
        }
    }

    /// Parses `Basic <base64(user:password)>` or `Bearer <token>`.
    static func credentials(_ header: String) -> Credentials? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        let value = parts[1].trimmingSpaces
        switch parts[0].lowercased() {
        case "basic":
            guard value.utf8.count <= 8192, let decoded = Data(base64Encoded: String(value)), let text = String(validating: Array(decoded), as: UTF8.self),
                  let colon = text.firstIndex(of: ":") else { return nil }
            return .basic(user: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
        case "bearer":
            guard !value.isEmpty else { return nil }
            return .bearer(String(value))
        default:
            return nil
        }
    }

    /// True when the request's identity may read `repository` (always, without a policy).
    func mayRead(_ repository: RepositoryName, _ request: RegistryRequest) -> Bool {
        mayRead(repository, identity: request.identity)
    }

    func mayRead(_ repository: RepositoryName, identity: Identity?) -> Bool {
        (options.policy?.permits(identity, .read, on: repository) ?? true) && (identity?.tokenAllows(.read, on: repository) ?? true)
    }

    /// Refuses a request the policy (and the token's own grants) do not allow, before
    /// anything about the repository (even whether it exists) is looked at: 401 with the
    /// challenge for anonymous requests, 401 `insufficient_scope` for a token that lacks
    /// a scope the policy would grant, 403 DENIED otherwise. The permission comes from the
    /// operation table; open operations pass (`/v2/` needs credentials once the worker
    /// authenticates).
    ///
    /// A read a mirror routed (`sentAs`: the name in the URL) is judged by the policy on
    /// the routed name (`docker.io/library/alpine`), the name it is stored under; a token
    /// may grant either, since a client asks for a token for the name it sends.
    func authorize(_ operation: Operation, _ request: RegistryRequest, sentAs: RepositoryName? = nil) throws(RegistryError) {
        let identity = request.identity
        if operation.needsCredentials, options.authenticator != nil, identity == nil {
            throw unauthorized("authentication required", request, nil)
        }
        guard let permission = operation.permission, let repository = operation.repository else { return }
        let policyAllows = options.policy?.permits(identity, permission, on: repository) ?? true
        var tokenAllows = identity?.tokenAllows(permission, on: repository) ?? true
        if !tokenAllows, permission == .read, let sentAs, let identity { tokenAllows = identity.tokenAllows(.read, on: sentAs) }
        if policyAllows, tokenAllows { return }
        let scope = Self.scope(permission, repository)
        guard let identity, let user = identity.user else {
            throw unauthorized("authentication required", request, scope)
        }
        if policyAllows, case .bearer = options.challenge, identity.grantsAreToken {
            var error = RegistryError(.unauthorized, "the token does not grant \(AccessGrant.action(permission)) on \(repository)")
            error.headers.append(("WWW-Authenticate", challengeHeader(request, scope: scope, error: "insufficient_scope")))
            throw error
        }
        throw RegistryError(.denied, "\(user) may not \(permission.rawValue) repository \(repository)")
    }

    /// The scope a client should ask for to run an operation needing `permission`
    /// (docker asks `pull,push` for a push).
    static func scope(_ permission: AccessPolicy.Permission, _ repository: RepositoryName) -> String {
        switch permission {
        case .read: "repository:\(repository):pull"
        case .write: "repository:\(repository):pull,push"
        case .delete: "repository:\(repository):delete"
        }
    }

    func unauthorized(_ message: String, _ request: RegistryRequest, _ scope: String?) -> RegistryError {
        RegistryError(.unauthorized, message, headers: [("WWW-Authenticate", challengeHeader(request, scope: scope, error: nil))])
    }

    /// The `WWW-Authenticate` value of a 401.
    func challengeHeader(_ request: RegistryRequest, scope: String?, error: String?) -> String {
        switch options.challenge {
        case .basic:
            return "Basic realm=\"Berth registry\""
        case .bearer(let realm):
            var header = "Bearer realm=\"\(realm ?? "\(Self.origin(request))/token")\""
            if let service = options.tokenIssuer?.service { header += ",service=\"\(service)\"" }
            if let scope { header += ",scope=\"\(scope)\"" }
            if let error { header += ",error=\"\(error)\"" }
            return header
        }
    }

    /// `scheme://host[:port]` as the client reached nginx (BERTH_ORIGIN), else from the
    /// Host header over https; only plain host characters pass (it goes into a header).
    static func origin(_ request: RegistryRequest) -> String {
        if let origin = request.headers["x-berth-origin"] {
            for scheme in ["https://", "http://"] where origin.hasPrefix(scheme) {
                let host = String(origin.dropFirst(scheme.count))
                if safeHost(host) == host { return scheme + host }
            }
        }
        return "https://\(safeHost(request.headers["host"]))"
    }

    /// The Host header when it is a plain host[:port], else `localhost`: it goes into a
    /// header and a URL.
    static func safeHost(_ host: String?) -> String {
        guard let host, !host.isEmpty, host.utf8.count <= 255, host.utf8.allSatisfy({ byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
                || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "[") || byte == UInt8(ascii: "]")
        }) else { return "localhost" }
        return host
    }
}
