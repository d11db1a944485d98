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

    /// Answers one request. Never throws: every failure becomes an OCI error answer.
    public func handle(_ request: RegistryRequest) -> RegistryResponse {
        var parsed: Route?
        var response: RegistryResponse
        do {
            let route = try Route.parse(request.path)
            parsed = route
            try authorize(route, request)
            response = try dispatch(route, request)
        } catch {
            response = error.response
        }
        response.route = parsed?.name ?? "unknown"
        response.repository = parsed?.repository?.value
        return response
    }

    private func dispatch(_ route: Route, _ request: RegistryRequest) throws(RegistryError) -> RegistryResponse {
        let method = request.method == "HEAD" ? "GET" : request.method
        return try RegistryError.mapping { () throws -> RegistryResponse in
            switch (route, method) {
            case (.base, "GET"):
                return RegistryResponse(status: 200, headers: [("Content-Type", "application/json")], body: Array("{}".utf8))
            case (.catalog, "GET"):
                return try catalog(request)
            case (.tags(let name), "GET"):
                return try tags(of: name, request)
            case (.manifest(let name, let reference), "GET"):
                return try getManifest(reference, in: name, request)
            case (.manifest(let name, let reference), "PUT"):
                return try putManifest(reference, in: name, request)
            case (.invalidTag(_, let text), "PUT"):
                throw RegistryError(.manifestInvalid, "\"\(text)\" is not a valid tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127})")
            case (.invalidTag(_, let text), "GET"), (.invalidTag(_, let text), "DELETE"):
                throw RegistryError(.manifestUnknown, "no manifest can be named \"\(text)\": it is neither a tag nor a digest")
            case (.manifest(let name, let reference), "DELETE"):
                try manifests.delete(reference, in: name)
                return RegistryResponse(status: 202, headers: [("Content-Length", "0")])
            case (.blob(let name, let digest), "GET"):
                return try getBlob(digest, in: name, request)
            case (.blob(let name, let digest), "DELETE"):
                try blobs.delete(digest, from: name)
                return RegistryResponse(status: 202, headers: [("Content-Length", "0")])
            case (.uploadStart(let name), "POST"):
                return try startUpload(in: name, request)
            case (.upload(let name, let id), "GET"):
                return try uploadStatus(id, in: name)
            case (.upload(let name, let id), "PATCH"):
                return try appendChunk(id, in: name, request)
            case (.upload(let name, let id), "PUT"):
                return try completeUpload(id, in: name, request)
            case (.upload(let name, let id), "DELETE"):
                try uploads.cancel(id, repository: name)
                return RegistryResponse(status: 204)
            case (.referrers(let name, let digest), "GET"):
                return try referrers(of: digest, in: name, request)
            default:
                throw RegistryError(.unsupported, "\(request.method) is not supported on this endpoint", status: 405,
                                    headers: [("Allow", route.allowedMethods.joined(separator: ", "))])
            }
        }
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
            ("X-Accel-Redirect", "\(options.storeLocation)/\(blobs.layout.relativeBlobPath(name, digest))"),
            ("Content-Type", contentType),
            ("Docker-Content-Digest", digest.description),
        ])
    }
}
