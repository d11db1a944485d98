// Fuzz target: the manifest and index decoder and validator (ManifestDocument), the
// index.json codec (ImageIndex), and ManifestStore.put over a store holding the seed
// blobs (SeedContent), so documents that name them get stored and resolved.
// The first byte picks the Content-Type, the rest is the body.
// Findings: a trap; a refusal that maps to a 5xx; a document accepted that breaks the
// rules (negative size, unknown media type); a stored manifest that does not read back.
#if canImport(Glibc)
import Glibc
#endif
@testable import Registry
@testable import Storage

private nonisolated(unsafe) var store: FuzzStore?
private nonisolated(unsafe) var putsSinceReset = 0
private let repository = RepositoryName("fuzz/app")!

private let contentTypes: [String?] = [
    nil, "", "application/json", "application/octet-stream", MediaType.ociManifest, MediaType.ociIndex,
    MediaType.dockerManifest, MediaType.dockerManifestList, MediaType.dockerSchema1, MediaType.dockerSchema1Signed,
    "\(MediaType.ociManifest); charset=utf-8", " APPLICATION/VND.OCI.IMAGE.INDEX.V1+JSON ", "text/plain", ";",
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzManifest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let contentType = input.choose(contentTypes)
    let tag = input.choose(["latest", "v1", "base", ""])
    let body = input.rest()

    checkIndexCodec(body)
    let document: ManifestDocument
    do {
        document = try ManifestDocument(body: body, contentType: contentType)
    } catch {
        guard case .manifestInvalid = error else { Finding.report("ManifestDocument threw \(error), not manifestInvalid") }
        Finding.expectClientError(RegistryError(error).status, "\(error)")
        return 0
    }
    guard MediaType.manifests.contains(document.mediaType) else { Finding.report("accepted media type \(document.mediaType)") }
    for reference in document.blobs + document.children + [document.subject].compactMap({ $0 }) where reference.size < 0 {
        Finding.report("accepted a descriptor with size \(reference.size)")
    }
    if !document.blobs.isEmpty, !document.children.isEmpty { Finding.report("a document with both blobs and children") }
    storeAndReadBack(body, contentType: contentType, tag: tag, document: document)
    return 0
}

/// `index.json` as a worker reads it: any bytes either decode, or are a `corrupt` store.
private func checkIndexCodec(_ body: [UInt8]) {
    guard let index = try? ImageIndex.decode(body, path: "index.json") else { return }
    let encoded = index.encoded()
    guard let again = try? ImageIndex.decode(encoded, path: "index.json"), again == index else {
        Finding.report("an index.json does not survive encode and decode: \(String(decoding: encoded, as: UTF8.self).prefix(300))")
    }
    // The lookup the pull path keeps, and its hand encoder, which must write what the
    // canonical encoder writes.
    let snapshot = IndexSnapshot(index)
    if snapshot.encoded() != encoded {
        Finding.report("the index snapshot encodes differently from ImageIndex: \(String(decoding: encoded, as: UTF8.self).prefix(300))")
    }
    _ = snapshot.sortedTags
    _ = index.tags
}

private func storeAndReadBack(_ body: [UInt8], contentType: String?, tag: String, document: ManifestDocument) {
    let store = currentStore()
    let manifests = store.store.manifests
    let reference: Reference = Tag(tag).map(Reference.tag) ?? .digest(ContentHasher.digest(of: body))
    let pushed: ManifestStore.Pushed
    do {
        pushed = try manifests.put(body, contentType: contentType, reference: reference, repository: repository)
    } catch {
        Finding.expectClientError(RegistryError(error).status, "ManifestStore.put: \(error)")
        return
    }
    putsSinceReset += 1
    do {
        let resolved = try manifests.resolve(reference, in: repository)
        // By digest, the first push of identical bytes keeps its media type; a tag names this push.
        let sameType = resolved.mediaType == document.mediaType || { if case .digest = reference { true } else { false } }()
        guard resolved.digest == pushed.digest, sameType, resolved.size == Int64(body.count) else {
            Finding.report("pushed \(pushed.digest) (\(document.mediaType)) but \(reference) resolves to \(resolved)")
        }
        let stored = try FileSystem.readFile(store.layout.blobFile(repository, pushed.digest), limit: ManifestDocument.maximumSize)
        if stored != body { Finding.report("the stored manifest \(pushed.digest) is not byte-exact") }
        _ = try manifests.tags(of: repository)
    } catch {
        Finding.report("a pushed manifest does not read back: \(error)")
    }
}

/// The store with the seed blobs and the `base` manifest; emptied and seeded again
/// every few hundred pushes so index.json stays small.
private func currentStore() -> FuzzStore {
    if let store, putsSinceReset < 256 { return store }
    let current = store ?? FuzzStore(prefix: "fuzz-manifest")
    if store == nil { atexit { store?.remove() } }
    current.reset()
    let uploads = current.store.uploads
    SeedContent.push(SeedContent.config, to: repository, uploads: uploads)
    SeedContent.push(SeedContent.layer, to: repository, uploads: uploads)
    do {
        _ = try current.store.manifests.put(SeedContent.manifest, contentType: MediaType.ociManifest,
                                                          reference: .tag(Tag("base")!), repository: repository)
    } catch { Finding.report("cannot push the seed manifest: \(error)") }
    store = current
    putsSinceReset = 0
    return current
}
