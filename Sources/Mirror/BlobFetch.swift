import Storage
import Curl

/// One blob arriving from an upstream, run to its end on a `FetchPool` thread: the bytes
/// are hashed and written into an upload session of the mirrored repository as fast as
/// the upstream sends them, and committed under the digest only once digest and size
/// check out (the upload store's guarantee: temp data, fsync, atomic rename). Clients
/// read the session's data as it grows (`FollowingBlob`), so none of them sets the pace,
/// and one that leaves does not stop the fetch.
///
/// @unchecked Sendable: built by the request that took the fetch lock, then handed to one
/// pool thread and used there only.
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

    /// Reads the upstream's body to its end into the session and commits it, or cancels
    /// the session (nothing stored); then lets the lock go.
    func run() {
        defer { lock.release() }
        let source = FollowedTransfer(transfer)
        let stored: UInt64
        do throws(StorageError) {
            stored = try uploads.complete(session, repository: repository, digest: digest, startingAt: nil,
                                          expectedLength: size, lastChunk: source)
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
