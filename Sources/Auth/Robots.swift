#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Registry
import Storage
import Locks

/// One robot (CI) token as stored: only the SHA-256 of its secret is kept.
public struct RobotToken: Codable, Sendable, Equatable {
    public let name: String
    /// Hex SHA-256 of the secret.
    public let sha256: String
    /// What it may do at most, as `repository:<pattern>:<actions>` scopes (patterns as in
    /// the policy: `team/*`, `team/**`); the policy applies too.
    public let scopes: [String]
    public let created: Int
    /// Seconds since 1970 after which it no longer works; nil: never expires.
    public let expires: Int?

    public var grants: [AccessGrant] { scopes.compactMap(AccessGrant.parseScope) }

    func isLive(now: Int) -> Bool { expires.map { now < $0 } ?? true }
}

/// Creating, listing and revoking robot tokens in the store (`berth token …`), and the
/// in-memory table the worker checks logins against, read again whenever the robots
/// folder changes (looked at most once per check interval, so a revocation reaches
/// every worker within it).
public final class Robots: Sendable {
    /// Every robot secret starts so: a Basic password with it is checked as a robot token.
    public static let secretPrefix = "berth_"

    private struct State {
        var watch: FileWatch
        var robots: [String: RobotToken] = [:]
        var generation = 0
    }
    let files: AuthFiles
    private let state: Locked<State>

    public init(files: AuthFiles, checkIntervalMilliseconds: Int64 = 500) {
        self.files = files
        state = Locked(State(watch: FileWatch(intervalMilliseconds: checkIntervalMilliseconds, fileClock: { [clock = files.clock] in clock.now() })))
    }

    /// Creates robot `name` and returns its secret (shown once, never stored).
    public func create(_ name: AuthName, scopes: [String], expires: Int?, now: Int) throws -> String {
        for scope in scopes {
            guard let grant = AccessGrant.parseScope(scope), grant.type == "repository",
                  grant.actions.allSatisfy({ !AccessGrant.permissions($0).isEmpty }) else {
                throw AuthError("scope \"\(scope)\" is not repository:<pattern>:<pull|push|delete|*>[,…]")
            }
        }
        let secret = Self.secretPrefix + Secrets.base64URL(Secrets.randomBytes(32))
        let record = RobotToken(name: name.value, sha256: Secrets.hex(Secrets.sha256(Array(secret.utf8))),
                                scopes: scopes, created: now, expires: expires)
        try files.saveRobot(name, JSONText.encode(record))
        return secret
    }

    public func list() throws -> [RobotToken] {
        try files.robots().compactMap { try? JSONDecoder().decode(RobotToken.self, from: Data($0.bytes)) }.sorted { $0.name < $1.name }
    }

    /// Removes robot `name`: its secret, tokens and refresh tokens stop working. False when unknown.
    public func revoke(_ name: AuthName) throws -> Bool { try files.removeRobot(name) }

    /// The live robot `name` if `secret` is its secret (constant-time compare of the hashes).
    func verify(_ name: String, secret: String, now: Int) -> RobotToken? {
        guard let robot = self.robot(name, now: now) else { return nil }
        let hash = Secrets.hex(Secrets.sha256(Array(secret.utf8)))
        return Secrets.constantTimeEqual(Array(hash.utf8), Array(robot.sha256.utf8)) ? robot : nil
    }

    /// The live robot named `name`.
    func robot(_ name: String, now: Int) -> RobotToken? {
        state.withLock { state in
            refresh(&state)
            guard let robot = state.robots[name], robot.isLive(now: now) else { return nil }
            return robot
        }
    }

    var generation: Int { state.withLock { state in refresh(&state); return state.generation } }

    private func refresh(_ state: inout State) {
        guard state.watch.needsReload({ files.robotsIdentity }) else { return }
        var robots: [String: RobotToken] = [:]
        for (name, bytes) in (try? files.robots()) ?? [] {
            if let robot = try? JSONDecoder().decode(RobotToken.self, from: Data(bytes)), robot.name == name.value {
                robots[name.value] = robot
            }
        }
        if robots != state.robots {
            state.robots = robots
            state.generation &+= 1
        }
    }
}

/// Lifetimes as `berth token create --expires` takes them: `30d`, `12h`, `90m`, `3600s`
/// (or plain seconds); `never` for none.
public enum Lifetime {
    /// Seconds, nil for `never`; throws on anything else (or past ten years).
    public static func parse(_ text: String) throws -> Int? {
        if text == "never" { return nil }
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]
        var digits = Substring(text)
        var unit = 1
        if let last = text.last, let factor = units[last] {
            unit = factor
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), digits.count <= 9, let value = Int(digits) else {
            throw AuthError("\"\(text)\" is not a lifetime like 30d, 12h, 90m, 3600s or never")
        }
        let (seconds, overflow) = value.multipliedReportingOverflow(by: unit)
        guard !overflow, seconds > 0, seconds <= 10 * 366 * 86_400 else { throw AuthError("\"\(text)\" is not between 1 s and 10 years") }
        return seconds
    }
}
