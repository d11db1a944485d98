#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Registry
import Storage
import Testing
import TestSupport

/// Pagination at sizes where a scan would show: every item exactly once, in order.
@Suite struct LargeListingTests {
    /// A listing field: the name (a string) or the items (strings).
    enum Listed: Decodable {
        case string(String)
        case strings([String])
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) { self = .string(text) } else { self = .strings(try container.decode([String].self)) }
        }
    }

    /// Follows `Link` from `first` to the end and returns every listed item.
    func walk(_ fixture: RegistryFixture, _ first: String, field: String) throws -> [String] {
        var items: [String] = []
        var next: String? = first
        var pages = 0
        while let uri = next {
            let answer = fixture.send("GET", uri)
            #expect(answer.status == 200)
            let object = try JSONDecoder().decode([String: Listed].self, from: Data(answer.body))
            if case .strings(let page)? = object[field] { items += page }
            next = answer.header("Link").flatMap { link in
                guard let open = link.firstIndex(of: "<"), let close = link.firstIndex(of: ">") else { return nil }
                return String(link[link.index(after: open)..<close])
            }
            pages += 1
            if pages > 100_000 { break }
        }
        return items
    }

    @Test func tagsListAtOneHundredThousandTagsPagesEveryTagOnce() throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let body = fixture.imageManifest(in: "big")
        #expect(fixture.send("PUT", "/v2/big/manifests/seed", headers: ["content-type": MediaType.ociManifest], body: body).status == 201)
        let digest = ContentHasher.digest(of: body)
        // Written directly: 100,000 pushes would take minutes.
        var index = ImageIndex()
        var random = SeededBytes(seed: 42)
        var tags = Set<String>()
        while tags.count < 100_000 { tags.insert("v\(random.next(4).map(String.init).joined(separator: "."))-\(tags.count)") }
        index.manifests = tags.map { tag in
            Descriptor(mediaType: MediaType.ociManifest, digest: digest, size: Int64(body.count),
                       annotations: [Descriptor.refNameAnnotation: tag])
        }
        let path = StoreLayout(root: fixture.directory.path).indexFile(RepositoryName("big")!)
        #expect(FileManager.default.createFile(atPath: path, contents: Data(index.encoded())))
        let expected = tags.sorted()
        #expect(try walk(fixture, "/v2/big/tags/list", field: "tags") == expected)
        #expect(try walk(fixture, "/v2/big/tags/list?n=777", field: "tags") == expected)
        // Starting from any `last`, present or not, the rest follows exactly.
        for last in [expected[0], expected[54_321], "v5", "zzz", ""] {
            let rest = try walk(fixture, "/v2/big/tags/list?n=1000&last=\(last)", field: "tags")
            #expect(rest == expected.filter { $0 > last })
        }
    }

    @Test func catalogAtFiveHundredRepositoriesPagesEveryNameOnce() throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let store = Store(root: fixture.directory.path)
        var names: [String] = []
        for number in 0..<500 {
            let name = "org\(number % 7)/app\(number)"
            try store.repositories.create(RepositoryName(name)!)
            names.append(name)
            if number == 250 { _ = fixture.send("GET", "/v2/_catalog") }  // cached halfway, then kept up to date
        }
        let expected = names.sorted()
        #expect(try walk(fixture, "/v2/_catalog?n=100", field: "repositories") == expected)
        #expect(try walk(fixture, "/v2/_catalog", field: "repositories") == expected)
    }

    @Test func aSubjectWithManyReferrersPagesEveryReferrerOnce() throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let subject = fixture.imageManifest(in: "sig")
        #expect(fixture.send("PUT", "/v2/sig/manifests/v1", headers: ["content-type": MediaType.ociManifest], body: subject).status == 201)
        let subjectDigest = ContentHasher.digest(of: subject)
        let config = fixture.pushBlob(Array("{}".utf8), to: "sig")
        var digests: [String] = []
        for number in 0..<600 {
            let artifact = number % 3 == 0 ? "application/vnd.example.sbom" : "application/vnd.example.sig"
            let body = Array("""
                {"schemaVersion":2,"mediaType":"\(MediaType.ociManifest)","artifactType":"\(artifact)","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"\(config)","size":2},"layers":[],"subject":{"mediaType":"\(MediaType.ociManifest)","digest":"\(subjectDigest)","size":\(subject.count)},"annotations":{"n":"\(number)"}}
                """.utf8)
            let digest = ContentHasher.digest(of: body)
            #expect(fixture.send("PUT", "/v2/sig/manifests/\(digest)", headers: ["content-type": MediaType.ociManifest], body: body).status == 201)
            digests.append(digest.description)
            if number == 300 { _ = fixture.send("GET", "/v2/sig/referrers/\(subjectDigest)") }  // cached, then changed
        }
        func referrerDigests(_ uri: String) throws -> [String] {
            var found: [String] = []
            var next: String? = uri
            while let page = next {
                let answer = fixture.send("GET", page)
                struct Index: Decodable { struct Entry: Decodable { let digest: String }; let manifests: [Entry] }
                found += try JSONDecoder().decode(Index.self, from: Data(answer.body)).manifests.map(\.digest)
                next = answer.header("Link").flatMap { link in
                    guard let open = link.firstIndex(of: "<"), let close = link.firstIndex(of: ">") else { return nil }
                    return String(link[link.index(after: open)..<close])
                }
            }
            return found
        }
        #expect(try referrerDigests("/v2/sig/referrers/\(subjectDigest)?n=50") == digests.sorted())
        let sboms = digests.enumerated().filter { $0.offset % 3 == 0 }.map(\.element).sorted()
        #expect(try referrerDigests("/v2/sig/referrers/\(subjectDigest)?n=37&artifactType=application/vnd.example.sbom") == sboms)
        // A delete is seen at once by the cached list.
        #expect(fixture.send("DELETE", "/v2/sig/manifests/\(digests[5])").status == 202)
        #expect(try referrerDigests("/v2/sig/referrers/\(subjectDigest)") == digests.sorted().filter { $0 != digests[5] })
    }
}
