import Registry
import Storage
import Testing

@Suite struct RouteTests {
    static let hex = String(repeating: "a", count: 64)
    static let digest = Digest("sha256:\(hex)")!
    static let id = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"

    func name(_ text: String) -> RepositoryName { RepositoryName(text)! }

    @Test func parsesEveryEndpoint() throws {
        #expect(try Route.parse("/v2/") == .base)
        #expect(try Route.parse("/v2") == .base)
        #expect(try Route.parse("/v2/_catalog") == .catalog)
        #expect(try Route.parse("/v2/team/app/api/tags/list") == .tags(name("team/app/api")))
        #expect(try Route.parse("/v2/a/manifests/latest") == .manifest(name("a"), .tag(Tag("latest")!)))
        #expect(try Route.parse("/v2/a/manifests/sha256:\(Self.hex)") == .manifest(name("a"), .digest(Self.digest)))
        #expect(try Route.parse("/v2/a/manifests/sha256%3A\(Self.hex)") == .manifest(name("a"), .digest(Self.digest)))
        #expect(try Route.parse("/v2/a/b/blobs/sha256:\(Self.hex)") == .blob(name("a/b"), Self.digest))
        #expect(try Route.parse("/v2/a/blobs/uploads/") == .uploadStart(name("a")))
        #expect(try Route.parse("/v2/a/blobs/uploads") == .uploadStart(name("a")))
        #expect(try Route.parse("/v2/a/blobs/uploads/\(Self.id)") == .upload(name("a"), UploadID(Self.id)!))
        #expect(try Route.parse("/v2/a/referrers/sha256:\(Self.hex)") == .referrers(name("a"), Self.digest))
    }

    @Test func invalidTagIsItsOwnRoute() throws {
        #expect(try Route.parse("/v2/a/manifests/.bad") == .invalidTag(name("a"), ".bad"))
    }

    @Test func namesMadeOfRouteWordsRouteLikeAnyOther() throws {
        #expect(try Route.parse("/v2/org/blobs/blobs/sha256:\(Self.hex)") == .blob(name("org/blobs"), Self.digest))
        #expect(try Route.parse("/v2/org/blobs/blobs/uploads/") == .uploadStart(name("org/blobs")))
        #expect(try Route.parse("/v2/x/tags/tags/list") == .tags(name("x/tags")))
        #expect(try Route.parse("/v2/manifests/manifests/v1") == .manifest(name("manifests"), .tag(Tag("v1")!)))
        #expect(try Route.parse("/v2/a/blobs/uploads/blobs/uploads/\(Self.id)") == .upload(name("a/blobs/uploads"), UploadID(Self.id)!))
    }

    @Test(arguments: [
        ("/v2/../etc/manifests/latest", ErrorCode.nameInvalid),
        ("/v2/%2e%2e/manifests/latest", .nameInvalid),
        ("/v2/a%2fb/manifests/latest", .nameInvalid),
        ("/v2/a%00/manifests/latest", .nameInvalid),
        ("/v2/A/manifests/latest", .nameInvalid),
        ("/v2/a%zz/manifests/latest", .nameInvalid),
        ("/v2/\(String(repeating: "a", count: 256))/tags/list", .nameInvalid),
        ("/v2/a/blobs/sha256:../../x", .unsupported),
        ("/v2/a/blobs/sha256:..%2f..%2fx", .nameInvalid),
        ("/v2/a/blobs/sha256:....", .digestInvalid),
        ("/v2/a/blobs/sha256:ABC", .digestInvalid),
        ("/v2/a/blobs/md5:abc", .digestInvalid),
        ("/v2/a/manifests/sha256:short", .digestInvalid),
        ("/v2/a/blobs/uploads/..%2f..%2fetc", .nameInvalid),
        ("/v2/a/blobs/uploads/....", .blobUploadUnknown),
        ("/v2/a/blobs/uploads/not-a-uuid", .blobUploadUnknown),
        ("/v2/a/nothing/here", .unsupported),
        ("/v1/", .unsupported),
        ("/v2x", .unsupported),
    ])
    func refusesBadPathsWithTheRightCode(_ path: String, _ code: ErrorCode) {
        do {
            let route = try Route.parse(Substring(path))
            Issue.record("\(path) parsed as \(route)")
        } catch {
            #expect(error.code == code, "\(path)")
            #expect((400..<500).contains(error.status))
        }
    }
}
