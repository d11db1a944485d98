import Storage

/// The OCI Distribution API over a Berth store, as a pure `handle(request) -> response`.
/// Blob and manifest reads are answered with `X-Accel-Redirect` into the store
/// location, so nginx sends the bytes.
public struct Registry: Sendable {
    /// Choices an operator makes.
    public struct Options: Sendable {
        /// The nginx internal location aliasing the storage root.
        public var storeLocation = "/_berth/store"
        /// `POST ?mount=<digest>` without `from` links the blob from anywhere in the store
        /// (with a policy: from a repository the user may read).
        public var automaticCrossMount = false
        /// Who may read, write and delete which repositories; nil: everyone may do everything.
        public var policy: AccessPolicy?
        /// Open upload sessions allowed per repository.
        public var maximumUploadSessions = UploadStore.defaultMaximumSessionsPerRepository
        /// The Prometheus text for `/metrics`; nil: the route answers 404.
        public var metricsExposition: (@Sendable () -> [UInt8])?

        public init() {}
    }

    public let options: Options
    let repositories: RepositoryStore
    let blobs: BlobStore
    let uploads: UploadStore
    let manifests: ManifestStore
    let referrerIndex: ReferrersStore

    public init(layout: StoreLayout, options: Options = Options()) {
        self.options = options
        repositories = RepositoryStore(layout: layout)
        blobs = BlobStore(layout: layout)
        uploads = UploadStore(layout: layout, maximumSessionsPerRepository: options.maximumUploadSessions)
        manifests = ManifestStore(layout: layout)
        referrerIndex = ReferrersStore(layout: layout)
    }

    /// Answers one request: route, operation table, authorization, handler. Never throws:
    /// every failure becomes an OCI error answer.
    public func handle(_ request: RegistryRequest) -> RegistryResponse {
        var parsed: Route?
        var response: RegistryResponse
        do throws(RegistryError) {
            let route = try Route.parse(request.path)
            parsed = route
            guard let method = RequestMethod(http: request.method), let operation = operation(route, method, request) else {
                throw RegistryError(.methodNotAllowed, "\(String(request.method.prefix(20))) is not supported on this endpoint",
                                    headers: [("Allow", allowedMethods(of: route).joined(separator: ", "))])
            }
            try authorize(operation, request)
            response = try operation.run()
        } catch {
            response = error.response
        }
        response.route = parsed?.name ?? "unknown"
        response.repository = parsed?.repository?.value
        return response
    }

    /// Headers that hand a stored blob to nginx.
    func accelRedirect(_ digest: Digest, in name: RepositoryName, contentType: String) -> RegistryResponse {
        RegistryResponse(status: 200, headers: [
            ("X-Accel-Redirect", "\(options.storeLocation)/\(blobs.layout.relativeBlobPath(name, digest))"),
            ("Content-Type", contentType),
            ("Docker-Content-Digest", digest.description),
        ])
    }
}
