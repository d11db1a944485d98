import Storage

/// Who made a request, once their credentials checked out.
public struct Identity: Sendable, Equatable {
    /// The user (an htpasswd user, a robot's name, a token's subject); nil: the holder
    /// of a token issued to an anonymous client, which counts as anonymous to the policy.
    public let user: String?
    /// Groups the credential itself asserts (an external token's groups claim); the
    /// policy file adds its own groups for the user.
    public let groups: [String]
    /// For a bearer token: exactly the access it carries, which every request must stay
    /// within (as well as within the policy); nil: the policy alone decides.
    public let grants: [AccessGrant]?
    /// True when the grants are a bearer token's (a new token may carry more: a refusal
    /// is an `insufficient_scope` challenge), false when they are a credential's own
    /// limit (a robot's scope: a refusal is final).
    public let grantsAreToken: Bool

    public init(user: String?, groups: [String] = [], grants: [AccessGrant]? = nil, grantsAreToken: Bool = false) {
        self.user = user
        self.groups = groups
        self.grants = grants
        self.grantsAreToken = grantsAreToken
    }

    /// True when `grants` (if any) allow `permission` on `repository`.
    public func tokenAllows(_ permission: AccessPolicy.Permission, on repository: RepositoryName) -> Bool {
        guard let grants else { return true }
        return grants.contains { $0.allows(permission, on: repository) }
    }
}

/// One entry of distribution's `access` claim: `{"type":"repository","name":"team/app","actions":["pull","push"]}`.
/// `name` may be a policy pattern (`team/*`) in a robot's scope; a token's access names
/// exact repositories.
public struct AccessGrant: Sendable, Hashable, Codable {
    public let type: String
    public let name: String
    public let actions: [String]

    public init(type: String = "repository", name: String, actions: [String]) {
        self.type = type
        self.name = name
        self.actions = actions
    }

    /// The wire action of a permission: pull, push, delete.
    public static func action(_ permission: AccessPolicy.Permission) -> String {
        switch permission {
        case .read: "pull"
        case .write: "push"
        case .delete: "delete"
        }
    }

    /// The permission a wire action asks for (`*` is every one).
    public static func permissions(_ action: String) -> [AccessPolicy.Permission] {
        switch action {
        case "pull": [.read]
        case "push": [.write]
        case "delete": [.delete]
        case "*": AccessPolicy.Permission.allCases
        default: []
        }
    }

    public func allows(_ permission: AccessPolicy.Permission, on repository: RepositoryName) -> Bool {
        type == "repository" && actions.contains { Self.permissions($0).contains(permission) }
            && AccessPolicy.matches(pattern: name, repository)
    }

    /// Parses `repository:<name>:<actions>` (the `scope` of the token spec). nil for any
    /// other form; unknown resource types are not granted.
    public static func parseScope(_ text: String) -> AccessGrant? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        // A name may carry a port-less registry host? No: the scope names a repository only.
        guard parts.count == 3, !parts[1].isEmpty else { return nil }
        let actions = parts[2].split(separator: ",").map(String.init)
        return AccessGrant(type: String(parts[0]), name: String(parts[1]), actions: actions)
    }

    /// The scope string of this grant.
    public var scope: String { "\(type):\(name):\(actions.joined(separator: ","))" }
}

/// Credentials a request carries in its `Authorization` header.
public enum Credentials: Sendable, Equatable {
    case basic(user: String, password: String)
    case bearer(String)
}

/// The outcome of checking credentials.
public enum Authentication: Sendable {
    case authenticated(Identity)
    /// Wrong credentials (401 with the registry's challenge) or too many failures (429):
    /// the error to answer.
    case refused(RegistryError)
}

/// Checks credentials: htpasswd users, robot tokens, tokens this registry or a trusted
/// issuer signed. Implemented by the `Auth` module; tests use fakes. `client` is the
/// client's address, for slowing down repeated failures.
public protocol Authenticator: Sendable {
    func authenticate(_ credentials: Credentials, client: String?) -> Authentication
}

/// A signed access token, as the token endpoint answers it.
public struct IssuedToken: Sendable {
    public let token: String
    public let expiresIn: Int
    /// Seconds since 1970.
    public let issuedAt: Int
    public init(token: String, expiresIn: Int, issuedAt: Int) {
        self.token = token
        self.expiresIn = expiresIn
        self.issuedAt = issuedAt
    }
}

/// Signs the tokens of the token endpoint, and redeems the refresh tokens it hands out.
public protocol TokenIssuer: Sendable {
    /// The token service name (`service` of the challenge, `aud` of tokens).
    var service: String { get }
    /// An access token for `identity` (nil: anonymous) carrying exactly `access` (and
    /// the identity's asserted groups, which the policy checks again on every request).
    func issue(for identity: Identity?, access: [AccessGrant]) throws(RegistryError) -> IssuedToken
    /// A long-lived refresh token for `identity` (the `offline_token` flow); nil when
    /// its kind of credential gets none (an external issuer's identity).
    func refreshToken(for identity: Identity) throws(RegistryError) -> String?
    /// The identity a refresh token stands for, when it is genuine, unexpired and its
    /// user still exists (a revoked robot's refresh token is refused).
    func redeem(refreshToken: String) -> Identity?
}
