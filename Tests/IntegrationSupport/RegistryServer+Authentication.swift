import Foundation

extension RegistryServer {
    /// Berth with authentication in the worker: an htpasswd file of `users` (bcrypt at
    /// `cost`, made by `htpasswd -B`), an optional policy, and any further `BERTH_<KEY>`
    /// settings (`BERTH_AUTH=basic`). The files live in `secrets`, which the caller removes.
    public static func authenticating(users: [String: String], policy: String? = nil, cost: Int = 5,
                                      environment: [String: String] = [:], secrets: TemporaryDirectory,
                                      workerArguments: [String] = []) throws -> RegistryServer {
        let htpasswd = "\(secrets.path)/htpasswd"
        var create = true
        for (user, password) in users.sorted(by: { $0.key < $1.key }) {
            let made = Shell.run("htpasswd", ["-B", "-C", String(cost), "-b"] + (create ? ["-c"] : []) + [htpasswd, user, password])
            guard made.succeeded else { throw ServerError.setup("htpasswd: \(made.stderr)") }
            create = false
        }
        var settings = ["BERTH_HTPASSWD": htpasswd]
        if let policy {
            let path = "\(secrets.path)/policy"
            _ = FileManager.default.createFile(atPath: path, contents: Data(policy.utf8))
            settings["BERTH_POLICY"] = path
        }
        settings.merge(environment) { $1 }
        return try RegistryServer(workerArguments: workerArguments, workerEnvironment: settings)
    }

    /// Runs `berth token …` on this server's store; its stdout.
    public func berthToken(_ arguments: [String]) -> Shell.Result {
        Shell.run(Self.binary, ["token"] + arguments + ["--store", store])
    }
}
