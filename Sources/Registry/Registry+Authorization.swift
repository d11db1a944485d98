import Storage

extension Registry {
    /// The user nginx authenticated (REMOTE_USER), nil for anonymous.
    func user(of request: RegistryRequest) -> String? {
        guard let user = request.headers["remote-user"], !user.isEmpty else { return nil }
        return user
    }

    /// True when the request's user may read `repository` (always, without a policy).
    func mayRead(_ repository: RepositoryName, _ request: RegistryRequest) -> Bool {
        options.policy?.allows(user(of: request), .read, on: repository) ?? true
    }

    /// Refuses a request the policy does not allow, before anything about the repository
    /// (even whether it exists) is looked at: 401 for anonymous, 403 DENIED otherwise.
    /// The permission comes from the operation table; open operations pass.
    func authorize(_ operation: Operation, _ request: RegistryRequest) throws(RegistryError) {
        guard let policy = options.policy, let permission = operation.permission, let repository = operation.repository else {
            return
        }
        let user = user(of: request)
        guard !policy.allows(user, permission, on: repository) else { return }
        guard let user else {
            throw RegistryError(.unauthorized, "authentication required",
                                headers: [("WWW-Authenticate", "Basic realm=\"Berth registry\"")])
        }
        throw RegistryError(.denied, "\(user) may not \(permission.rawValue) repository \(repository)")
    }
}
