/// Upload sessions: bytes arrive in order, are hashed as they come, and become a blob of
/// the repository only when complete and verified (commit), or are dropped (cancel).
/// A session survives the process: any process of the store may continue it.
public protocol BlobIngester: Sendable {
    /// Opens an empty session (`tooManyUploads` past the per-repository cap), hashing with
    /// `algorithm` when the client announced one (a final digest of another algorithm is
    /// then `algorithmMismatch`), else with SHA-256 (another one costs a re-read).
    /// `durable: false` leaves the new session's directories, its state and the bytes of its
    /// appends unsynced: only for a session no client resumes (a mirror's fetch), which a
    /// crash turns into garbage for gc; its data is fsynced before the commit either way.
    func start(repository: RepositoryName, algorithm: Digest.Algorithm?, durable: Bool) throws(StorageError) -> UploadProgress
    /// What the session has received so far (`uploadUnknown` when there is none).
    func progress(_ id: UploadID, repository: RepositoryName) throws(StorageError) -> UploadProgress
    /// Appends the whole of `source`. `startingAt`, when given, must be the current size
    /// (`uploadRangeMismatch`); `expectedLength`, when given, the body's exact length
    /// (`sizeMismatch`). A failed append leaves the session as it was.
    func append(_ id: UploadID, repository: RepositoryName, startingAt: UInt64?, expectedLength: UInt64?,
                from source: any ByteSource) throws(StorageError) -> UploadProgress
    /// Appends an optional last chunk, verifies the whole against `digest` and commits it
    /// as a blob of `repository`; returns its size. On `digestMismatch` nothing becomes
    /// visible and the session is as it was before the last chunk. `admission`, when
    /// given, receives the verified digest and size with the commit, runs it or refuses
    /// by throwing (a quota): refused, nothing becomes visible and the session is as it
    /// was before the last chunk.
    func complete(_ id: UploadID, repository: RepositoryName, digest: Digest, startingAt: UInt64?,
                  expectedLength: UInt64?, lastChunk source: (any ByteSource)?,
                  admission: BlobAdmission?) throws(StorageError) -> UInt64
    /// Drops the session and its bytes.
    func cancel(_ id: UploadID, repository: RepositoryName) throws(StorageError)
}

/// Wraps the commit of a verified upload: gets its digest and size, and runs the commit
/// or throws instead.
public typealias BlobAdmission = (Digest, UInt64, () throws(StorageError) -> Void) throws(StorageError) -> Void

extension BlobIngester {
    /// Completes the session with no admission step.
    public func complete(_ id: UploadID, repository: RepositoryName, digest: Digest, startingAt: UInt64?,
                         expectedLength: UInt64?, lastChunk source: (any ByteSource)?) throws(StorageError) -> UInt64 {
        try complete(id, repository: repository, digest: digest, startingAt: startingAt, expectedLength: expectedLength,
                     lastChunk: source, admission: nil)
    }

    /// Opens an empty session whose state is durable from the start.
    public func start(repository: RepositoryName, algorithm: Digest.Algorithm?) throws(StorageError) -> UploadProgress {
        try start(repository: repository, algorithm: algorithm, durable: true)
    }

    /// Opens an empty session that hashes SHA-256 and accepts any final algorithm.
    public func start(repository: RepositoryName) throws(StorageError) -> UploadProgress {
        try start(repository: repository, algorithm: nil)
    }

    /// Appends the whole of `source`, whatever its length, at the session's end.
    public func append(_ id: UploadID, repository: RepositoryName, from source: any ByteSource) throws(StorageError) -> UploadProgress {
        try append(id, repository: repository, startingAt: nil, expectedLength: nil, from: source)
    }

    /// Completes the session with an optional last chunk of any length.
    public func complete(_ id: UploadID, repository: RepositoryName, digest: Digest,
                         lastChunk source: (any ByteSource)?) throws(StorageError) -> UInt64 {
        try complete(id, repository: repository, digest: digest, startingAt: nil, expectedLength: nil, lastChunk: source,
                     admission: nil)
    }
}
