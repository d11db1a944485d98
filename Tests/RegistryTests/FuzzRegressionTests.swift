import Registry
import Storage
import Testing

/// Inputs the libFuzzer targets (`Fuzz/`, `scripts/fuzz`) found, as requests with the
/// answer each deserves. The raw inputs are in `Fuzz/regressions/<target>/`.
@Suite struct FuzzRegressionTests {
    /// Fuzz/regressions/{headers,registry}/content-range-length-2-pow-64: the range
    /// 0-18446744073709551615 is 2^64 bytes, whose length overflowed UInt64 (a trap).
    @Test func patchWithAContentRangeOfTwoToTheSixtyFourBytesIsRefused() throws {
        let fixture = RegistryFixture()
        defer { fixture.directory.remove() }
        let location = try #require(fixture.send("POST", "/v2/team/app/blobs/uploads/").header("Location"))
        for range in ["0-18446744073709551615", "bytes=0-18446744073709551615", "5-18446744073709551615"] {
            let response = fixture.send("PATCH", location, headers: ["content-range": range], body: Array("hello".utf8))
            #expect((400..<500).contains(response.status), "\(range) -> \(response.status)")
            #expect(fixture.errorCode(response) == "BLOB_UPLOAD_INVALID", "\(range)")
        }
        let put = fixture.send("PUT", "\(location)?digest=\(ContentHasher.digest(of: []))",
                               headers: ["content-range": "0-18446744073709551615"])
        #expect((400..<500).contains(put.status))
        #expect(fixture.send("GET", location).header("Range") == "0-0")
    }
}
