import Storage
import Curl

/// One blob arriving from an upstream, run to its end on a `FetchPool` thread: the bytes
/// are hashed and written into an upload session of the mirrored repository as fast as
/// the upstream sends them, and committed under the digest only once digest and size
/// check out (the upload store's guarantee: temp data, fsync, atomic rename). Clients
/// read the session's data as it grows (`FollowingBlob`), so none of them sets the pace,
/// and one that leaves does not stop the fetch.
///
/// @unchecked Sendable: built by the request that took the fetch lock (which writes the
/// bytes that came with the headers, `writeArrived`), then handed to one pool thread and
/// used there only.
final class BlobFetch: @unchecked Sendable {
    let digest: Digest
    let size: UInt64?
    let session: UploadID
    private let transfer: HTTPTransfer
    private let uploads: any BlobIngester
    /// Records the fetch's event once the blob is stored (`recordFetched`).
    private let manifests: any ManifestService
    private let repository: RepositoryName
    private let namespace: String
    /// Held until the blob is stored or given up: others follow this fetch meanwhile.
    private let lock: FetchLock
    private let onEvent: PullThroughMirror.EventSink?
    /// Bytes `writeArrived` put into the session; `run` goes on from there.
    private var written: UInt64 = 0
    /// Why `writeArrived` failed; `run` then gives the fetch up.
    private var failedToBegin: StorageError?

    init(digest: Digest, size: UInt64?, session: UploadID, transfer: HTTPTransfer, uploads: any BlobIngester,
         manifests: any ManifestService, repository: RepositoryName, namespace: String, lock: FetchLock, onEvent: PullThroughMirror.EventSink?) {
        self.digest = digest
        self.size = size
        self.session = session
        self.transfer = transfer
        self.uploads = uploads
        self.manifests = manifests
        self.repository = repository
        self.namespace = namespace
        self.lock = lock
        self.onEvent = onEvent
    }

    /// On the request thread that took the lead, before `run` goes to a pool thread: appends
    /// the body bytes that arrived with the headers (one TLS record, up to 16 KiB) to the
    /// session, unsynced. Its client's first bytes then go out at once, not after a pool
    /// thread gets a core (4 ms and more on a busy 2-core machine).
    func writeArrived() {
        do throws(StorageError) {
            written = try uploads.append(session, repository: repository, startingAt: 0, expectedLength: nil,
                                         from: ArrivedBytes(transfer)).size
        } catch {
            failedToBegin = error
        }
    }

    /// Reads the rest of the upstream's body into the session and commits it, or cancels
    /// the session (nothing stored); then lets the lock go.
    func run() {
        defer { lock.release() }
        let source = FollowedTransfer(transfer)
        let stored: UInt64
        do throws(StorageError) {
            if let failedToBegin { throw failedToBegin }
            var remaining: UInt64?
            if let size {
                guard written <= size else { throw StorageError.sizeMismatch(expected: size, received: written) }
                remaining = size - written
            }
            stored = try uploads.complete(session, repository: repository, digest: digest, startingAt: written,
                                          expectedLength: remaining, lastChunk: source)
        } catch {
            try? uploads.cancel(session, repository: repository)
            let reason = switch error {
            case .bodyInterrupted: "the transfer broke off: \(transfer.failureReason)"
            default: "\(error)"
            }
            onEvent?("mirror_fetch_failed", ["mirror": namespace, "repository": repository.value,
                                             "digest": digest.description, "reason": reason])
            return
        }
        onEvent?("mirror_stored", ["mirror": namespace, "repository": repository.value, "digest": digest.description,
                                   "size": String(stored)])
        // Before the lock goes (followers send their last byte only then): a fetch a
        // client saw complete has its event. The blob is stored either way.
        do throws(StorageError) {
            try manifests.recordFetched(blob: digest, size: stored, in: repository)
        } catch {
            onEvent?("mirror_event_failed", ["mirror": namespace, "repository": repository.value,
                                             "digest": digest.description, "reason": "\(error)"])
        }
    }
}

/// What of the upstream's body has arrived already, and no more.
private final class ArrivedBytes: ByteSource {
    private let transfer: HTTPTransfer

    init(_ transfer: HTTPTransfer) { self.transfer = transfer }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) -> Int { transfer.readArrived(into: buffer) }

    var isFollowed: Bool { true }
}

/// The upstream's body, marked as read by others while it is written. The first read is
/// small, so that the first bytes reach the clients before a whole buffer is hashed and written.
private final class FollowedTransfer: ByteSource {
    private let transfer: HTTPTransfer
    private var first = true
    static let firstReadLimit = 16 << 10

    init(_ transfer: HTTPTransfer) { self.transfer = transfer }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) -> Int {
        guard first else { return try transfer.read(into: buffer) }
        first = false
        return try transfer.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<min(buffer.count, Self.firstReadLimit)]))
    }

    var isFollowed: Bool { true }
}
