#if canImport(Glibc)
import Glibc
#endif
import Storage

extension Registry {
    /// The token endpoint of distribution's token spec. `GET /token?service=&scope=…`
    /// with Basic credentials (or none: anonymous) and `offline_token=true` for a refresh
    /// token; `POST /token` with an OAuth2 form (`grant_type=password` with `username`
    /// and `password`, or `grant_type=refresh_token` with `refresh_token`; `access_type=offline`
    /// for a refresh token). Grants each requested scope's actions that the policy (and,
    /// for a scoped credential, its own scope) allows; never more, and an empty `access`
    /// rather than an error when nothing is allowed. A refresh token is answered back
    /// unchanged (clients keep reusing it).
    func token(_ request: RegistryRequest) throws(RegistryError) -> RegistryResponse {
        guard let issuer = options.tokenIssuer else {
            throw RegistryError(.endpointUnknown, "no such endpoint in the OCI distribution API")
        }
        var identity = request.identity
        var parameters: [(key: String, value: String)]
        var refreshToken: String?
        var wantsRefreshToken: Bool
        if request.method == "POST" {
            let body: [UInt8]?
            do { body = try request.body.readAll(limit: 64 << 10) } catch {
                throw RegistryError(.unsupported, "the token request's body broke off")
            }
            guard let body else { throw RegistryError(.unsupported, "the token request's body is larger than 64 KiB") }
            parameters = Self.formItems(String(decoding: body, as: UTF8.self))
            let form = Self.firstValues(parameters)
            wantsRefreshToken = form["access_type"] == "offline"
            switch form["grant_type"] {
            case "password":
                guard let user = form["username"], let password = form["password"], let authenticator = options.authenticator else {
                    throw tokenError("grant_type=password needs username and password", request)
                }
                switch authenticator.authenticate(.basic(user: user, password: password), client: request.headers["remote-addr"]) {
                case .authenticated(let found): identity = found
                case .refused(var error):
                    if error.code == .unauthorized {
                        error.headers.append(("WWW-Authenticate", challengeHeader(request, scope: nil, error: nil)))
                    }
                    throw error
                }
            case "refresh_token":
                guard let token = form["refresh_token"], let found = issuer.redeem(refreshToken: token) else {
                    throw tokenError("the refresh token is not valid", request)
                }
                identity = found
                refreshToken = token
            default:
                throw RegistryError(.unsupported, "grant_type must be password or refresh_token")
            }
        } else {
            parameters = request.queryItems.map { (key: $0.key, value: $0.value.replacingPlus) }
            wantsRefreshToken = Self.firstValues(parameters)["offline_token"] == "true"
        }
        if let service = Self.firstValues(parameters)["service"], service != issuer.service {
            throw RegistryError(.unsupported, "this registry's token service is \(issuer.service), not \(String(service.prefix(100)))")
        }
        let scopes = parameters.filter { $0.key == "scope" }.flatMap { $0.value.split(separator: " ").map(String.init) }
        guard scopes.count <= 64 else { throw RegistryError(.unsupported, "more than 64 scopes in one token request") }
        let access = grantedAccess(scopes, to: identity)
        let issued = try issuer.issue(for: identity, access: access)
        if wantsRefreshToken, refreshToken == nil, let identity, identity.user != nil {
            refreshToken = try issuer.refreshToken(for: identity)
        }
        let answer = TokenAnswer(token: issued.token, access_token: issued.token, expires_in: issued.expiresIn,
                                 issued_at: Self.timestamp(issued.issuedAt), refresh_token: refreshToken)
        var response = RegistryResponse(status: 200, headers: [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
                                        body: JSONText.encode(answer))
        response.user = identity?.user
        return response
    }

    /// The requested scopes cut down to what `identity` may do: repository scopes with a
    /// valid name only, each action kept when the policy and the credential's own scope allow it.
    func grantedAccess(_ scopes: [String], to identity: Identity?) -> [AccessGrant] {
        var granted: [String: [String]] = [:]
        var order: [String] = []
        for scope in scopes {
            guard let wanted = AccessGrant.parseScope(scope), wanted.type == "repository",
                  let name = RepositoryName(wanted.name) else { continue }
            for action in wanted.actions {
                for permission in AccessGrant.permissions(action) {
                    var allowed = (options.policy?.permits(identity, permission, on: name) ?? true)
                        && (identity?.tokenAllows(permission, on: name) ?? true)
                    // A pull of a name the default mirror serves is judged on the mirrored name, as the pull itself is.
                    if !allowed, permission == .read, let routed = try? defaultMirrorName(of: name, identity: identity) {
                        allowed = mayRead(routed, identity: identity)
                    }
                    let wire = AccessGrant.action(permission)
                    guard allowed, !(granted[name.value]?.contains(wire) ?? false) else { continue }
                    if granted[name.value] == nil { order.append(name.value) }
                    granted[name.value, default: []].append(wire)
                }
            }
        }
        return order.map { AccessGrant(name: $0, actions: granted[$0] ?? []) }
    }

    private func tokenError(_ message: String, _ request: RegistryRequest) -> RegistryError {
        unauthorized(message, request, nil)
    }

    private struct TokenAnswer: Encodable {
        let token: String
        let access_token: String
        let expires_in: Int
        let issued_at: String
        let refresh_token: String?
    }

    /// `application/x-www-form-urlencoded` pairs, decoded (`+` is a space).
    static func formItems(_ text: String) -> [(key: String, value: String)] {
        let probe = RegistryRequest(method: "POST", uri: "/?" + text)
        return probe.queryItems.map { (key: $0.key, value: $0.value.replacingPlus) }
    }

    static func firstValues(_ items: [(key: String, value: String)]) -> [String: String] {
        var result: [String: String] = [:]
        for (key, value) in items where result[key] == nil { result[key] = value }
        return result
    }

    /// RFC 3339 in UTC.
    static func timestamp(_ seconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}

extension String {
    /// `+` read as a space, as form encoding (and Go's query encoder) writes it.
    var replacingPlus: String { contains("+") ? String(map { $0 == "+" ? " " : $0 }) : self }
}
