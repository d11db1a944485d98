import Storage

extension Registry {
    func getManifest(_ reference: Reference, in name: RepositoryName) throws(StorageError) -> RegistryResponse {
        let resolved = try manifests.resolve(reference, in: name)
        return accelRedirect(resolved.digest, in: name, contentType: resolved.mediaType)
    }

    /// `PUT …/manifests/<reference>`: reads at most 4 MiB, validates, stores.
    func putManifest(_ reference: Reference, in name: RepositoryName, _ request: RegistryRequest) throws -> RegistryResponse {
        let limit = ManifestDocument.maximumSize
        if let length = try request.contentLength(), length > UInt64(limit) { throw manifestTooLarge }
        guard let body = try request.body.readAll(limit: limit) else { throw manifestTooLarge }
        let pushed = try manifests.put(body, contentType: request.headers["content-type"], reference: reference, repository: name)
        var headers: [(name: String, value: String)] = [
            ("Location", "/v2/\(name.value)/manifests/\(pushed.digest)"),
            ("Docker-Content-Digest", pushed.digest.description),
            ("Content-Length", "0"),
        ]
        if let subject = pushed.document.subject { headers.append(("OCI-Subject", subject.digest.description)) }
        return RegistryResponse(status: 201, headers: headers)
    }

    private var manifestTooLarge: RegistryError {
        RegistryError(.manifestInvalid, "manifests larger than \(ManifestDocument.maximumSize >> 20) MiB are refused", status: 413)
    }
}
