import Storage

extension Registry {
    func getManifest(_ reference: Reference, in name: RepositoryName) throws(RegistryError) -> RegistryResponse {
        let resolved = try storage { () throws(StorageError) in try manifests.resolve(reference, in: name) }
        return accelRedirect(resolved.digest, in: name, contentType: resolved.mediaType)
    }

    /// `PUT …/manifests/<reference>`: reads at most 4 MiB, validates, stores.
    func putManifest(_ reference: Reference, in name: RepositoryName, _ request: RegistryRequest) throws(RegistryError) -> RegistryResponse {
        let limit = ManifestDocument.maximumSize
        if let length = try request.contentLength(), length > UInt64(limit) { throw manifestTooLarge }
        let pushed = try storage { () throws(StorageError) -> PushedManifest? in
            guard let body = try request.body.readAll(limit: limit) else { return nil }
            return try manifests.put(body, contentType: request.headers["content-type"], reference: reference, repository: name)
        }
        guard let pushed else { throw manifestTooLarge }
        var headers: [(name: String, value: String)] = [
            ("Location", Route.manifest(name, .digest(pushed.digest)).path),
            ("Docker-Content-Digest", pushed.digest.description),
            ("Content-Length", "0"),
        ]
        if let subject = pushed.document.subject { headers.append(("OCI-Subject", subject.digest.description)) }
        return RegistryResponse(status: 201, headers: headers)
    }

    func deleteManifest(_ reference: Reference, in name: RepositoryName) throws(RegistryError) -> RegistryResponse {
        try storage { () throws(StorageError) in try manifests.delete(reference, in: name) }
        return RegistryResponse(status: 202, headers: [("Content-Length", "0")])
    }

    private var manifestTooLarge: RegistryError {
        RegistryError(.manifestTooLarge, "manifests larger than \(ManifestDocument.maximumSize >> 20) MiB are refused")
    }
}
