#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Auth
import BerthService
import Storage

/// `berth token`: robot (CI) tokens and the token signing keys, in the store's bookkeeping.
struct Token: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Robot tokens for CI and Kubernetes, and the keys that sign registry tokens.",
        subcommands: [Create.self, List.self, Revoke.self, RotateKey.self])

    static func files(_ common: SettingsOptions) throws -> AuthFiles {
        let settings = try common.load()
        let root = try StoreRoot.prepare(settings.store ?? ".")
        return AuthFiles(layout: StoreLayout(root: root))
    }

    /// Records a token change in the audit log, when `audit_log` is set.
    static func audit(_ common: SettingsOptions, _ action: String, robot: String, detail: String? = nil) throws {
        guard let log = try AuditLog.open(try common.load()) else { return }
        if !log.recordCommand(action, subject: robot, detail: detail) {
            throw CommandFailure("cannot write audit_log \(log.path): \(String(cString: strerror(errno)))")
        }
    }

    static func name(_ text: String) throws -> AuthName {
        guard let name = AuthName(text) else { throw ValidationError("\"\(text)\" is not a token name ([a-z0-9][a-z0-9._-]{0,63})") }
        return name
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a robot token and print its secret (once: only its hash is stored).",
            discussion: "Log in with the robot's name as user and the secret as password: docker login -u NAME --password-stdin.")
        @OptionGroup var common: SettingsOptions
        @Argument(help: "The robot's name (its user name at login).") var name: String
        @Option(help: "What it may do at most, e.g. 'repository:team/*:pull,push' (repeatable; the policy applies too).")
        var scope: [String] = []
        @Option(help: "Lifetime: 30d, 12h, 90m, 3600s or never.") var expires = "90d"

        func run() throws {
            let robots = Robots(files: try Token.files(common))
            let now = Int(time(nil))
            let lifetime: Int?
            do { lifetime = try Lifetime.parse(expires) } catch { throw ValidationError("\(error)") }
            let scopes = scope.flatMap { $0.split(separator: " ").map(String.init) }
            guard !scopes.isEmpty else { throw ValidationError("give at least one --scope 'repository:<pattern>:<actions>'") }
            do {
                let secret = try robots.create(try Token.name(name), scopes: scopes, expires: lifetime.map { now + $0 }, now: now)
                try Token.audit(common, "token.create", robot: name, detail: scopes.joined(separator: " "))
                print(secret)
            } catch let error as ValidationError { throw error } catch let error as CommandFailure { throw error } catch {
                throw CommandFailure("cannot create robot token \(name): \(error)")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List robot tokens (names, scopes, expiry; never secrets).")
        @OptionGroup var common: SettingsOptions

        func run() throws {
            let now = Int(time(nil))
            for robot in try Robots(files: try Token.files(common)).list() {
                let expiry = robot.expires.map { $0 > now ? "expires in \(($0 - now) / 3600) h" : "expired" } ?? "never expires"
                print("\(robot.name)\t\(robot.scopes.joined(separator: " "))\t\(expiry)")
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a robot token: every worker refuses it within a second.")
        @OptionGroup var common: SettingsOptions
        @Argument var name: String

        func run() throws {
            guard try Robots(files: try Token.files(common)).revoke(try Token.name(name)) else {
                throw CommandFailure("no robot token named \(name)")
            }
            try Token.audit(common, "token.revoke", robot: name)
            print("revoked \(name)")
        }
    }

    struct RotateKey: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-key",
            abstract: "Add a new token signing key; it signs from now on, older keys keep verifying until removed.")
        @OptionGroup var common: SettingsOptions
        @Option(help: "Remove this older key (its tokens stop working).") var remove: String?
        @Flag(help: "Only when the store has no signing key yet (install and run scripts).") var ifNone = false

        func run() throws {
            let files = try Token.files(common)
            if let remove {
                guard try files.removeSigningKey(try Token.name(remove)) else { throw CommandFailure("no signing key \(remove)") }
                print("removed key \(remove)")
                return
            }
            if ifNone, let existing = try AuthService.signingKeyIDs(in: files).max() {
                print("signing key \(existing)")
                return
            }
            print("new signing key \(try AuthService.rotateKey(in: files))")
        }
    }
}
