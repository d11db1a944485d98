// Fuzz target: Registry.handle end to end over a fresh temporary store, with the bytes
// decoded into a session of up to eight requests: method × route shape (valid and
// invalid names, digests, tags, upload ids taken from earlier answers) × headers
// (Content-Range, Content-Length, Content-Type, Range, remote user, with boundary
// numbers) × query (n, last, digest, mount, from, tag, artifactType) × body (blobs,
// manifests and indexes with boundary sizes, deep nesting, raw bytes).
// Findings: a trap; any status outside 2xx–4xx, and any 5xx that is not a real storage
// failure (none can happen in a healthy temp store); an error without the OCI body;
// a file written outside the store.
#if canImport(Glibc)
import Glibc
#endif
@testable import Registry
@testable import Storage

private let numbers = ["0", "1", "2", "-1", "9223372036854775807", "9223372036854775808", "18446744073709551615",
                       "18446744073709551616", "99999999999999999999999", "1e400", "1.5", "+1", " 1", "0x10", "", "a"]
private let names = ["team/app", "app", "org/blobs", "team", "team/blobs", "a/b/c", "x/tags", "library/alpine",
                     "Team/App", "a//b", "_berth", "..", "a/../b", "-a", String(repeating: "a", count: 256), "%61pp", "a%2fb"]
private let tags = ["latest", "v1", "base", "_x", "-x", ".x", String(repeating: "t", count: 129), "a:b", "%41"]
private let methods = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "", "get"]
private let contentTypes = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList,
                            MediaType.dockerSchema1, "application/json", "application/octet-stream", "text/plain", "",
                            "\(MediaType.ociManifest); charset=utf-8", String(repeating: "x", count: 5000)]
private let mediaTypes = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList,
                          MediaType.dockerSchema1, "application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.config.v1+json",
                          "application/vnd.oci.image.layer.nondistributable.v1.tar", "", "x"]
private let sizes = ["0", "1", "-1", "1.5", "1e400", "-0", "18446744073709551616", "18446744073709551615", "9223372036854775807",
                     "9223372036854775808", "\"1\"", "null", "[]", "{}", "true", "1E2", "0.0"]
private let policies = [
    "", "anonymous ** read\n", "anonymous team/** read,write,delete\nalice ** read,write,delete\n",
    "* */* read,write\nanonymous a/** read\n",
]

/// What earlier answers of the session revealed: upload locations, digests, bodies.
private struct Session {
    var locations: [String] = []
    var digests: [Digest] = [SeedContent.configDigest, SeedContent.layerDigest, ContentHasher.digest(of: SeedContent.manifest)]
    var sizes: [Digest: Int] = [SeedContent.configDigest: SeedContent.config.count, SeedContent.layerDigest: SeedContent.layer.count]
    var lastBody: [UInt8] = []
    var uploadSize: UInt64 = 0
}

private nonisolated(unsafe) var store: FuzzStore?
/// BERTH_FUZZ_TRACE=1 prints each request and answer (to read what an input does).
private let trace = getenv("BERTH_FUZZ_TRACE") != nil

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRegistry(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    if store == nil {
        store = FuzzStore(prefix: "fuzz-registry")
        atexit { store?.remove() }
    }
    guard let store else { return 0 }
    store.reset()

    var options = Registry.Options()
    let flags = input.byte()
    options.automaticCrossMount = flags & 1 != 0
    var storeOptions = Store.Options()
    storeOptions.maximumUploadSessions = flags & 2 != 0 ? 2 : 1000
    let policyText = policies[Int(flags >> 2) % policies.count]
    if !policyText.isEmpty { options.policy = try? AccessPolicy(text: policyText) }
    let registry = Registry(store: Store(layout: store.layout, options: storeOptions), options: options)
    if flags & 0x80 != 0 { seed(store) }

    var session = Session()
    var log: [String] = []
    for _ in 0..<8 where !input.isAtEnd {
        let request = makeRequest(&input, &session)
        log.append("\(request.method) \(printable(request.uri, limit: 200)) \(request.headers.mapValues { printable($0, limit: 80) }) body \(session.lastBody.count) bytes \(printable(String(decoding: session.lastBody.prefix(300), as: UTF8.self), limit: 300))")
        let response = registry.handle(request)
        if trace { print("\(log[log.count - 1])\n  -> \(response.status) \(response.headers.map { "\($0.name): \($0.value)" }) \(printable(String(decoding: response.body, as: UTF8.self)))") }
        check(response, log: log)
        learn(from: response, &session)
    }
    store.checkNothingEscaped(log.joined(separator: "\n"))
    return 0
}

/// The seed blobs and the `base` manifest in `team/app`.
private func seed(_ store: FuzzStore) {
    let uploads = store.store.uploads
    let name = RepositoryName("team/app")!
    SeedContent.push(SeedContent.config, to: name, uploads: uploads)
    SeedContent.push(SeedContent.layer, to: name, uploads: uploads)
    do {
        _ = try store.store.manifests.put(SeedContent.manifest, contentType: MediaType.ociManifest,
                                                        reference: .tag(Tag("base")!), repository: name)
    } catch { Finding.report("cannot push the seed manifest: \(error)") }
}

private func check(_ response: RegistryResponse, log: [String]) {
    let status = response.status
    let body = String(decoding: response.body, as: UTF8.self)
    let context = { "\(status) \(printable(body, limit: 400))\nafter:\n\(log.joined(separator: "\n"))" }
    guard (200..<600).contains(status) else { Finding.report("status outside HTTP: \(context())") }
    if status >= 500 {
        // Only a real storage failure may be a 5xx, and a healthy temp store has none.
        let real = body.contains("No space left") || body.contains("Disk quota") || body.contains("Input/output error")
        if !real { Finding.report("5xx for a client's request: \(context())") }
    }
    if status >= 400 {
        if response.header("Content-Type") != "application/json" || !body.hasPrefix("{\"errors\":[{\"code\":\"") {
            Finding.report("an error without the OCI error body: \(context())")
        }
    }
}

private func learn(from response: RegistryResponse, _ session: inout Session) {
    if let location = response.header("Location"), location.contains("/blobs/uploads/") {
        session.locations.append(location)
    }
    if let digest = response.header("Docker-Content-Digest").flatMap(Digest.init), !session.digests.contains(digest) {
        session.digests.append(digest)
    }
    if let range = response.header("Range"), let end = range.split(separator: "-").last.flatMap({ UInt64($0) }) {
        session.uploadSize = end == 0 ? 0 : end + 1
    }
}

private func makeRequest(_ input: inout FuzzInput, _ session: inout Session) -> RegistryRequest {
    let method = input.byte() == 255 ? input.string(upTo: 16) : input.choose(methods)
    let body = makeBody(&input, &session)
    session.lastBody = body
    let bodyDigest = ContentHasher.digest(of: body)
    if !session.digests.contains(bodyDigest) { session.digests.append(bodyDigest) }
    session.sizes[bodyDigest] = body.count
    var path = makePath(&input, &session)
    var query: [String] = []
    for _ in 0..<input.index(4) { query.append(makeQueryPair(&input, session)) }
    if !query.isEmpty { path += (path.contains("?") ? "&" : "?") + query.joined(separator: "&") }

    var headers: [String: String] = [:]
    let headerFlags = input.byte()
    if headerFlags & 1 != 0 { headers["content-range"] = makeContentRange(&input, session, bodyLength: body.count) }
    if headerFlags & 2 != 0 {
        headers["content-length"] = input.choose([String(body.count), String(body.count + 1), String(max(body.count - 1, 0))] + numbers)
    } else if headerFlags & 4 == 0, !body.isEmpty {
        headers["content-length"] = String(body.count)
    }
    if headerFlags & 8 != 0 { headers["content-type"] = input.choose(contentTypes) }
    if headerFlags & 16 != 0 { headers["range"] = "bytes=" + input.choose(numbers) + "-" + input.choose(numbers) }
    if headerFlags & 32 != 0 { headers["remote-user"] = input.choose(["alice", "bob", "", "anonymous", "*"]) }
    if headerFlags & 64 != 0 { headers[input.choose(["content-range", "content-length", "content-type"])] = input.string(upTo: 300) }
    return RegistryRequest(method: method, uri: path, headers: headers, body: BufferByteSource(body))
}

private func makeName(_ input: inout FuzzInput) -> String {
    input.byte() == 255 ? input.string(upTo: 300) : input.choose(names)
}

private func makeDigest(_ input: inout FuzzInput, _ session: Session) -> String {
    switch input.index(6) {
    case 0, 1, 2: return session.digests[input.index(session.digests.count)].description
    case 3: return "sha512:" + String(repeating: "a", count: 128)
    case 4: return input.choose(["sha256:" + String(repeating: "A", count: 64), "sha256:abc", "md5:00", "sha256:", ":", "sha256%3a" + String(repeating: "0", count: 64)])
    default: return input.string(upTo: 200)
    }
}

private func makeReference(_ input: inout FuzzInput, _ session: Session) -> String {
    input.bool() ? input.choose(tags) : makeDigest(&input, session)
}

private func makePath(_ input: inout FuzzInput, _ session: inout Session) -> String {
    switch input.index(11) {
    case 0: return "/v2/"
    case 1: return "/v2/_catalog"
    case 2: return "/v2/\(makeName(&input))/tags/list"
    case 3: return "/v2/\(makeName(&input))/manifests/\(makeReference(&input, session))"
    case 4: return "/v2/\(makeName(&input))/blobs/\(makeDigest(&input, session))"
    case 5: return "/v2/\(makeName(&input))/blobs/uploads/"
    case 6, 7:
        // An upload an earlier answer opened, as given, or moved to another name.
        guard !session.locations.isEmpty else { return "/v2/\(makeName(&input))/blobs/uploads/" + UploadID.random().value }
        let location = session.locations[input.index(session.locations.count)]
        guard input.bool(), let id = location.split(separator: "/").last else { return location }
        return "/v2/\(makeName(&input))/blobs/uploads/\(id)"
    case 8: return "/v2/\(makeName(&input))/referrers/\(makeDigest(&input, session))"
    case 9: return "/v2/\(makeName(&input))/blobs/uploads/" + input.choose(["", "x", "0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9", "..", "%00"])
    default: return input.string(upTo: 400)
    }
}

private func makeQueryPair(_ input: inout FuzzInput, _ session: Session) -> String {
    let key = input.choose(["n", "last", "digest", "mount", "from", "tag", "artifactType", "x"])
    let value: String = switch input.index(5) {
    case 0: input.choose(numbers)
    case 1: makeDigest(&input, session)
    case 2: makeName(&input)
    case 3: input.choose(["%ff", "%", "%zz", "%00", "repo05", String(repeating: "z", count: 3000), MediaType.ociManifest])
    default: input.string(upTo: 100)
    }
    return "\(key)=\(value)"
}

private func makeContentRange(_ input: inout FuzzInput, _ session: Session, bodyLength: Int) -> String {
    let start = session.uploadSize
    let prefix = input.choose(["", "bytes=", "bytes "])
    switch input.index(4) {
    case 0: return "\(prefix)\(start)-\(start + UInt64(max(bodyLength, 1)) - 1)"
    case 1: return "\(prefix)0-\(max(bodyLength, 1) - 1)"
    case 2: return prefix + input.choose(numbers) + "-" + input.choose(numbers)
    default: return prefix + input.choose(numbers) + "-" + input.choose(numbers) + "/" + input.choose(numbers + ["*"])
    }
}

private func makeBody(_ input: inout FuzzInput, _ session: inout Session) -> [UInt8] {
    switch input.index(8) {
    case 0: return []
    case 1: return input.bytes(upTo: 2048)
    case 2: return input.choose([SeedContent.config, SeedContent.layer, SeedContent.manifest, session.lastBody])
    case 3, 4: return Array(makeManifest(&input, session).utf8)
    case 5: return Array(makeIndex(&input, session).utf8)
    case 6:
        let depth = input.choose([10, 100, 1000, 100_000])
        let open = input.choose(["[", "{\"a\":", "{\"schemaVersion\":2,\"layers\":["])
        return Array((String(repeating: open, count: depth) + "1").utf8)
    default:
        // Just over the 4 MiB manifest limit, or an exact multiple of a page.
        return [UInt8](repeating: UInt8(ascii: " "), count: input.choose([(4 << 20) + 1, 4096, 4097]))
    }
}

private func makeDescriptor(_ input: inout FuzzInput, _ session: Session) -> String {
    let digest = makeDigest(&input, session)
    let size = input.bool() ? (Digest(digest).flatMap { session.sizes[$0] }.map(String.init) ?? "0") : input.choose(sizes)
    var fields = ["\"mediaType\":\"\(input.choose(mediaTypes))\"", "\"digest\":\"\(digest)\"", "\"size\":\(size)"]
    if input.bool() { fields.append("\"artifactType\":\"application/x.fuzz\"") }
    if input.bool() { fields.append("\"annotations\":{\"k\":\"v\"}") }
    if input.bool() { fields.removeLast(fields.count > 3 ? 1 : 0) }
    return "{" + fields.joined(separator: ",") + "}"
}

private func makeManifest(_ input: inout FuzzInput, _ session: Session) -> String {
    var fields = ["\"schemaVersion\":\(input.choose(["2", "1", "3", "2.0", "\"2\"", "-1", "1e400"]))"]
    if input.bool() { fields.append("\"mediaType\":\"\(input.choose(mediaTypes))\"") }
    if input.byte() != 7 { fields.append("\"config\":" + makeDescriptor(&input, session)) }
    var layers: [String] = []
    for _ in 0..<input.index(4) { layers.append(makeDescriptor(&input, session)) }
    if input.byte() != 7 { fields.append("\"layers\":[\(layers.joined(separator: ","))]") }
    if input.bool() { fields.append("\"subject\":" + makeDescriptor(&input, session)) }
    if input.bool() { fields.append("\"artifactType\":\"\(input.choose(["application/x.fuzz", "", MediaType.ociManifest]))\"") }
    return "{" + fields.joined(separator: ",") + "}"
}

private func makeIndex(_ input: inout FuzzInput, _ session: Session) -> String {
    var fields = ["\"schemaVersion\":2"]
    if input.bool() { fields.append("\"mediaType\":\"\(input.choose([MediaType.ociIndex, MediaType.dockerManifestList, MediaType.ociManifest]))\"") }
    var children: [String] = []
    for _ in 0..<input.index(4) { children.append(makeDescriptor(&input, session)) }
    fields.append("\"manifests\":[\(children.joined(separator: ","))]")
    if input.bool() { fields.append("\"subject\":" + makeDescriptor(&input, session)) }
    return "{" + fields.joined(separator: ",") + "}"
}
