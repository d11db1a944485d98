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

    /// Sends the bytes as the fetch writes them. Returns early, with the fetch going on,
    /// once `write` says the client went away.
    func deliver(to write: (UnsafeRawBufferPointer) -> Bool) throws(StorageError) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var offset: UInt64 = 0
        // All but the last byte, from the session's data file as it grows. (Opened once:
        // the file stays readable after the fetch commits or gives up.)
        let partial = open(layout.uploadDataFile(session), O_RDONLY | O_CLOEXEC)
        defer { if partial >= 0 { close(partial) } }
        while true {
            if partial >= 0 {
                let heldBack = heldBackOffset(partial)
                if offset < heldBack {
                    let wanted = Int(min(UInt64(buffer.count), heldBack - offset))
                    let count = pread(partial, buffer.baseAddress, wanted, off_t(offset))
                    if count > 0 {
                        guard write(UnsafeRawBufferPointer(rebasing: buffer[0..<count])) else { return }
                        offset += UInt64(count)
                        continue
                    }
                }
            }
            if watch.fetchEnded { break }
            usleep(Self.pollMicroseconds)
        }
        guard let stored = blobs.size(of: digest, in: repository), size == nil || stored == size, stored >= offset else {
            throw .upstreamUnavailable(namespace: namespace, reason: "the fetch this pull followed did not complete")
        }
        // The rest from the stored blob, which is verified.
        let path = layout.blobFile(repository, digest)
        let verified = open(path, O_RDONLY | O_CLOEXEC)
        guard verified >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        defer { close(verified) }
        while offset < stored {
            let count = pread(verified, buffer.baseAddress, Int(min(UInt64(buffer.count), stored - offset)), off_t(offset))
            guard count > 0 else { throw .io(operation: "pread", path: path, errno: count < 0 ? errno : EIO) }
            guard write(UnsafeRawBufferPointer(rebasing: buffer[0..<count])) else { return }
            offset += UInt64(count)
        }
    }

    /// Where reading the growing file stops: one byte before the end (the announced
    /// length, or what is written so far when none was announced).
    private func heldBackOffset(_ fd: Int32) -> UInt64 {
        if let size { return size > 0 ? size - 1 : 0 }
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_size > 0 else { return 0 }
        return UInt64(status.st_size) - 1
    }
}
