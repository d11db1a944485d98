import Auth
import Foundation
import Registry
import Storage
import Locks
import TestSupport

/// A store, an htpasswd file and an AuthService over them, with a clock the test moves.
final class AuthFixture: Sendable {
    let directory = TemporaryDirectory(prefix: "berth-authtest")
    final class Clock: Sendable {
        let seconds = Locked<Int>(1_800_000_000)
        func now() -> Int { seconds.withLock { $0 } }
    }
    let clock = Clock()
    var storeRoot: String { directory.path + "/store" }
    var htpasswd: String { directory.path + "/htpasswd" }

    init(users: [String: String] = ["alice": "alice-pw", "bob": "bob-pw"], cost: Int = 4) {
        mkdir(directory.path + "/store", 0o755)
        writeUsers(users, cost: cost)
    }

    func writeUsers(_ users: [String: String], cost: Int = 4) {
        var text = ""
        for (user, password) in users.sorted(by: { $0.key < $1.key }) {
            let line = Shell.run("htpasswd", ["-nbB", "-C", String(cost), user, password]).stdout
            text += line.trimmingCharacters(in: .whitespacesAndNewlines) + "\n"
        }
        let temp = htpasswd + ".new"
        _ = FileManager.default.createFile(atPath: temp, contents: Data(text.utf8))
        rename(temp, htpasswd)
    }

    var files: AuthFiles {
        let layout = StoreLayout(root: storeRoot)
        for path in layout.requiredDirectories { mkdir(path, 0o755) }
        return AuthFiles(layout: layout)
    }

    func service(_ configure: (inout AuthService.Options) -> Void = { _ in }) throws -> AuthService {
        var options = AuthService.Options()
        options.htpasswd = htpasswd
        options.checkIntervalMilliseconds = 0
        let clock = self.clock
        options.now = { clock.now() }
        configure(&options)
        return try AuthService(files: files, options: options)
    }

    func advance(_ seconds: Int) { clock.seconds.withLock { $0 += seconds } }

    deinit { directory.remove() }
}

extension Authentication {
    var identity: Identity? {
        if case .authenticated(let identity) = self { return identity }
        return nil
    }
    var error: RegistryError? {
        if case .refused(let error) = self { return error }
        return nil
    }
}
