// Fuzz target: Route.parse on any request target (path and query, still percent-encoded).
// Findings: a trap; an error that is not a 4xx; a parsed route whose canonical path
// parses to something else (two endpoints answering one URL).
@testable import Registry
import Storage

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRoute(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let uri = String(decoding: input.rest(), as: UTF8.self)
    let request = RegistryRequest(method: "GET", uri: uri)
    _ = request.query
    let route: Route
    do {
        route = try Route.parse(request.path)
    } catch {
        Finding.expectClientError(error.status, "Route.parse(\(printable(uri)))")
        return 0
    }
    if let name = route.repository, RepositoryName(name.value) != name {
        Finding.report("\(printable(uri)) routes to repository \(printable(name.value)), which does not validate")
    }
    if let canonical = canonicalPath(route) {
        let again = try? Route.parse(Substring(canonical))
        if again != route {
            Finding.report("\(printable(uri)) parses to \(route), but its canonical path \(canonical) parses to \(again.map { "\($0)" } ?? "an error")")
        }
    }
    return 0
}

/// The plain path that names `route`; nil for routes that keep no canonical form.
private func canonicalPath(_ route: Route) -> String? {
    switch route {
    case .base: "/v2/"
    case .catalog: "/v2/_catalog"
    case .tags(let name): "/v2/\(name.value)/tags/list"
    case .manifest(let name, let reference): "/v2/\(name.value)/manifests/\(reference)"
    case .invalidTag: nil
    case .blob(let name, let digest): "/v2/\(name.value)/blobs/\(digest)"
    case .uploadStart(let name): "/v2/\(name.value)/blobs/uploads/"
    case .upload(let name, let id): "/v2/\(name.value)/blobs/uploads/\(id.value)"
    case .referrers(let name, let digest): "/v2/\(name.value)/referrers/\(digest)"
    }
}
