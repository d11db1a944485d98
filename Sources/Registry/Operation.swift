import Storage

/// One entry of the operation table: what a route does for one method, the permission
/// it needs on which repository, and the handler that answers it.
struct Operation {
    /// What the user must hold on `repository`; nil: open to everyone (`/v2/`, metrics,
    /// and the catalog, which is filtered by what the user may read instead).
    let permission: AccessPolicy.Permission?
    let repository: RepositoryName?
    /// True for `/v2/`: once the worker authenticates, it answers only a request with
    /// valid credentials (how clients discover the challenge, and `docker login` checks them).
    var needsCredentials = false
    let run: () throws(RegistryError) -> RegistryResponse

    init(_ permission: AccessPolicy.Permission, on repository: RepositoryName,
         _ run: @escaping () throws(RegistryError) -> RegistryResponse) {
        self.permission = permission
        self.repository = repository
        self.run = run
    }

    /// An operation anyone may run.
    static func open(_ run: @escaping () throws(RegistryError) -> RegistryResponse) -> Operation {
        Operation(permission: nil, repository: nil, run: run)
    }

    /// An operation anyone with valid credentials may run.
    static func authenticated(_ run: @escaping () throws(RegistryError) -> RegistryResponse) -> Operation {
        var operation = Operation(permission: nil, repository: nil, run: run)
        operation.needsCredentials = true
        return operation
    }

    private init(permission: AccessPolicy.Permission?, repository: RepositoryName?,
                 run: @escaping () throws(RegistryError) -> RegistryResponse) {
        self.permission = permission
        self.repository = repository
        self.run = run
    }
}
