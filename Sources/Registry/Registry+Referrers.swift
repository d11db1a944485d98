import Storage

extension Registry {
    /// `GET /v2/<name>/referrers/<digest>`: an OCI index of the manifests whose subject is
    /// `digest` (empty, with 200, when there are none or the subject is unknown), filtered
    /// by `?artifactType=` when given, in pages ordered by digest (`n`, `last`, `Link`).
    func referrers(of subject: Digest, in name: RepositoryName, _ request: RegistryRequest) throws(RegistryError) -> RegistryResponse {
        struct Body: Encodable {
            let schemaVersion = 2
            let mediaType = MediaType.ociIndex
            let manifests: [Descriptor]
        }
        let found = try storage { () throws(StorageError) in try referrerIndex.referrers(of: subject, in: name) }
        var filterHeaders: [(name: String, value: String)] = []
        var filterQuery = ""
        let artifactType = request.query["artifactType"]
        if let artifactType {
            filterHeaders.append(("OCI-Filters-Applied", "artifactType"))
            filterQuery = "&artifactType=\(PercentEncoding.encodeQueryValue(artifactType))"
        }
        let page = try Page(request, path: Route.referrers(name, subject).path, items: found, key: \.digest,
                            extraQuery: filterQuery, where: { artifactType == nil || $0.artifactType == artifactType })
        return page.response(body: JSONText.encode(Body(manifests: page.items)), contentType: MediaType.ociIndex,
                             extraHeaders: filterHeaders)
    }
}
