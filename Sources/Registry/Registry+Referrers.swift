import Storage

extension Registry {
    /// `GET /v2/<name>/referrers/<digest>`: an OCI index of the manifests whose subject is
    /// `digest` (empty, with 200, when there are none or the subject is unknown), filtered
    /// by `?artifactType=` when given.
    func referrers(of subject: Digest, in name: RepositoryName, _ request: RegistryRequest) throws -> RegistryResponse {
        struct Body: Encodable {
            let schemaVersion = 2
            let mediaType = MediaType.ociIndex
            let manifests: [Descriptor]
        }
        var found = try referrerIndex.referrers(of: subject, in: name)
        var headers: [(name: String, value: String)] = [("Content-Type", MediaType.ociIndex)]
        if let artifactType = request.query["artifactType"] {
            found = found.filter { $0.artifactType == artifactType }
            headers.append(("OCI-Filters-Applied", "artifactType"))
        }
        return RegistryResponse(status: 200, headers: headers, body: JSON.encode(Body(manifests: found)))
    }
}
