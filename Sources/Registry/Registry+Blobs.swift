import Storage

extension Registry {
    func getBlob(_ digest: Digest, in name: RepositoryName) throws(StorageError) -> RegistryResponse {
        guard blobs.size(of: digest, in: name) != nil else { throw .blobUnknown(digest) }
        return accelRedirect(digest, in: name, contentType: "application/octet-stream")
    }

    /// `POST …/blobs/uploads/`: a cross-repository mount, a monolithic upload
    /// (`?digest=` with the body), or a new session.
    func startUpload(in name: RepositoryName, _ request: RegistryRequest) throws -> RegistryResponse {
        let query = request.query
        if let mountText = query["mount"] {
            guard let digest = Digest(mountText) else { throw Route.invalidDigest(mountText) }
            if try mount(digest, from: query["from"], into: name, request) { return blobCreated(digest, in: name) }
        } else if let digestText = query["digest"] {
            guard let digest = Digest(digestText) else { throw Route.invalidDigest(digestText) }
            return try uploadMonolithic(digest, into: name, request)
        }
        let progress = try uploads.start(repository: name)
        return uploadAccepted(progress, in: name, status: 202)
    }

    /// Links the blob from `from` (or, with automatic cross-mount, from anywhere the user
    /// may read). A source that is invalid, unknown, unreadable for the user or without
    /// the blob gives false: the caller opens a plain session, so nothing leaks.
    private func mount(_ digest: Digest, from: String?, into name: RepositoryName, _ request: RegistryRequest) throws -> Bool {
        guard let from else {
            guard options.automaticCrossMount else { return false }
            guard options.policy != nil else { return try blobs.mountFromAnywhere(digest, into: name) }
            for source in try repositories.catalog() where source != name && mayRead(source, request) {
                if try blobs.mount(digest, from: source, into: name) { return true }
            }
            return false
        }
        guard let source = RepositoryName(from), mayRead(source, request) else { return false }
        return try blobs.mount(digest, from: source, into: name)
    }

    private func uploadMonolithic(_ digest: Digest, into name: RepositoryName, _ request: RegistryRequest) throws(StorageError) -> RegistryResponse {
        let progress = try uploads.start(repository: name)
        do {
            _ = try uploads.complete(progress.id, repository: name, digest: digest,
                                     expectedLength: request.contentLength, lastChunk: request.body)
        } catch {
            try? uploads.cancel(progress.id, repository: name)
            throw error
        }
        return blobCreated(digest, in: name)
    }

    func uploadStatus(_ id: UploadID, in name: RepositoryName) throws(StorageError) -> RegistryResponse {
        uploadAccepted(try uploads.progress(id, repository: name), in: name, status: 204)
    }

    /// `PATCH`: appends a chunk. With `Content-Range` the chunk must start where the
    /// upload ends (416 otherwise) and have exactly that length; without it the body is
    /// streamed and appended whatever its length.
    func appendChunk(_ id: UploadID, in name: RepositoryName, _ request: RegistryRequest) throws -> RegistryResponse {
        let range = try ContentRange.parse(request.headers["content-range"])
        let progress = try uploads.append(
            id, repository: name, startingAt: range?.start,
            expectedLength: range?.length ?? request.contentLength, from: request.body)
        return uploadAccepted(progress, in: name, status: 202)
    }

    /// `PUT ?digest=`: an optional last chunk, then verification and commit.
    func completeUpload(_ id: UploadID, in name: RepositoryName, _ request: RegistryRequest) throws -> RegistryResponse {
        guard let digestText = request.query["digest"] else {
            throw RegistryError(.digestInvalid, "completing an upload needs ?digest=<algorithm>:<hex>")
        }
        guard let digest = Digest(digestText) else { throw Route.invalidDigest(digestText) }
        let range = try ContentRange.parse(request.headers["content-range"])
        let hasBody = request.contentLength != 0
        _ = try uploads.complete(
            id, repository: name, digest: digest, startingAt: range?.start,
            expectedLength: range?.length ?? request.contentLength, lastChunk: hasBody ? request.body : nil)
        return blobCreated(digest, in: name)
    }

    func blobCreated(_ digest: Digest, in name: RepositoryName) -> RegistryResponse {
        RegistryResponse(status: 201, headers: [
            ("Location", "/v2/\(name.value)/blobs/\(digest)"),
            ("Docker-Content-Digest", digest.description),
            ("Content-Length", "0"),
        ])
    }

    func uploadAccepted(_ progress: UploadStore.Progress, in name: RepositoryName, status: Int) -> RegistryResponse {
        RegistryResponse(status: status, headers: [
            ("Location", "/v2/\(name.value)/blobs/uploads/\(progress.id.value)"),
            ("Range", RangeHeader.value(forSize: progress.size)),
            ("Docker-Upload-UUID", progress.id.value),
            ("Content-Length", "0"),
        ])
    }
}

/// A `Content-Range` of an upload chunk: `<start>-<end>`, with or without `bytes=` or `bytes `.
struct ContentRange: Equatable {
    let start: UInt64
    let end: UInt64
    var length: UInt64 { end - start + 1 }

    /// nil when the header is absent; BLOB_UPLOAD_INVALID (400) when it is malformed.
    static func parse(_ header: String?) throws(RegistryError) -> ContentRange? {
        guard let header else { return nil }
        var text = Substring(header)
        for prefix in ["bytes=", "bytes "] where text.hasPrefix(prefix) { text = text.dropFirst(prefix.count) }
        if let slash = text.firstIndex(of: "/") { text = text[..<slash] }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { (48...57).contains($0) } }),
              let start = UInt64(parts[0]), let end = UInt64(parts[1]), end >= start,
              end < UInt64.max else {  // 0-18446744073709551615 would be 2^64 bytes: its length overflows
            throw RegistryError(.blobUploadInvalid, "Content-Range \"\(String(header.prefix(100)))\" is not <start>-<end>")
        }
        return ContentRange(start: start, end: end)
    }
}
