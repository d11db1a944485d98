// Fuzz target: Route.parse on any request target (path and query, still percent-encoded).
// Findings: a trap; an error that is not a 4xx; a parsed route whose `path` parses to
// something else (two endpoints answering one URL, or Location headers that mislead).
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
    // Route.path is the inverse of Route.parse: the path Berth writes for a route must
    // name that route again.
    let canonical = route.path
    let again = try? Route.parse(Substring(canonical))
    if again != route {
        Finding.report("\(printable(uri)) parses to \(route), but its path \(canonical) parses to \(again.map { "\($0)" } ?? "an error")")
    }
    return 0
}
