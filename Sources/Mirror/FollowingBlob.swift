#if canImport(Glibc)
import Glibc
#endif
import Storage

/// A blob a fetch is bringing into the repository (started by this request, another one,
/// or another process): its bytes are read from that fetch's upload session as they
/// arrive, and the last one is sent only once the blob is stored under its digest, from
/// the stored (verified) file. A fetch that fails leaves the answer cut short.
///
/// Every pull of a blob being fetched reads it this way, the one that started the fetch
/// included: the fetch runs at the upstream's pace on a thread of its own (`FetchPool`),
/// so a slow client slows nobody else, and a client that leaves stops only its own answer.
final class FollowingBlob: IncomingBlob, @unchecked Sendable {
    // @unchecked: handed to the one thread that answers the request, used there only.
    let digest: Digest
    let size: UInt64?
    private let session: UploadID
    private let watch: FetchWatch
    private let layout: StoreLayout
    private let blobs: any BlobStatter
    private let repository: RepositoryName
    private let namespace: String

    /// How long to sleep when the client has every byte written so far: short, since the
    /// first bytes of a miss should reach its client about as soon as the upstream sends them.
    static let pollMicroseconds: useconds_t = 1_000
    /// The same before the first byte has gone: a tenth, since time to first byte is what a
    /// client of a miss waits on most (a few milliseconds of polls, each an fstat and a flock).
    static let firstBytesPollMicroseconds: useconds_t = 100

    init(digest: Digest, size: UInt64?, session: UploadID, watch: FetchWatch, layout: StoreLayout, blobs: any BlobStatter,
         repository: RepositoryName, namespace: String) {
        self.digest = digest
        self.size = size
        self.session = session
        self.watch = watch
        self.layout = layout
        self.blobs = blobs
        self.repository = repository
        self.namespace = namespace
    }

    /// Sends the bytes as the fetch writes them, straight from the files to the sink
    /// (`BodySink.send(file:)`: no copy through this process where the server allows).
    /// Returns early, with the fetch going on, once the client went away.
    func deliver(to sink: any BodySink) throws(StorageError) {
        var offset: UInt64 = 0
        // All but the last byte, from the session's data file as it grows. (Opened once:
        // the file stays readable after the fetch commits or gives up.)
        let sessionPath = layout.uploadDataFile(session)
        let partial = open(sessionPath, O_RDONLY | O_CLOEXEC)
        defer { if partial >= 0 { close(partial) } }
        while true {
            if partial >= 0 {
                let end = sendableEnd(partial)
                if offset < end {
                    switch sendRange(partial, from: &offset, to: end, into: sink) {
                    case .sent: continue
                    case .clientGone: return
                    case .unreadable(let code):
                        // The file ended early: a fetch that failed cuts its session back
                        // (before it lets go). Nothing more can be sent on this answer.
                        if code == EIO {
                            while !watch.fetchEnded { usleep(Self.pollMicroseconds) }
                            if blobs.size(of: digest, in: repository) == nil { throw notCompleted }
                        }
                        throw .io(operation: "read", path: sessionPath, errno: code)
                    }
                }
            }
            if watch.fetchEnded { break }
            usleep(offset == 0 ? Self.firstBytesPollMicroseconds : Self.pollMicroseconds)
        }
        guard let stored = blobs.size(of: digest, in: repository), size == nil || stored == size, stored >= offset else {
            throw notCompleted
        }
        // The rest from the stored blob, which is verified.
        let path = layout.blobFile(repository, digest)
        let verified = open(path, O_RDONLY | O_CLOEXEC)
        guard verified >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        defer { close(verified) }
        if case .unreadable(let code) = sendRange(verified, from: &offset, to: stored, into: sink) {
            throw .io(operation: "read", path: path, errno: code)
        }
    }

    /// Sends `fd` from `offset` to `end` in pieces of at most `sendLimit`, moving `offset`
    /// past what went; the first outcome other than `.sent` ends it.
    private func sendRange(_ fd: Int32, from offset: inout UInt64, to end: UInt64, into sink: any BodySink) -> FileSendOutcome {
        while offset < end {
            let count = Int(min(Self.sendLimit, end - offset))
            let outcome = sink.send(file: fd, offset: offset, count: count)
            guard outcome == .sent else { return outcome }
            offset += UInt64(count)
        }
        return .sent
    }

    private var notCompleted: StorageError {
        .upstreamUnavailable(namespace: namespace, reason: "the fetch this pull followed did not complete")
    }

    /// The most handed to the sink in one call.
    static let sendLimit: UInt64 = 1 << 20

    /// How far the growing file can be sent now: what is written so far, but never its
    /// last byte (the announced length's last, or the file's when none was announced).
    private func sendableEnd(_ fd: Int32) -> UInt64 {
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_size > 0 else { return 0 }
        let written = UInt64(status.st_size)
        guard let size else { return written - 1 }
        return min(written, size > 0 ? size - 1 : 0)
    }
}
