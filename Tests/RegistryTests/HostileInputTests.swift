#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Registry
import Storage
import Testing
import TestSupport

/// Random and malicious requests straight into the registry: never a 5xx, never a
/// crash, never a file outside the store. `BERTH_FUZZ_REQUESTS` sets the count.
@Suite struct HostileInputTests {
    static let fragments = ["", "/", "//", ".", "..", "%2e%2e", "%2E%2e%2f", "%2f", "%00", "%", "%zz", "\0", "a", "A", "team",
                            "blobs", "manifests", "tags", "list", "uploads", "referrers", "_catalog", "_berth", "sha256:",
                            "sha256:" + String(repeating: "a", count: 64), "sha512:" + String(repeating: "b", count: 128),
                            "md5:00", "latest", "-x", "?", "?n=", "?n=-1", "?n=99999999999999999999", "?last=%ff",
                            "?digest=sha256:zz", "?mount=x&from=..%2f..", "&", "=", String(repeating: "z", count: 300),
                            "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", "../../etc/passwd", "ü", "\u{202e}"]
    static let methods = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "TRACE", "", "G E T"]
    static let ranges = [nil, "", "0-", "-1", "5-2", "bytes=0-0", "0-99999999999999999999999", "a-b", "0-0/10", "bytes 0-1"]

    @Test func randomRequestsNeverGetA5xxNorTouchFilesOutsideTheStore() throws {
        let directory = TemporaryDirectory(prefix: "berth-fuzz")
        defer { directory.remove() }
        let outside = "\(directory.path)/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        let registry = Registry(store: Store(root: "\(directory.path)/store"))
        var random = SystemRandomNumberGenerator()
        let count = Int(ProcessInfo.processInfo.environment["BERTH_FUZZ_REQUESTS"] ?? "") ?? 20_000
        var statuses: [Int: Int] = [:]
        for _ in 0..<count {
            var path = "/v2/"
            if Bool.random(using: &random) {
                // Shaped like a real endpoint, so requests reach the handlers and the store.
                let name = ["team/app", "app", "org/blobs", "a/b/c"].randomElement(using: &random) ?? "app"
                let tail = ["blobs/uploads/", "blobs/uploads/0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", "manifests/latest",
                            "manifests/sha256:" + String(repeating: "a", count: 64), "tags/list", "referrers/sha256:" + String(repeating: "a", count: 64),
                            "blobs/sha256:" + String(repeating: "d", count: 64)].randomElement(using: &random) ?? ""
                path += "\(name)/\(tail)" + (Self.fragments.filter { $0.hasPrefix("?") || $0.hasPrefix("&") }.randomElement(using: &random) ?? "")
            } else {
                for _ in 0..<Int.random(in: 0...6, using: &random) {
                    path += Self.fragments.randomElement(using: &random) ?? ""
                    if Bool.random(using: &random) { path += "/" }
                }
            }
            var headers: [String: String] = [:]
            if let range = Self.ranges.randomElement(using: &random) ?? nil { headers["content-range"] = range }
            if Bool.random(using: &random) { headers["content-type"] = ["application/json", MediaType.ociManifest, "x", ""].randomElement(using: &random) }
            let body = Self.randomBody(&random)
            if Bool.random(using: &random) { headers["content-length"] = String(Int.random(in: 0...10, using: &random) == 0 ? body.count + 1 : body.count) }
            let method = Self.methods.randomElement(using: &random) ?? "GET"
            let response = registry.handle(RegistryRequest(method: method, uri: path, headers: headers, body: BufferByteSource(body)))
            statuses[response.status, default: 0] += 1
            #expect(response.status < 500, "\(method) \(path) \(headers) -> \(response.status) \(String(decoding: response.body, as: UTF8.self))")
            if response.status >= 400 {
                #expect(response.header("Content-Type") == "application/json", "\(method) \(path)")
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: directory.path)).isSubset(of: ["store", "outside"]))
        print("fuzzed \(count) requests: \(statuses.sorted { $0.key < $1.key })")
    }

    @Test func deeplyNestedAndOversizedManifestsAreRefusedCleanly() throws {
        let directory = TemporaryDirectory(prefix: "berth-fuzz")
        defer { directory.remove() }
        let registry = Registry(store: Store(root: directory.path))
        let nested = Array((String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)).utf8)
        let deepObject = Array(("{\"schemaVersion\":2,\"annotations\":" + String(repeating: "{\"a\":", count: 50_000) + "1"
            + String(repeating: "}", count: 50_000) + "}").utf8)
        let huge = Array(repeating: UInt8(ascii: " "), count: (4 << 20) + 1)
        for (label, body) in [("nested arrays", nested), ("nested objects", deepObject), ("over 4 MiB", huge)] {
            let response = registry.handle(RegistryRequest(method: "PUT", uri: "/v2/app/manifests/v1",
                                                           headers: ["content-type": MediaType.ociManifest], body: BufferByteSource(body)))
            #expect((400..<500).contains(response.status), "\(label): \(response.status)")
        }
    }

    static func randomBody(_ random: inout SystemRandomNumberGenerator) -> [UInt8] {
        switch Int.random(in: 0...4, using: &random) {
        case 0: return []
        case 1: return (0..<Int.random(in: 1...300, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        case 2: return Array("{\"schemaVersion\":2,\"mediaType\":\"\(MediaType.ociIndex)\",\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"sha256:\(String(repeating: "c", count: 64))\",\"size\":-1}]}".utf8)
        case 3: return Array("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a\",\"digest\":\"sha256:../../x\",\"size\":1},\"layers\":[]}".utf8)
        default: return Array("{\"schemaVersion\":\(Int.random(in: -3...3, using: &random))}".utf8)
        }
    }
}
