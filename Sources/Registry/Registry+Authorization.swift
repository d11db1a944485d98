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
    /// The catalog is filtered instead, and `/v2/` is open.
    func authorize(_ route: Route, _ request: RegistryRequest) throws(RegistryError) {
        guard let policy = options.policy else { return }
        let method = request.method == "HEAD" ? "GET" : request.method
        let repository: RepositoryName
        let permission: AccessPolicy.Permission
        switch route {
        case .base, .catalog:
            return
        case .tags(let name), .referrers(let name, _):
            (repository, permission) = (name, .read)
        case .manifest(let name, _), .invalidTag(let name, _), .blob(let name, _):
            (repository, permission) = (name, method == "GET" ? .read : method == "DELETE" ? .delete : .write)
        case .uploadStart(let name), .upload(let name, _):
            (repository, permission) = (name, .write)
        }
        let user = user(of: request)
        guard !policy.allows(user, permission, on: repository) else { return }
        guard let user else {
            throw RegistryError(.unauthorized, "authentication required", status: 401,
                                headers: [("WWW-Authenticate", "Basic realm=\"Berth registry\"")])
        }
        throw RegistryError(.denied, "\(user) may not \(permission.rawValue) repository \(repository)")
    }
}
