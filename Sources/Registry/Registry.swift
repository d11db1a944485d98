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
        /// The Prometheus text for `/metrics`; nil: the route answers 404.
        public var metricsExposition: (@Sendable () -> [UInt8])?
        /// Checks the `Authorization` header; nil: the worker authenticates nobody and
        /// trusts REMOTE_USER from nginx (today's `auth_basic` setups).
        public var authenticator: (any Authenticator)?
        /// Signs the token endpoint's tokens; nil: `/token` answers 404.
        public var tokenIssuer: (any TokenIssuer)?
        /// What a 401 asks for.
        public var challenge = Challenge.basic

        public init() {}
    }

    public let options: Options
    let capabilities: Capabilities
    var repositories: any RepositoryCatalog { capabilities.repositories }
    var blobs: any BlobStatter { capabilities.blobs }
    var links: any BlobLinker { capabilities.links }
    var uploads: any BlobIngester { capabilities.uploads }
    var manifests: any ManifestService { capabilities.manifests }
    var tagService: any TagService { capabilities.tags }
    var referrerIndex: any ReferrerIndex { capabilities.referrers }

    /// The API over `capabilities`: a store's own (`store.capabilities`) or decorated ones.
    public init(capabilities: Capabilities, options: Options = Options()) {
        self.options = options
        self.capabilities = capabilities
    }

    /// The API over a store's disk capabilities.
    public init(store: Store, options: Options = Options()) {
        self.init(capabilities: store.capabilities, options: options)
    }

    /// Answers one request: route, operation table, authorization, handler. Never throws:
    /// every failure becomes an OCI error answer.
    public func handle(_ request: RegistryRequest) -> RegistryResponse {
        var parsed: Route?
        var namespace: String?
        var response: RegistryResponse
        var failure: RegistryError?
        var request = request
        do throws(RegistryError) {
            let sent = try Route.parse(request.path)
            parsed = sent
            // Who asks comes first: with mirror_default, where a read goes depends on what they may read.
            request.identity = try identify(request)
            let (route, chosen) = try mirrorRoute(sent, request)
            parsed = route
            namespace = chosen
            guard let method = RequestMethod(http: request.method), let operation = operation(route, method, request) else {
                throw RegistryError(.methodNotAllowed, "\(String(request.method.prefix(20))) is not supported on this endpoint",
                                    headers: [("Allow", allowedMethods(of: route).joined(separator: ", "))])
            }
            try authorize(operation, request, sentAs: route.repository == sent.repository ? nil : sent.repository)
            try refuseWritesToMirrors(operation)
            response = try operation.run()
        } catch {
            response = error.response
            failure = error
        }
        if let namespace { response.headers.append(("OCI-Namespace", namespace)) }
        // The token endpoint names the user a password grant authenticated.
        response.user = response.user ?? request.identity?.user
        if let parsed { response.audit += Self.auditFacts(of: parsed, request, response, error: failure) }
        response.route = parsed?.name ?? "unknown"
        response.repository = parsed?.repository?.value
        return response
    }

    /// `304 Not Modified` when `If-None-Match` names the content's entity tag (the quoted
    /// digest, which nginx sends as `ETag` with the content) or is `*`; nil otherwise.
    /// Answered here, before the redirect, since nginx compares only its own ETags.
    func notModified(_ digest: Digest, _ request: RegistryRequest, byDigest: Bool) -> RegistryResponse? {
        let wanted = digest.description
        guard request.ifNoneMatch.contains(where: { $0 == wanted || $0 == "*" }) else { return nil }
        return RegistryResponse(status: 304, headers: [
            ("ETag", Self.entityTag(digest)),
            ("Docker-Content-Digest", wanted),
            // As the store location would send with the content (see the nginx site).
            ("Cache-Control", byDigest ? "max-age=31536000, immutable" : "no-cache"),
        ])
    }

    /// The entity tag of stored content: its digest, quoted.
    public static func entityTag(_ digest: Digest) -> String { "\"\(digest)\"" }

    /// Headers that hand a stored blob to nginx.
    func accelRedirect(_ digest: Digest, in name: RepositoryName, contentType: String) -> RegistryResponse {
        RegistryResponse(status: 200, headers: [
            ("X-Accel-Redirect", "\(options.storeLocation)/\(capabilities.layout.relativeBlobPath(name, digest))"),
            ("Content-Type", contentType),
            ("Docker-Content-Digest", digest.description),
        ])
    }
}
