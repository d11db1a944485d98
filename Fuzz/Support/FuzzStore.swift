#if canImport(Glibc)
import Glibc
#endif
@testable import Storage

/// A store in a fresh directory under /dev/shm (or /tmp), removed when the fuzzer asks for a new one.
/// Targets never let state grow without bound: the slower each input, the less coverage.
final class FuzzStore {
    let directory: String
    let root: String
    /// A folder next to the store that must stay empty (nothing may escape the root).
    let outside: String
    var layout: StoreLayout { StoreLayout(root: root) }
    /// The store over `root`, built anew with every reset (fresh caches, as a new process).
    private(set) var store: Store

    init(prefix: String) {
        // tmpfs when there is one: fsync costs nothing there, so each input runs faster.
        let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        var template = Array("\(base)/berth-\(prefix)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> String? in
            guard let base = buffer.baseAddress, mkdtemp(base) != nil else { return nil }
            return String(cString: base)
        }
        guard let made else { Finding.report("cannot create a temporary directory: \(String(cString: strerror(errno)))") }
        directory = made
        root = made + "/store"
        outside = made + "/outside"
        mkdir(root, 0o755)
        mkdir(outside, 0o755)
        store = Store(layout: StoreLayout(root: made + "/store"))
    }

    /// Empties the store (the folder stays).
    func reset() {
        do { try FileSystem.removeTree(root) } catch { Finding.report("cannot empty the fuzz store: \(error)") }
        mkdir(root, 0o755)
        store = Store(layout: layout)
    }

    func remove() {
        try? FileSystem.removeTree(directory)
    }

    /// Fails when anything appeared next to the store.
    func checkNothingEscaped(_ context: @autoclosure () -> String) {
        guard let entries = try? FileSystem.listDirectory(outside) else { return }
        if !entries.isEmpty { Finding.report("files outside the store: \(entries.map(\.name)) after \(context())") }
    }
}

/// The blobs every fuzz store is seeded with; the committed corpora name their digests.
enum SeedContent {
    static let config = Array(#"{"architecture":"amd64","os":"linux"}"#.utf8)
    static let layer = Array("berth fuzz layer\n".utf8)
    static var configDigest: Digest { ContentHasher.digest(of: config) }
    static var layerDigest: Digest { ContentHasher.digest(of: layer) }
    /// An image manifest naming `config` and `layer`, pushed as tag `base`.
    static var manifest: [UInt8] {
        Array("""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(configDigest)","size":\(config.count)},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(layerDigest)","size":\(layer.count)}]}
            """.utf8)
    }

    static func push(_ bytes: [UInt8], to repository: RepositoryName, uploads: UploadStore) {
        do {
            let session = try uploads.start(repository: repository)
            _ = try uploads.complete(session.id, repository: repository, digest: ContentHasher.digest(of: bytes),
                                     lastChunk: BufferByteSource(bytes))
        } catch { Finding.report("cannot seed the fuzz store: \(error)") }
    }
}
