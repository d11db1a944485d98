import Storage
import TestSupport

/// A store in a temp directory, with helpers that push blobs and build manifests.
struct StoreFixture {
    let directory: TemporaryDirectory
    /// The store of this process, built once, as `berth serve` does.
    let store: Store

    init(options: Store.Options = Store.Options()) {
        directory = TemporaryDirectory(prefix: "berth-storage")
        store = Store(layout: StoreLayout(root: directory.path), options: options)
    }

    var layout: StoreLayout { store.layout }
    var uploads: UploadStore { store.uploads }
    var blobs: BlobStore { store.blobs }
    var manifests: ManifestStore { store.manifests }
    var repositories: RepositoryStore { store.repositories }
    /// A second store over the same root: what another worker process sees.
    func otherProcess() -> Store { Store(layout: layout) }

    func name(_ text: String) -> RepositoryName {
        guard let name = RepositoryName(text) else { fatalError("bad test name \(text)") }
        return name
    }

    /// Uploads `bytes` as one blob of `repository` and returns its digest.
    @discardableResult
    func pushBlob(_ bytes: [UInt8], to repository: String) throws -> Digest {
        let digest = ContentHasher.digest(of: bytes)
        let session = try uploads.start(repository: name(repository))
        _ = try uploads.complete(session.id, repository: name(repository), digest: digest, lastChunk: BufferByteSource(bytes))
        return digest
    }

    /// Pushes a config and `layerCount` layers, returns an image manifest body that names them.
    func imageManifest(in repository: String, mediaType: String = MediaType.ociManifest, seed: UInt64 = 1,
                       layerCount: Int = 2, configMediaType: String = "application/vnd.oci.image.config.v1+json",
                       subject: (Digest, Int)? = nil) throws -> [UInt8] {
        var random = SeededBytes(seed: seed)
        let config = Array("{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\(seed)}".utf8)
        let configDigest = try pushBlob(config, to: repository)
        var layers: [String] = []
        for _ in 0..<layerCount {
            let layer = random.next(1000)
            let digest = try pushBlob(layer, to: repository)
            layers.append("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"\(digest)\",\"size\":1000}")
        }
        var subjectField = ""
        if let (digest, size) = subject {
            subjectField = ",\"subject\":{\"mediaType\":\"\(MediaType.ociManifest)\",\"digest\":\"\(digest)\",\"size\":\(size)}"
        }
        return Array("""
            {"schemaVersion":2,"mediaType":"\(mediaType)","config":{"mediaType":"\(configMediaType)","digest":"\(configDigest)","size":\(config.count)},"layers":[\(layers.joined(separator: ","))]\(subjectField)}
            """.utf8)
    }

    func indexManifest(children: [(Digest, Int)], mediaType: String = MediaType.ociIndex) -> [UInt8] {
        let entries = children.map { digest, size in
            "{\"mediaType\":\"\(MediaType.ociManifest)\",\"digest\":\"\(digest)\",\"size\":\(size),\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}"
        }
        return Array("{\"schemaVersion\":2,\"mediaType\":\"\(mediaType)\",\"manifests\":[\(entries.joined(separator: ","))]}".utf8)
    }

    func fileContents(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count == 0 { break }
            out.append(contentsOf: buffer[0..<count])
        }
        return out
    }
}

/// A body stream that hands out at most `step` bytes per read, as a slow socket does.
final class TricklingByteSource: ByteSource {
    private let inner: BufferByteSource
    private let step: Int

    init(_ bytes: [UInt8], step: Int) {
        inner = BufferByteSource(bytes)
        self.step = step
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) -> Int {
        try inner.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<min(step, buffer.count)]))
    }
}

/// A body stream that breaks off after some bytes, as a dropped client does.
final class BrokenByteSource: ByteSource {
    private let inner: BufferByteSource

    init(_ bytes: [UInt8]) { inner = BufferByteSource(bytes) }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) -> Int {
        let count = try inner.read(into: buffer)
        if count == 0 { throw .bodyInterrupted }
        return count
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// Hands out `bytes` in `step`-sized reads as a followed source, counting the reads at
/// which the file did not yet hold everything handed out before.
final class WatchedByteSource: ByteSource {
    private let bytes: [UInt8]
    private let step: Int
    private let file: String
    private var offset = 0
    private(set) var lagging = 0

    init(_ bytes: [UInt8], step: Int, file: String) {
        self.bytes = bytes
        self.step = step
        self.file = file
    }

    var isFollowed: Bool { true }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) -> Int {
        var status = stat()
        if stat(file, &status) != 0 || Int(status.st_size) != offset { lagging += 1 }
        let count = min(step, buffer.count, bytes.count - offset)
        guard count > 0 else { return 0 }
        bytes.withUnsafeBytes { source in
            guard let from = source.baseAddress else { return }
            buffer.baseAddress?.copyMemory(from: from + offset, byteCount: count)
        }
        offset += count
        return count
    }
}
