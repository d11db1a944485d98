import Registry
import Storage
import Testing
import TestSupport

/// Byte quota refusals on the wire, in process: 403 DENIED with the rule and the figures
/// in the message and `detail`, at each step of an upload and at a manifest push, and the
/// client's other mistakes still answered as before.
@Suite struct QuotaAnswerTests {
    static func fixture(_ rule: String) -> RegistryFixture {
        let directory = TemporaryDirectory(prefix: "berth-registry-quota")
        var options = Store.Options()
        options.quotas = [QuotaRule(rule)].compactMap { $0 }
        return RegistryFixture(registry: Registry(store: Store(layout: StoreLayout(root: directory.path), options: options)),
                               directory: directory)
    }

    @Test func eachUploadStepOverTheQuotaIsDeniedWithTheFigures() {
        let fixture = Self.fixture("team/** 1000")
        defer { fixture.directory.remove() }
        let first = [UInt8](repeating: 1, count: 600)
        fixture.pushBlob(first, to: "team/a")
        let second = [UInt8](repeating: 2, count: 600)
        let digest = ContentHasher.digest(of: second)

        let started = fixture.send("POST", "/v2/team/a/blobs/uploads/")
        #expect(started.status == 202)
        let patch = fixture.send("PATCH", started.header("Location") ?? "", body: second)
        #expect(patch.status == 403 && fixture.errorCode(patch) == "DENIED")
        let text = String(decoding: patch.body, as: UTF8.self)
        #expect(text.contains("quota team/** 1KB exceeded") && text.contains("used 600 B (600 bytes) of 1000 B (1000 bytes)"), "\(text)")
        #expect(text.contains("rule=team/** 1KB used=600 adding=600 limit=1000"), "\(text)")
        // The audit log keeps the refusal with its message.
        #expect(patch.audit.map(\.action) == [.denied] && patch.audit.first?.detail?.contains("quota team/** 1KB") == true)
        // The refused session is gone.
        #expect(fixture.send("GET", started.header("Location") ?? "").status == 404)

        let monolithic = fixture.send("POST", "/v2/team/b/blobs/uploads/?digest=\(digest)", body: second)
        #expect(monolithic.status == 403 && fixture.errorCode(monolithic) == "DENIED")
        #expect(fixture.send("HEAD", "/v2/team/b/blobs/\(digest)").status == 404)
        // Outside the rule the same blob goes in.
        #expect(fixture.send("POST", "/v2/other/b/blobs/uploads/?digest=\(digest)", body: second).status == 201)
        let mount = fixture.send("POST", "/v2/team/a/blobs/uploads/?mount=\(digest)&from=other/b")
        #expect(mount.status == 403 && fixture.errorCode(mount) == "DENIED")
        // A client mistake is still its own answer, not the quota's.
        let bad = fixture.send("POST", "/v2/team/a/blobs/uploads/?digest=sha256:nothex", body: second)
        #expect(bad.status == 400)
    }

    @Test func aManifestPushIntoAFullQuotaIsDeniedAndARepushIsNot() {
        let fixture = Self.fixture("app 1000")
        defer { fixture.directory.remove() }
        let body = fixture.imageManifest(in: "app")
        let headers = ["content-type": MediaType.ociManifest]
        #expect(fixture.send("PUT", "/v2/app/manifests/v1", headers: headers, body: body).status == 201)
        // Filled to the byte (a 10-byte config, a 500-byte layer, the manifest, a filler):
        // another manifest is refused, the same one again is not.
        fixture.pushBlob([UInt8](repeating: 9, count: 1000 - 510 - body.count), to: "app")
        let other = fixture.send("PUT", "/v2/app/manifests/v2", headers: headers, body: body + Array(" ".utf8))
        #expect(other.status == 403 && fixture.errorCode(other) == "DENIED", "\(String(decoding: other.body, as: UTF8.self))")
        #expect(fixture.send("PUT", "/v2/app/manifests/v3", headers: headers, body: body).status == 201)
        let full = fixture.send("POST", "/v2/app/blobs/uploads/")
        #expect(full.status == 403 && String(decoding: full.body, as: UTF8.self).contains("is full"))
    }
}
