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
        ("/v2/a/blobs/sha256:../../x", .endpointUnknown),
        ("/v2/a/blobs/sha256:..%2f..%2fx", .nameInvalid),
        ("/v2/a/blobs/sha256:....", .digestInvalid),
        ("/v2/a/blobs/sha256:ABC", .digestInvalid),
        ("/v2/a/blobs/md5:abc", .digestInvalid),
        ("/v2/a/manifests/sha256:short", .digestInvalid),
        ("/v2/a/blobs/uploads/..%2f..%2fetc", .nameInvalid),
        ("/v2/a/blobs/uploads/....", .blobUploadUnknown),
        ("/v2/a/blobs/uploads/not-a-uuid", .blobUploadUnknown),
        ("/v2/a/nothing/here", .endpointUnknown),
        ("/v1/", .endpointUnknown),
        ("/v2x", .endpointUnknown),
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

    @Test func metricsRoutesThroughTheSameFrontDoor() throws {
        #expect(try Route.parse("/metrics") == .metrics)
        #expect(Route.metrics.path == "/metrics")
    }

    /// `path` is the inverse of `parse`, for every kind of route with random valid parts.
    @Test func pathIsTheInverseOfParse() throws {
        var random = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        func word() -> String { String((0..<Int.random(in: 1...8, using: &random)).compactMap { _ in alphabet.randomElement(using: &random) }) }
        func repository() -> RepositoryName {
            let separators = [".", "_", "__", "-", "--"]
            let components = (0..<Int.random(in: 1...4, using: &random)).map { _ in
                Bool.random(using: &random) ? word() : word() + (separators.randomElement(using: &random) ?? "-") + word()
            }
            let routeWords = ["blobs", "manifests", "tags", "uploads", "referrers", "list"]
            let withRouteWords = components + (Bool.random(using: &random) ? [routeWords.randomElement(using: &random) ?? "blobs"] : [])
            return RepositoryName(withRouteWords.joined(separator: "/")) ?? RepositoryName("fallback")!
        }
        func digest() -> Digest {
            let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &random) }
            return Digest(algorithm: .sha256, hex: Hex.encode(bytes))!
        }
        func tag() -> Storage.Tag {
            let tagAlphabet = Array("ABCXYZabcxyz0189_.-")
            let rest = String((0..<Int.random(in: 0...127, using: &random)).compactMap { _ in tagAlphabet.randomElement(using: &random) })
            return Storage.Tag("v" + rest)!
        }
        for _ in 0..<5_000 {
            let name = repository()
            let routes: [Route] = [
                .base, .catalog, .metrics, .tags(name), .manifest(name, .tag(tag())), .manifest(name, .digest(digest())),
                .blob(name, digest()), .uploadStart(name), .upload(name, UploadID.random()), .referrers(name, digest()),
                .invalidTag(name, "." + word()), .invalidTag(name, "bad tag ü%" + word()),
            ]
            for route in routes {
                #expect(try Route.parse(Substring(route.path)) == route, "\(route.path)")
            }
        }
    }
}
