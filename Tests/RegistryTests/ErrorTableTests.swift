#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Registry
import Storage
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The one table of wire errors: nginx uses only its codes, and internal causes reach
/// the log but never the client.
@Suite struct ErrorTableTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    @Test func everyCodeNginxSendsIsInTheTable() throws {
        let site = try String(contentsOfFile: "\(Self.repositoryRoot)/nginx/berth-site.conf.in", encoding: .utf8)
        let known = Set(ErrorCode.all.map(\.wireCode))
        var found: [String] = []
        var rest = Substring(site)
        while let range = rest.range(of: "\"code\":\"") {
            let after = rest[range.upperBound...]
            guard let end = after.firstIndex(of: "\"") else { break }
            found.append(String(after[..<end]))
            rest = after[end...]
        }
        #expect(found.count >= 10, "the error map was found")
        for code in found { #expect(known.contains(code), "nginx sends \(code), which ErrorCode does not list") }
    }

    @Test func everyEntryHasAClientOrServerStatus() {
        for entry in ErrorCode.all { #expect((400..<600).contains(entry.status), "\(entry)") }
        #expect(Set(ErrorCode.all).count == ErrorCode.all.count, "no entry twice")
    }

    @Test func storageFailuresCarryTheirCauseToTheLogButNotToTheClient() {
        let path = "/srv/store/_berth/uploads/secret-looking-path/data"
        for failure: StorageError in [.io(operation: "pwrite", path: path, errno: ENOSPC), .io(operation: "open", path: path, errno: EIO),
                                      .corrupt(path: path, reason: "upload state does not parse"), .lockTimeout(path: path)] {
            let error = RegistryError(failure)
            let response = error.response
            let body = String(decoding: response.body, as: UTF8.self)
            #expect(!body.contains(path), "\(failure): the wire never names the file")
            #expect(response.cause?.contains(path) == true, "\(failure): the log does")
        }
        #expect(RegistryError(.io(operation: "pwrite", path: path, errno: ENOSPC)).status == 507)
        #expect(RegistryError(.io(operation: "pwrite", path: path, errno: EIO)).response.cause?.contains("errno 5") == true)
        #expect(RegistryError(.blobUnknown(Digest("sha256:" + String(repeating: "a", count: 64))!)).cause == nil)
    }

    @Test func aSharedStoreThatKeepsAnsweringStaleOrDisconnectedIs503Unavailable() {
        let path = "/srv/store/team/app/index.json"
        for code in [ESTALE, ENOTCONN] {
            let response = RegistryError(.io(operation: "open", path: path, errno: code)).response
            let body = String(decoding: response.body, as: UTF8.self)
            #expect(response.status == 503, "errno \(code)")
            #expect(body.contains("\"UNAVAILABLE\"") && !body.contains(path), "errno \(code): \(body)")
            #expect(response.headers.contains { $0.name == "Retry-After" }, "errno \(code)")
        }
        #expect(RegistryError(.io(operation: "open", path: path, errno: EIO)).status == 500)
    }

    @Test func wrongMethodsAnswer405WithTheAllowDerivedFromTheOperationTable() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("berth-errors-\(UInt64.random(in: 0...UInt64.max))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let registry = Registry(store: Store(root: directory))
        let digest = "sha256:" + String(repeating: "a", count: 64)
        let expected: [(String, String)] = [
            ("/v2/", "GET, HEAD"), ("/v2/_catalog", "GET, HEAD"), ("/v2/a/tags/list", "GET, HEAD"),
            ("/v2/a/manifests/v1", "GET, HEAD, PUT, DELETE"), ("/v2/a/manifests/.bad", "GET, HEAD, PUT, DELETE"),
            ("/v2/a/blobs/\(digest)", "GET, HEAD, DELETE"), ("/v2/a/blobs/uploads/", "POST"),
            ("/v2/a/blobs/uploads/0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", "GET, HEAD, PUT, PATCH, DELETE"),
            ("/v2/a/referrers/\(digest)", "GET, HEAD"),
        ]
        for (path, allow) in expected {
            let answer = registry.handle(RegistryRequest(method: "OPTIONS", uri: path))
            #expect(answer.status == 405, "\(path)")
            #expect(answer.header("Allow") == allow, "\(path)")
        }
    }
}
