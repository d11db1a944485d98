import Storage
import Curl

/// A blob arriving from an upstream: its bytes go to the client as they arrive while they
/// are hashed and written into an upload session of the mirrored repository, which is
/// committed under the digest only once digest and size check out (the upload store's
/// guarantee: temp data, fsync, atomic rename). The last bytes read are held back until
/// then, so a blob that does not check out reaches the client cut short.
///
/// @unchecked Sendable: it is handed to the one thread that answers the request and used
/// there only.
final class MirroredBlob: IncomingBlob, @unchecked Sendable {
    let digest: Digest
    let size: UInt64?
    private let transfer: HTTPTransfer
    private let uploads: any BlobIngester
    /// Records the fetch's event once the blob is stored (`recordFetched`).
    private let manifests: any ManifestService
    private let repository: RepositoryName
    private let namespace: String
    /// Held until the blob is stored or given up: others follow this fetch meanwhile.
    private let lock: FetchLock
    private let onEvent: PullThroughMirror.EventSink?

    init(digest: Digest, size: UInt64?, transfer: HTTPTransfer, uploads: any BlobIngester, manifests: any ManifestService,
         repository: RepositoryName, namespace: String, lock: FetchLock, onEvent: PullThroughMirror.EventSink?) {
        self.manifests = manifests
        self.lock = lock
        self.digest = digest
        self.size = size
        self.transfer = transfer
        self.uploads = uploads
        self.repository = repository
        self.namespace = namespace
        self.onEvent = onEvent
    }

    func deliver(to write: (UnsafeRawBufferPointer) -> Bool) throws(StorageError) {
        defer { lock.release() }
        let session = try uploads.start(repository: repository, algorithm: digest.algorithm)
        if let size { lock.announce(session: session.id, size: size) }
        var stored: UInt64 = 0
        try withoutActuallyEscaping(write) { (write) throws(StorageError) in
            let tee = HoldingBackTee(transfer, write)
            do throws(StorageError) {
                stored = try uploads.complete(session.id, repository: repository, digest: digest, startingAt: nil,
                                         expectedLength: size, lastChunk: tee)
            } catch {
                try? uploads.cancel(session.id, repository: repository)
                let reason = switch error {
                case .bodyInterrupted: "the transfer broke off: \(transfer.failureReason)"
                default: "\(error)"
                }
                onEvent?("mirror_fetch_failed", ["mirror": namespace, "repository": repository.value,
                                                 "digest": digest.description, "reason": reason])
                throw error
            }
            // Before the last bytes go out: a fetch the client saw complete has its event.
            try manifests.recordFetched(blob: digest, size: stored, in: repository)
            tee.release()
        }
        onEvent?("mirror_stored", ["mirror": namespace, "repository": repository.value, "digest": digest.description,
                                   "size": String(stored)])
    }
}

/// Reads from the upstream and passes each chunk on to the client only when the next one
/// has arrived; the last is passed on by `release()`.
private final class HoldingBackTee: ByteSource {
    private let source: HTTPTransfer
    private let write: (UnsafeRawBufferPointer) -> Bool
    private var held: [UInt8] = []
    /// False once the client went away: the bytes are still stored.
    private var sending = true

    init(_ source: HTTPTransfer, _ write: @escaping (UnsafeRawBufferPointer) -> Bool) {
        self.source = source
        self.write = write
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) -> Int {
        let count = try source.read(into: buffer)
        guard count > 0 else { return 0 }
        pass()
        held = Array(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        return count
    }

    func release() { pass() }

    private func pass() {
        guard sending, !held.isEmpty else { return }
        sending = held.withUnsafeBytes { write($0) }
        held.removeAll(keepingCapacity: true)
    }
}
