#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Registry
import Storage
import Testing
import TestSupport

/// Numbers a client controls, at and past every edge a parser accepts: each gets a 4xx
/// with the OCI code the spec gives and a message naming the value, never a trap, never
/// a 5xx, and the upload session or repository stays as it was.
@Suite struct BoundaryValueTests {
    static let hugeNumbers = ["18446744073709551615", "18446744073709551616", "9223372036854775808",
                              "99999999999999999999999999999999999999", String(repeating: "9", count: 5000)]

    /// A fixture with one open session that already holds `bytes`.
    private func sessionHolding(_ bytes: [UInt8]) -> (RegistryFixture, String) {
        let fixture = RegistryFixture()
        let location = fixture.send("POST", "/v2/x/app/blobs/uploads/").header("Location") ?? ""
        if !bytes.isEmpty { _ = fixture.send("PATCH", location, body: bytes) }
        return (fixture, location)
    }

    @Test(arguments: [
        "0-18446744073709551615", "18446744073709551615-18446744073709551615", "0-18446744073709551616",
        "0-9223372036854775808", "9223372036854775808-9223372036854775809", "bytes=0-18446744073709551615",
        "bytes 0-18446744073709551615/18446744073709551616", "-1-5", "+0-0", "0-+0", "0-1e3", " 0-0", "0 -0",
        "0-0-0", "0--0", "1-0", "", "-", "0-", "-0", "0x0-0x1", "٣-٣", "0-0\u{0}",
    ])
    func badContentRangeOnPatchIsBlobUploadInvalidAndKeepsTheSession(_ header: String) throws {
        let (fixture, location) = sessionHolding([1, 2, 3])
        defer { fixture.directory.remove() }
        let response = fixture.send("PATCH", location, headers: ["content-range": header], body: [9])
        #expect(response.status == 400, "\(header): \(response.status)")
        #expect(fixture.errorCode(response) == "BLOB_UPLOAD_INVALID", "\(header)")
        #expect(String(decoding: response.body, as: UTF8.self).contains("Content-Range"))
        #expect(fixture.send("GET", location).header("Range") == "0-2")
    }

    @Test(arguments: ["0-18446744073709551615", "3-18446744073709551615", "18446744073709551615-18446744073709551615",
                      "3-9223372036854775808", "5-2"])
    func badContentRangeOnFinalPutIsRefusedAndTheSessionCanStillFinish(_ header: String) throws {
        let (fixture, location) = sessionHolding([1, 2, 3])
        defer { fixture.directory.remove() }
        let digest = ContentHasher.digest(of: [1, 2, 3, 4])
        let refused = fixture.send("PUT", "\(location)?digest=\(digest)", headers: ["content-range": header], body: [4])
        #expect(refused.status == 400, "\(header): \(refused.status)")
        #expect(fixture.errorCode(refused) == "BLOB_UPLOAD_INVALID")
        let finished = fixture.send("PUT", "\(location)?digest=\(digest)", headers: ["content-range": "3-3"], body: [4])
        #expect(finished.status == 201)
    }

    @Test func contentRangeAtTheLargestOffsetIsANormalRangeMismatch() throws {
        let (fixture, location) = sessionHolding([1, 2, 3])
        defer { fixture.directory.remove() }
        let response = fixture.send("PATCH", location, headers: ["content-range": "9223372036854775806-9223372036854775807"], body: [9, 9])
        #expect(response.status == 416)
        #expect(response.header("Range") == "0-2")
    }

    @Test(arguments: hugeNumbers + ["-1", "+1", "1e3", " 1", "1 ", "0x1", "1.0", "", "one"])
    func badContentLengthIsSizeInvalidEverywhereABodyIsRead(_ value: String) throws {
        let (fixture, location) = sessionHolding([1, 2, 3])
        defer { fixture.directory.remove() }
        let digest = ContentHasher.digest(of: [1, 2, 3, 4])
        let requests: [(String, String)] = [
            ("PATCH", location), ("PUT", "\(location)?digest=\(digest)"),
            ("POST", "/v2/x/app/blobs/uploads/?digest=\(digest)"), ("PUT", "/v2/x/app/manifests/v1"),
        ]
        for (method, uri) in requests {
            let response = fixture.send(method, uri, headers: ["content-length": value], body: [4])
            #expect(response.status == 400, "\(method) \(uri) Content-Length \(value.prefix(30)): \(response.status)")
            #expect(fixture.errorCode(response) == "SIZE_INVALID", "\(method) \(uri)")
        }
        #expect(fixture.send("GET", location).header("Range") == "0-2")
    }

    @Test func paginationNumberBeyondEveryIntegerTypeIsCappedNotATrap() throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        _ = fixture.send("PUT", "/v2/app/manifests/v1", headers: ["content-type": MediaType.ociManifest],
                         body: fixture.imageManifest(in: "app"))
        for value in Self.hugeNumbers {
            for path in ["/v2/app/tags/list", "/v2/_catalog", "/v2/app/referrers/sha256:\(String(repeating: "a", count: 64))"] {
                let response = fixture.send("GET", "\(path)?n=\(value)")
                #expect(response.status == 200, "\(path) n=\(value.prefix(30)): \(response.status)")
            }
        }
    }

    @Test(arguments: ["-1", "+1", "1e3", "0x10", "1.5", "", "%2d1", "%20"])
    func paginationNumberThatIsNotDecimalIsRefusedNamingIt(_ value: String) throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        _ = fixture.send("PUT", "/v2/app/manifests/v1", headers: ["content-type": MediaType.ociManifest],
                         body: fixture.imageManifest(in: "app"))
        let response = fixture.send("GET", "/v2/app/tags/list?n=\(value)")
        #expect(response.status == 400, "n=\(value): \(response.status)")
        #expect(String(decoding: response.body, as: UTF8.self).contains("n="))
    }

    @Test(arguments: ["-1", "-0.5", "1.5", "1e400", "-1e400", "9223372036854775808", "18446744073709551616",
                      "1" + String(repeating: "0", count: 400), "\"12\"", "null", "true", "[]", "{}", "NaN", "Infinity"])
    func descriptorSizeOutsideInt64IsManifestInvalid(_ size: String) throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let config = fixture.pushBlob(Array("{}".utf8), to: "app")
        for body in [
            "{\"schemaVersion\":2,\"mediaType\":\"\(MediaType.ociManifest)\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"\(config)\",\"size\":\(size)},\"layers\":[]}",
            "{\"schemaVersion\":2,\"mediaType\":\"\(MediaType.ociIndex)\",\"manifests\":[{\"mediaType\":\"\(MediaType.ociManifest)\",\"digest\":\"\(config)\",\"size\":\(size)}]}",
            "{\"schemaVersion\":2,\"mediaType\":\"\(MediaType.ociManifest)\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"\(config)\",\"size\":2},\"layers\":[],\"subject\":{\"mediaType\":\"\(MediaType.ociManifest)\",\"digest\":\"\(config)\",\"size\":\(size)}}",
        ] {
            let response = fixture.send("PUT", "/v2/app/manifests/v1", body: Array(body.utf8))
            #expect(response.status == 400, "size \(size.prefix(30)): \(response.status)")
            #expect(fixture.errorCode(response) == "MANIFEST_INVALID", "size \(size.prefix(30))")
        }
        #expect(fixture.send("GET", "/v2/app/manifests/v1").status == 404)
    }

    @Test(arguments: ["1e400", "-1e400", "2.5", "9223372036854775808", "18446744073709551616", "-1", "0", "3",
                      "\"2\"", "null", "[2]", "-9223372036854775809"])
    func schemaVersionOutsideItsOneValueIsManifestInvalid(_ version: String) throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let body = "{\"schemaVersion\":\(version),\"mediaType\":\"\(MediaType.ociIndex)\",\"manifests\":[]}"
        let response = fixture.send("PUT", "/v2/app/manifests/v1", body: Array(body.utf8))
        #expect(response.status == 400, "schemaVersion \(version): \(response.status)")
        #expect(fixture.errorCode(response) == "MANIFEST_INVALID")
    }

    @Test func manifestsWithTensOfThousandsOfEntriesAreAnsweredCleanly() throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let config = fixture.pushBlob(Array("{}".utf8), to: "app")
        let missing = "sha256:" + String(repeating: "e", count: 64)
        let layer = "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"\(missing)\",\"size\":1}"
        let layers = Array(repeating: layer, count: 25_000).joined(separator: ",")
        let manyLayers = "{\"schemaVersion\":2,\"mediaType\":\"\(MediaType.ociManifest)\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"\(config)\",\"size\":2},\"layers\":[\(layers)]}"
        #expect(manyLayers.utf8.count < ManifestDocument.maximumSize)
        let refused = fixture.send("PUT", "/v2/app/manifests/many", body: Array(manyLayers.utf8))
        #expect(refused.status == 400)
        #expect(fixture.errorCode(refused) == "MANIFEST_BLOB_UNKNOWN")

        let annotations = (0..<60_000).map { "\"k\($0)\":\"v\"" }.joined(separator: ",")
        let annotated = "{\"schemaVersion\":2,\"mediaType\":\"\(MediaType.ociManifest)\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"\(config)\",\"size\":2},\"layers\":[],\"annotations\":{\(annotations)}}"
        #expect(annotated.utf8.count < ManifestDocument.maximumSize)
        let stored = fixture.send("PUT", "/v2/app/manifests/annotated", body: Array(annotated.utf8))
        #expect(stored.status == 201)

        let children = Array(repeating: "{\"mediaType\":\"\(MediaType.ociManifest)\",\"digest\":\"\(missing)\",\"size\":1}", count: 30_000)
        let index = "{\"schemaVersion\":2,\"mediaType\":\"\(MediaType.ociIndex)\",\"manifests\":[\(children.joined(separator: ","))]}"
        let refusedIndex = fixture.send("PUT", "/v2/app/manifests/index", body: Array(index.utf8))
        #expect((400..<500).contains(refusedIndex.status))
    }
}
