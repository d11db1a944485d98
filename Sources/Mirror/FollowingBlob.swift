#if canImport(Glibc)
import Glibc
#endif
import Storage

/// A blob another request is fetching into the repository (in this process or another):
/// its bytes are read from that fetch's upload session as they arrive, and the last one is
/// sent only once the blob is stored under its digest, from the stored (verified) file.
/// A fetch that fails leaves the answer cut short, as the fetching request's is.
final class FollowingBlob: IncomingBlob, @unchecked Sendable {
    // @unchecked: handed to the one thread that answers the request, used there only.
    let digest: Digest
    let size: UInt64?
    private let total: UInt64
    private let session: UploadID
    private let watch: FetchWatch
    private let layout: StoreLayout
    private let blobs: any BlobStatter
    private let repository: RepositoryName
    private let namespace: String

    init(digest: Digest, size: UInt64, session: UploadID, watch: FetchWatch, layout: StoreLayout, blobs: any BlobStatter,
         repository: RepositoryName, namespace: String) {
        self.digest = digest
        self.size = size
        total = size
        self.session = session
        self.watch = watch
        self.layout = layout
        self.blobs = blobs
        self.repository = repository
        self.namespace = namespace
    }

    func deliver(to write: (UnsafeRawBufferPointer) -> Bool) throws(StorageError) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        var offset: UInt64 = 0
        var sending = true
        // All but the last byte, from the session's data file as it grows.
        let partial = open(layout.uploadDataFile(session), O_RDONLY | O_CLOEXEC)
        defer { if partial >= 0 { close(partial) } }
        let heldBack: UInt64 = total > 0 ? total - 1 : 0
        while true {
            if partial >= 0, offset < heldBack {
                let wanted = Int(min(UInt64(buffer.count), heldBack - offset))
                let count = pread(partial, buffer.baseAddress, wanted, off_t(offset))
                if count > 0 {
                    if sending { sending = write(UnsafeRawBufferPointer(rebasing: buffer[0..<count])) }
                    offset += UInt64(count)
                    continue
                }
            }
            if watch.fetchEnded { break }
            usleep(2_000)
        }
        guard blobs.size(of: digest, in: repository) == total else {
            throw .upstreamUnavailable(namespace: namespace, reason: "the fetch this pull followed did not complete")
        }
        // The rest from the stored blob, which is verified.
        let path = layout.blobFile(repository, digest)
        let stored = open(path, O_RDONLY | O_CLOEXEC)
        guard stored >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        defer { close(stored) }
        while offset < total {
            let count = pread(stored, buffer.baseAddress, Int(min(UInt64(buffer.count), total - offset)), off_t(offset))
            guard count > 0 else { throw .io(operation: "pread", path: path, errno: count < 0 ? errno : EIO) }
            if sending { sending = write(UnsafeRawBufferPointer(rebasing: buffer[0..<count])) }
            offset += UInt64(count)
        }
    }
}
