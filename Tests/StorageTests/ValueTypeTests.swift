import Storage
import Testing

@Suite struct NameAndDigestValidationTests {
    @Test(arguments: ["a", "team/app", "team/app/api", "a.b", "a_b", "a__b", "a---b", "org/blobs", "x/tags",
                      "library/alpine", "0/1/2", String(repeating: "a", count: 255)])
    func acceptsValidRepositoryNames(_ text: String) {
        #expect(RepositoryName(text) != nil)
    }

    @Test(arguments: ["", "A", "team/", "/team", "team//app", "..", "a/../b", "a/./b", "_berth", "a_", "-a", "a.-b",
                      "a___b", "a..b", "a/b%2f", "a b", "a\0b", "é", String(repeating: "a", count: 256)])
    func refusesInvalidRepositoryNames(_ text: String) {
        #expect(RepositoryName(text) == nil)
    }

    @Test func digestNeedsKnownAlgorithmAndExactLowercaseHex() {
        let hex = String(repeating: "ab", count: 32)
        #expect(Digest("sha256:\(hex)")?.hex == hex)
        #expect(Digest("sha256:\(hex.uppercased())") == nil)
        #expect(Digest("sha256:\(hex)0") == nil)
        #expect(Digest("sha256:../../etc/passwd") == nil)
        #expect(Digest("md5:\(hex)") == nil)
        #expect(Digest("sha512:\(hex)\(hex)") != nil)
        #expect(Digest(hex) == nil)
    }

    @Test func referenceTellsTagsFromDigests() {
        #expect(Reference("latest") == .tag(Tag("latest")!))
        #expect(Reference("v1.0_rc-2") != nil)
        #expect(Reference(".hidden") == nil)
        #expect(Reference(String(repeating: "t", count: 129)) == nil)
        #expect(Reference("sha256:abc") == nil)
    }

    @Test func uploadIDsAreLowercaseUUIDs() {
        let id = UploadID.random()
        #expect(UploadID(id.value) == id)
        #expect(UploadID("../../../../etc/passwd/aaaaaaaaaaaaaaa") == nil)
        #expect(UploadID(id.value.uppercased()) == nil || id.value == id.value.uppercased())
    }

    @Test func savedHashStateResumesToTheSameDigest() throws {
        var random = SeededBytes(seed: 7)
        let first = random.next(100_001), second = random.next(77_777)
        var hasher = SHA256Hasher()
        hasher.update(first)
        let restored = try #require(SHA256Hasher(savedState: hasher.savedState))
        var resumed = restored
        resumed.update(second)
        #expect(resumed.finalize() == ContentHasher.digest(of: first + second))
        #expect(SHA256Hasher(savedState: Array(hasher.savedState.dropFirst())) == nil)
    }

    @Test func savedSHA512StateResumesToTheSameDigestAndIsNotASHA256State() throws {
        var random = SeededBytes(seed: 8)
        let first = random.next(100_001), second = random.next(77_777)
        var hasher = SHA512Hasher()
        hasher.update(first)
        var resumed = try #require(SHA512Hasher(savedState: hasher.savedState))
        resumed.update(second)
        #expect(resumed.finalize() == ContentHasher.digest(of: first + second, algorithm: .sha512))
        #expect(resumed.finalize().description.hasPrefix("sha512:"))
        #expect(SHA512Hasher(savedState: Array(hasher.savedState.dropLast())) == nil)
        #expect(SHA256Hasher(savedState: hasher.savedState) == nil)
        #expect(StreamHasher(.sha256, savedState: hasher.savedState) == nil)
        // The well-known digest of "abc".
        #expect(ContentHasher.digest(of: Array("abc".utf8), algorithm: .sha512).hex.hasPrefix("ddaf35a193617aba"))
    }
}

import TestSupport
