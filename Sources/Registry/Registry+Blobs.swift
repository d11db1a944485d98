import Storage

extension Registry {
    func getBlob(_ digest: Digest, in name: RepositoryName, _ request: RegistryRequest) throws(RegistryError) -> RegistryResponse {
        guard blobs.size(of: digest, in: name) != nil else {
            guard let pullThrough = capabilities.pullThrough, pullThrough.isMirrored(name) else {
                throw RegistryError(.blobUnknown(digest))
            }
            return try pullThroughBlob(digest, in: name, from: pullThrough, request)
        }
        if let pullThrough = capabilities.pullThrough, pullThrough.isMirrored(name) { pullThrough.servedFromStore(digest, in: name) }
        if let answer = notModified(digest, request, byDigest: true) { return answer }
        return accelRedirect(digest, in: name, contentType: "application/octet-stream")
    }

    func deleteBlob(_ digest: Digest, in name: RepositoryName) throws(RegistryError) -> RegistryResponse {
        try storage { () throws(StorageError) in try links.delete(digest, from: name) }
        var response = RegistryResponse(status: 202, headers: [("Content-Length", "0")])
        response.audit = [AuditFacts(.delete, digest: digest.description, reference: digest.description, detail: "blob")]
        return response
    }

    /// `POST …/blobs/uploads/`: a cross-repository mount, a monolithic upload
    /// (`?digest=` with the body), or a new session (hashing with the algorithm of
    /// `?digest-algorithm=`, SHA-256 by default).
    func startUpload(in name: RepositoryName, _ request: RegistryRequest) throws(RegistryError) -> RegistryResponse {
        let query = request.query
        var algorithm: Digest.Algorithm?
        if let text = query["digest-algorithm"] {
            guard let chosen = Digest.Algorithm(rawValue: text) else {
                throw RegistryError(.digestInvalid, "digest-algorithm \"\(String(text.prefix(40)))\" is not supported (sha256, sha512)")
            }
            algorithm = chosen
        }
        if let mountText = query["mount"] {
            guard let digest = Digest(mountText) else { throw Route.invalidDigest(mountText) }
            if try mount(digest, from: query["from"], into: name, request) { return blobCreated(digest, in: name) }
        } else if let digestText = query["digest"] {
            guard let digest = Digest(digestText) else { throw Route.invalidDigest(digestText) }
            return try uploadMonolithic(digest, into: name, algorithm: algorithm, request)
        }
        let progress = try storage { () throws(StorageError) in try uploads.start(repository: name, algorithm: algorithm) }
        return uploadAccepted(progress, in: name, status: 202)
    }

    /// Links the blob from `from` (or, with automatic cross-mount, from anywhere the user
    /// may read). A source that is invalid, unknown, unreadable for the user or without
    /// the blob gives false: the caller opens a plain session, so nothing leaks.
    private func mount(_ digest: Digest, from: String?, into name: RepositoryName, _ request: RegistryRequest) throws(RegistryError) -> Bool {
        try storage { () throws(StorageError) -> Bool in
            guard let from else {
                guard options.automaticCrossMount else { return false }
                guard options.policy != nil else { return try links.mountFromAnywhere(digest, into: name) }
                for source in try repositories.catalog() where source != name && mayRead(source, request) {
                    if try links.mount(digest, from: source, into: name) { return true }
                }
                return false
            }
            guard let source = RepositoryName(from), mayRead(source, request) else { return false }
            return try links.mount(digest, from: source, into: name)
        }
    }

    private func uploadMonolithic(
        _ digest: Digest, into name: RepositoryName, algorithm: Digest.Algorithm?, _ request: RegistryRequest
    ) throws(RegistryError) -> RegistryResponse {
        let expectedLength = try request.contentLength()
        try storage { () throws(StorageError) in
            let progress = try uploads.start(repository: name, algorithm: algorithm ?? digest.algorithm)
            do throws(StorageError) {
                _ = try uploads.complete(progress.id, repository: name, digest: digest, startingAt: nil,
                                         expectedLength: expectedLength, lastChunk: request.body)
            } catch {
                try? uploads.cancel(progress.id, repository: name)
                throw error
            }
        }
        return blobCreated(digest, in: name)
    }

    func uploadStatus(_ id: UploadID, in name: RepositoryName) throws(RegistryError) -> RegistryResponse {
        uploadAccepted(try storage { () throws(StorageError) in try uploads.progress(id, repository: name) }, in: name, status: 204)
    }

    /// `PATCH`: appends a chunk. With `Content-Range` the chunk must start where the
    /// upload ends (416 otherwise) and have exactly that length; without it the body is
    /// streamed and appended whatever its length.
    func appendChunk(_ id: UploadID, in name: RepositoryName, _ request: RegistryRequest) throws(RegistryError) -> RegistryResponse {
        let range = try ContentRange.parse(request.headers["content-range"])
        let contentLength = try request.contentLength()
        let progress = try storage { () throws(StorageError) in
            try uploads.append(id, repository: name, startingAt: range?.start,
                               expectedLength: range?.length ?? contentLength, from: request.body)
        }
        return uploadAccepted(progress, in: name, status: 202)
    }

    /// `PUT ?digest=`: an optional last chunk, then verification and commit.
    func completeUpload(_ id: UploadID, in name: RepositoryName, _ request: RegistryRequest) throws(RegistryError) -> RegistryResponse {
        guard let digestText = request.query["digest"] else {
            throw RegistryError(.digestInvalid, "completing an upload needs ?digest=<algorithm>:<hex>")
        }
        guard let digest = Digest(digestText) else { throw Route.invalidDigest(digestText) }
        let range = try ContentRange.parse(request.headers["content-range"])
        let contentLength = try request.contentLength()
        _ = try storage { () throws(StorageError) in
            try uploads.complete(id, repository: name, digest: digest, startingAt: range?.start,
                                 expectedLength: range?.length ?? contentLength,
                                 lastChunk: contentLength != 0 ? request.body : nil)
        }
        return blobCreated(digest, in: name)
    }

    func cancelUpload(_ id: UploadID, in name: RepositoryName) throws(RegistryError) -> RegistryResponse {
        try storage { () throws(StorageError) in try uploads.cancel(id, repository: name) }
        return RegistryResponse(status: 204)
    }

    func blobCreated(_ digest: Digest, in name: RepositoryName) -> RegistryResponse {
        RegistryResponse(status: 201, headers: [
            ("Location", Route.blob(name, digest).path),
            ("Docker-Content-Digest", digest.description),
            ("Content-Length", "0"),
        ])
    }

    func uploadAccepted(_ progress: UploadProgress, in name: RepositoryName, status: Int) -> RegistryResponse {
        RegistryResponse(status: status, headers: [
            ("Location", Route.upload(name, progress.id).path),
            ("Range", RangeHeader.value(forSize: progress.size)),
            ("Docker-Upload-UUID", progress.id.value),
            ("Content-Length", "0"),
        ])
    }
}
