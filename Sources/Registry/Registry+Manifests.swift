import Storage

extension Registry {
    /// Tags one `PUT …/manifests/<digest>?tag=…` may apply; more are answered 414. The
    /// spec asks for at least 10. 100 tags of the longest form (128 characters) fit in
    /// nginx's 16 KiB request line and their `OCI-Tag` answer headers in its 16 KiB
    /// `fastcgi_buffer_size`.
    public static let maximumTagsPerPush = 100

    func getManifest(_ reference: Reference, in name: RepositoryName, _ request: RegistryRequest) throws(RegistryError) -> RegistryResponse {
        if !request.mayWait, let pullThrough = capabilities.pullThrough, pullThrough.needsUpstream(reference, in: name) {
            return .moveToWaitingThread
        }
        let resolved = try storage { () throws(StorageError) in try manifests.resolve(reference, in: name) }
        let byDigest = if case .digest = reference { true } else { false }
        if let answer = notModified(resolved.digest, request, byDigest: byDigest) { return answer }
        return accelRedirect(resolved.digest, in: name, contentType: resolved.mediaType)
    }

    /// `PUT …/manifests/<reference>[?tag=…]`: reads at most 4 MiB, validates, stores, and
    /// points the URL's tag and every `tag` parameter at it in one `index.json` commit.
    /// Answers one `OCI-Tag` header per tag applied.
    func putManifest(_ reference: Reference, in name: RepositoryName, _ request: RegistryRequest) throws(RegistryError) -> RegistryResponse {
        let tags = try tagParameters(request, reference: reference)
        let limit = ManifestDocument.maximumSize
        if let length = try request.contentLength(), length > UInt64(limit) { throw manifestTooLarge }
        let pushed = try storage { () throws(StorageError) -> PushedManifest? in
            guard let body = try request.body.readAll(limit: limit) else { return nil }
            return try manifests.put(body, contentType: request.headers["content-type"], reference: reference,
                                     repository: name, tags: tags)
        }
        guard let pushed else { throw manifestTooLarge }
        var headers: [(name: String, value: String)] = [
            ("Location", Route.manifest(name, .digest(pushed.digest)).path),
            ("Docker-Content-Digest", pushed.digest.description),
            ("Content-Length", "0"),
        ]
        if let subject = pushed.document.subject { headers.append(("OCI-Subject", subject.digest.description)) }
        for tag in pushed.tags { headers.append(("OCI-Tag", tag.value)) }
        var response = RegistryResponse(status: 201, headers: headers)
        let digest = pushed.digest.description
        response.audit = [AuditFacts(.push, digest: digest, reference: reference.description, tags: pushed.tags.map(\.value))]
        for tag in pushed.tags {
            if let previous = pushed.moved[tag] {
                response.audit.append(AuditFacts(.tagMove, digest: digest, reference: tag.value, previousDigest: previous))
            }
        }
        return response
    }

    /// The `tag` query parameters, validated, without duplicates (or the URL's own tag),
    /// in the order sent.
    private func tagParameters(_ request: RegistryRequest, reference: Reference) throws(RegistryError) -> [Tag] {
        let values = request.queryValues("tag")
        guard values.count <= Self.maximumTagsPerPush else {
            throw RegistryError(.tooManyTags, "at most \(Self.maximumTagsPerPush) tag parameters per push (\(values.count) given)")
        }
        var tags: [Tag] = []
        var seen: Set<Tag> = []
        if case .tag(let own) = reference { seen.insert(own) }
        for value in values {
            guard let tag = Tag(value) else {
                throw RegistryError(.manifestInvalid,
                                    "tag parameter \"\(String(value.prefix(140)))\" is not a valid tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127})")
            }
            if seen.insert(tag).inserted { tags.append(tag) }
        }
        return tags
    }

    func deleteManifest(_ reference: Reference, in name: RepositoryName) throws(RegistryError) -> RegistryResponse {
        try storage { () throws(StorageError) in try manifests.delete(reference, in: name) }
        var response = RegistryResponse(status: 202, headers: [("Content-Length", "0")])
        let digest: String? = if case .digest(let digest) = reference { digest.description } else { nil }
        response.audit = [AuditFacts(.delete, digest: digest, reference: reference.description, detail: "manifest")]
        return response
    }

    private var manifestTooLarge: RegistryError {
        RegistryError(.manifestTooLarge, "manifests larger than \(ManifestDocument.maximumSize >> 20) MiB are refused")
    }
}
