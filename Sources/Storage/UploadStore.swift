#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Upload sessions under `_berth/uploads/<id>`: bytes appended to `data`, and after
/// every request a `state` file (repository, size, hash state) replaced whole.
/// A session hashes with SHA-256 unless it was opened for another algorithm
/// (`POST ?digest-algorithm=sha512`).
/// Any process can continue a session, and completing it never re-reads the data.
///
/// Appends to one session are serialized by an flock on its `data` file; an append
/// that fails or is cut off leaves the session exactly as the previous request left it.
public struct UploadStore: BlobIngester {
    public let layout: StoreLayout
    private let blobs: BlobStore
    private let repositories: RepositoryStore
    private let locks: LockPolicy
    private let trash: Trash
    /// Open sessions allowed per repository (a soft cap: racing starts may pass it by a few).
    public let maximumSessionsPerRepository: Int
    static let bufferSize = 1 << 20

    /// Built by `Store`.
    init(layout: StoreLayout, blobs: BlobStore, repositories: RepositoryStore, locks: LockPolicy, trash: Trash,
         maximumSessionsPerRepository: Int) {
        self.layout = layout
        self.blobs = blobs
        self.repositories = repositories
        self.locks = locks
        self.trash = trash
        self.maximumSessionsPerRepository = maximumSessionsPerRepository
    }

    public typealias Progress = UploadProgress

    /// Opens a new, empty session for `repository`; `tooManyUploads` past the cap.
    /// `algorithm` is the one the client announced (`?digest-algorithm=`); nil hashes
    /// with SHA-256 and still accepts a final digest of another algorithm (by re-reading
    /// the data once), since clients need not announce it. `durable: false` skips the
    /// fsyncs of the new session's directories and state (`BlobIngester.start`): the
    /// commit's own fsyncs (data, then the blob's directory) are what makes a blob durable.
    public func start(repository: RepositoryName, algorithm: Digest.Algorithm?, durable: Bool) throws(StorageError) -> Progress {
        try repositories.checkCreatable(repository)
        let markers = layout.openSessionsDirectory(repository)
        if try FileSystem.listDirectory(markers).count >= maximumSessionsPerRepository {
            throw .tooManyUploads(limit: maximumSessionsPerRepository)
        }
        let id = UploadID.random()
        try FileSystem.makeDirectories(markers, durable: durable)
        let marker = try FileSystem.open(layout.openSessionMarker(repository, id), O_WRONLY | O_CREAT, mode: 0o644)
        close(marker)
        try FileSystem.makeDirectories(layout.uploadsDirectory, durable: durable)
        try FileSystem.makeDirectories(layout.uploadDirectory(id), durable: durable)
        let fd = try FileSystem.open(layout.uploadDataFile(id), O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
        close(fd)
        let state = UploadState(repository: repository, size: 0, hasher: StreamHasher(algorithm ?? .sha256),
                                announced: algorithm != nil, durable: durable)
        try save(state, id: id)
        return Progress(id: id, size: 0)
    }

    /// The session's current size.
    public func progress(_ id: UploadID, repository: RepositoryName) throws(StorageError) -> Progress {
        let state = try load(id, repository: repository)
        return Progress(id: id, size: state.size)
    }

    /// Appends the whole of `source`. When `startingAt` is given it must equal the
    /// current size (else `uploadRangeMismatch`); when `expectedLength` is given the
    /// body must have exactly that many bytes (else `sizeMismatch`, nothing kept).
    public func append(
        _ id: UploadID, repository: RepositoryName, startingAt: UInt64?, expectedLength: UInt64?,
        from source: any ByteSource
    ) throws(StorageError) -> Progress {
        try withSession(id, repository: repository) { (fd, state) throws(StorageError) in
            if let startingAt, startingAt != state.size { throw .uploadRangeMismatch(currentSize: state.size) }
            state = try appendBody(fd: fd, id: id, state: state, expectedLength: expectedLength, from: source,
                                   sync: state.durable)
            try save(state, id: id)
            return Progress(id: id, size: state.size)
        }
    }

    /// Appends an optional last chunk, checks the whole content against `digest`, and
    /// makes it the blob `digest` of `repository` (through `admission` when given); the
    /// session is gone afterwards. On `digestMismatch`, or a refusal by `admission`,
    /// nothing becomes visible and the session stays as it was before this call's chunk.
    public func complete(
        _ id: UploadID, repository: RepositoryName, digest: Digest, startingAt: UInt64?,
        expectedLength: UInt64?, lastChunk source: (any ByteSource)?, admission: BlobAdmission?
    ) throws(StorageError) -> UInt64 {
        try withSession(id, repository: repository) { (fd, state) throws(StorageError) in
            if let startingAt, startingAt != state.size { throw .uploadRangeMismatch(currentSize: state.size) }
            var final = state
            if let source {
                final = try appendBody(fd: fd, id: id, state: state, expectedLength: expectedLength, from: source, sync: true)
            }
            let computed: Digest
            if digest.algorithm == final.hasher.algorithm {
                computed = final.hasher.finalize()
            } else if final.announced {
                throw undo(final, to: state, fd: fd, id: id, .algorithmMismatch(session: final.hasher.algorithm, digest: digest))
            } else {
                computed = try ContentHasher.digest(ofFile: layout.uploadDataFile(id), algorithm: digest.algorithm)
            }
            guard computed == digest else {
                throw undo(final, to: state, fd: fd, id: id, .digestMismatch(expected: digest, computed: computed))
            }
            var committing = false
            let commit = { () throws(StorageError) in
                committing = true
                try blobs.commit(verifiedFile: layout.uploadDataFile(id), as: digest, into: repository)
            }
            do throws(StorageError) {
                if let admission { try admission(digest, final.size, commit) } else { try commit() }
            } catch {
                // Refused before the commit began: the data file is still the session's own.
                if !committing { throw undo(final, to: state, fd: fd, id: id, error) }
                throw error
            }
            try FileSystem.removeTree(layout.uploadDirectory(id))
            try FileSystem.remove(layout.openSessionMarker(repository, id))
            return final.size
        }
    }

    /// Cancels the session; its data goes to the trash.
    public func cancel(_ id: UploadID, repository: RepositoryName) throws(StorageError) {
        try withSession(id, repository: repository) { (_, _) throws(StorageError) in
            try trash.discard(layout.uploadDirectory(id))
            try FileSystem.remove(layout.openSessionMarker(repository, id))
        }
    }

    // MARK: Internals

    /// Cuts the data file back to the size before this request's chunk; returns `error`
    /// (or the failure to cut) for the caller to throw.
    private func undo(_ final: UploadState, to state: UploadState, fd: Int32, id: UploadID, _ error: StorageError) -> StorageError {
        if final.size != state.size, ftruncate(fd, off_t(state.size)) != 0 {
            return FileSystem.fail("ftruncate", layout.uploadDataFile(id))
        }
        return error
    }

    /// Locks the session's data file, loads its state (after the lock, so a session
    /// completed meanwhile reads as unknown) and trims bytes past the recorded size.
    private func withSession<T>(
        _ id: UploadID, repository: RepositoryName, _ body: (Int32, inout UploadState) throws(StorageError) -> T
    ) throws(StorageError) -> T {
        let dataPath = layout.uploadDataFile(id)
        let fd: Int32
        do { fd = try FileSystem.open(dataPath, O_RDWR) } catch {
            if case .io(_, _, let code) = error, code == ENOENT || code == ENOTDIR { throw .uploadUnknown(id.value) }
            throw error
        }
        defer { close(fd) }
        try locks.acquire(fd, path: dataPath)
        var state = try load(id, repository: repository)
        if ftruncate(fd, off_t(state.size)) != 0 { throw FileSystem.fail("ftruncate", dataPath) }
        return try body(fd, &state)
    }

    /// Streams `source` to the end of the data file (past the page cache where it can,
    /// see `SessionDataWriter`; through it, read by read, when `source.isFollowed`),
    /// hashing as it goes, then fsyncs (with `sync`: a commit follows, or a client may
    /// resume the session after a crash).
    /// On any failure the file is cut back to `state.size`.
    private func appendBody(
        fd: Int32, id: UploadID, state: UploadState, expectedLength: UInt64?, from source: any ByteSource, sync: Bool
    ) throws(StorageError) -> UploadState {
        let path = layout.uploadDataFile(id)
        var next = state
        do throws(StorageError) {
            var writer = SessionDataWriter(fd: fd, path: path, offset: state.size, writeThrough: source.isFollowed)
            while true {
                let count = try source.read(into: writer.freeSpace)
                if count == 0 { break }
                next.hasher.update(try writer.commit(count))
                let (grown, overflow) = next.size.addingReportingOverflow(UInt64(count))
                if overflow { throw StorageError.sizeMismatch(expected: expectedLength ?? UInt64.max, received: UInt64.max) }
                next.size = grown
                if let expectedLength, next.size - state.size > expectedLength {
                    throw StorageError.sizeMismatch(expected: expectedLength, received: next.size - state.size)
                }
            }
            try writer.finish()
            let received = next.size - state.size
            if let expectedLength, received != expectedLength {
                throw StorageError.sizeMismatch(expected: expectedLength, received: received)
            }
            if sync { try FileSystem.fsync(fd, path: path) }
            return next
        } catch {
            _ = ftruncate(fd, off_t(state.size))
            throw error
        }
    }

    private func load(_ id: UploadID, repository: RepositoryName) throws(StorageError) -> UploadState {
        let path = layout.uploadStateFile(id)
        guard let bytes = try FileSystem.readFile(path, limit: 1 << 16) else { throw .uploadUnknown(id.value) }
        let record: UploadState.Record
        do { record = try JSONDecoder().decode(UploadState.Record.self, from: Data(bytes)) } catch {
            throw .corrupt(path: path, reason: "upload state does not parse")
        }
        guard record.repository == repository.value else { throw .uploadUnknown(id.value) }
        guard record.size <= UInt64(Int64.max) else { throw .corrupt(path: path, reason: "upload state records an impossible size") }
        let algorithm: Digest.Algorithm
        let savedText: String?
        switch record.algorithm {
        case nil, "sha256"?:
            algorithm = .sha256
            savedText = record.sha256State
        case "sha512"?:
            algorithm = .sha512
            savedText = record.sha512State
        default:
            throw .corrupt(path: path, reason: "upload state names an unknown digest algorithm")
        }
        let hasher: StreamHasher
        if let savedText, let saved = Hex.decode(savedText), let restored = StreamHasher(algorithm, savedState: saved) {
            hasher = restored
        } else {
            // Saved by another OpenSSL build: rebuild the state from the bytes on disk.
            hasher = try ContentHasher.hasher(ofFile: layout.uploadDataFile(id), algorithm: algorithm, length: record.size)
        }
        return UploadState(repository: repository, size: record.size, hasher: hasher, announced: record.algorithm != nil,
                           durable: record.durable ?? true)
    }

    /// Writes the state atomically; fsynced unless the session is not `durable`.
    private func save(_ state: UploadState, id: UploadID) throws(StorageError) {
        let saved = Hex.encode(state.hasher.savedState)
        let record = UploadState.Record(
            repository: state.repository.value, size: state.size,
            algorithm: state.announced ? state.hasher.algorithm.rawValue : nil,
            sha256State: state.hasher.algorithm == .sha256 ? saved : nil,
            sha512State: state.hasher.algorithm == .sha512 ? saved : nil,
            updated: Int64(time(nil)), durable: state.durable ? nil : false)
        try FileSystem.writeAtomically(pieces: [JSONText.encode(record)[...]], to: layout.uploadStateFile(id),
                                       temporaryDirectory: layout.uploadDirectory(id), durable: state.durable)
    }
}

/// One session's state as loaded: the repository, bytes so far and running hash.
struct UploadState {
    var repository: RepositoryName
    var size: UInt64
    var hasher: StreamHasher
    /// The client chose the algorithm (`?digest-algorithm=`): a final digest of another
    /// algorithm is refused rather than re-hashed.
    var announced = false
    /// Started with `durable: false` (a mirror's fetch, never resumed): its state and the
    /// bytes of its appends are not fsynced; a commit still fsyncs the data.
    var durable = true

    /// The `state` file's JSON. `algorithm` is absent for a session that hashes SHA-256
    /// by default (the format every earlier Berth wrote and reads); only the state of the
    /// session's algorithm is present.
    struct Record: Codable {
        var repository: String
        var size: UInt64
        var algorithm: String?
        var sha256State: String?
        var sha512State: String?
        var updated: Int64
        /// Written only as `false`: absent in every durable session's state (and every
        /// state an earlier Berth wrote).
        var durable: Bool?
    }
}
