import Storage

/// Every endpoint of the Distribution API that Berth answers, with its parameters
/// already validated. `Route.parse` is the only place a URL path is interpreted.
///
/// ```
/// /v2/                                     base
/// /v2/_catalog                             catalog
/// /v2/<name>/tags/list                     tags
/// /v2/<name>/manifests/<tag|digest>        manifest
/// /v2/<name>/blobs/<digest>                blob
/// /v2/<name>/blobs/uploads/                uploadStart
/// /v2/<name>/blobs/uploads/<uuid>          upload
/// /v2/<name>/referrers/<digest>            referrers
/// /metrics                                 metrics (nginx admits localhost only)
/// /token                                   token (distribution's token endpoint)
/// ```
/// `path` is the inverse of `parse`: every URL Berth writes (Location, Link) comes from it.
/// What each route does, per method, is in the operation table (`Registry+Operations.swift`).
/// Paths are read from the right, so names whose components are `blobs`, `manifests`
/// or `tags` (`org/blobs`) route like any other.
public enum Route: Equatable, Sendable {
    case base
    case catalog
    case tags(RepositoryName)
    case manifest(RepositoryName, Reference)
    /// A manifest reference that is neither a tag nor a digest: no such manifest can
    /// exist (404 to reads and deletes), and none can be pushed under it (400).
    case invalidTag(RepositoryName, String)
    case blob(RepositoryName, Digest)
    case uploadStart(RepositoryName)
    case upload(RepositoryName, UploadID)
    case referrers(RepositoryName, Digest)
    /// The Prometheus exposition; outside `/v2/`, routed through the same front door.
    case metrics
    /// The token endpoint (distribution's token spec, GET and OAuth2 POST).
    case token

    /// A short name of the endpoint (metrics label, logs).
    public var name: String {
        switch self {
        case .base: "base"
        case .catalog: "catalog"
        case .tags: "tags"
        case .manifest, .invalidTag: "manifest"
        case .blob: "blob"
        case .uploadStart: "upload_start"
        case .upload: "upload"
        case .referrers: "referrers"
        case .metrics: "metrics"
        case .token: "token"
        }
    }

    /// The repository the request is about, if any.
    public var repository: RepositoryName? {
        switch self {
        case .base, .catalog, .metrics, .token: nil
        case .tags(let name), .manifest(let name, _), .invalidTag(let name, _), .blob(let name, _),
             .uploadStart(let name), .upload(let name, _), .referrers(let name, _): name
        }
    }

    /// The path of this route, percent-encoded where needed: `Route.parse(route.path) == route`.
    public var path: String {
        switch self {
        case .base: "/v2/"
        case .catalog: "/v2/_catalog"
        case .tags(let name): "/v2/\(name.value)/tags/list"
        case .manifest(let name, let reference): "/v2/\(name.value)/manifests/\(reference)"
        case .invalidTag(let name, let text): "/v2/\(name.value)/manifests/\(PercentEncoding.encodePathComponent(text))"
        case .blob(let name, let digest): "/v2/\(name.value)/blobs/\(digest)"
        case .uploadStart(let name): "/v2/\(name.value)/blobs/uploads/"
        case .upload(let name, let id): "/v2/\(name.value)/blobs/uploads/\(id.value)"
        case .referrers(let name, let digest): "/v2/\(name.value)/referrers/\(digest)"
        case .metrics: "/metrics"
        case .token: "/token"
        }
    }

    /// Parses a raw (still percent-encoded) path. Throws the OCI error the path deserves:
    /// NAME_INVALID, DIGEST_INVALID, BLOB_UPLOAD_UNKNOWN
    /// (bad upload id), or UNSUPPORTED (404) for a path that is no API route.
    public static func parse(_ rawPath: Substring) throws(RegistryError) -> Route {
        if rawPath == "/metrics" { return .metrics }
        if rawPath == "/token" { return .token }
        guard rawPath.hasPrefix("/v2") else { throw notFound }
        let rest = rawPath.dropFirst(3)
        if rest.isEmpty || rest == "/" { return .base }
        guard rest.hasPrefix("/") else { throw notFound }
        var parts: [String] = []
        for raw in rest.utf8.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            guard let decoded = PercentDecoding.decode(Substring(raw)),
                  !decoded.utf8.contains(where: { $0 == UInt8(ascii: "/") || $0 == 0 }) else {
                throw RegistryError(.nameInvalid, "the path contains an invalid escape or character")
            }
            parts.append(decoded)
        }
        if parts == ["_catalog"] { return .catalog }
        let count = parts.count
        guard count >= 3 else { throw notFound }
        let last = parts[count - 1], previous = parts[count - 2]

        if count >= 4, parts[count - 3] == "blobs", previous == "uploads" {
            let name = try repositoryName(parts[..<(count - 3)])
            if last.isEmpty { return .uploadStart(name) }
            guard let id = UploadID(last) else {
                throw RegistryError(.blobUploadUnknown, "upload \(String(last.prefix(64))) is not in progress")
            }
            return .upload(name, id)
        }
        switch previous {
        case "blobs":
            let name = try repositoryName(parts[..<(count - 2)])
            if last == "uploads" { return .uploadStart(name) }
            return .blob(name, try digest(last))
        case "manifests":
            let name = try repositoryName(parts[..<(count - 2)])
            guard let reference = Reference(last) else {
                if Digest.looksLikeDigest(last) { throw invalidDigest(last) }
                return .invalidTag(name, String(last.prefix(140)))
            }
            return .manifest(name, reference)
        case "referrers":
            return .referrers(try repositoryName(parts[..<(count - 2)]), try digest(last))
        case "tags" where last == "list":
            return .tags(try repositoryName(parts[..<(count - 2)]))
        default:
            throw notFound
        }
    }

    private static var notFound: RegistryError {
        RegistryError(.endpointUnknown, "no such endpoint in the OCI distribution API")
    }

    private static func repositoryName(_ parts: ArraySlice<String>) throws(RegistryError) -> RepositoryName {
        let text = parts.joined(separator: "/")
        guard let name = RepositoryName(text) else {
            throw RegistryError(.nameInvalid,
                                "\"\(String(text.prefix(300)))\" is not a valid repository name (lowercase components [a-z0-9] with . _ __ - separators, joined by /, at most 255 characters)")
        }
        return name
    }

    private static func digest(_ text: String) throws(RegistryError) -> Digest {
        guard let digest = Digest(text) else { throw invalidDigest(text) }
        return digest
    }

    static func invalidDigest(_ text: String) -> RegistryError {
        RegistryError(.digestInvalid, "\"\(String(text.prefix(140)))\" is not a valid digest (sha256:<64 hex> or sha512:<128 hex>)")
    }
}
