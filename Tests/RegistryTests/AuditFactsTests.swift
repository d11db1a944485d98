import Registry
import Storage
import Testing
import TestSupport

/// What each answer hands the audit log: changes with their digests and tags, the tag a
/// push moved with the manifest it named before, refusals with their reason, and nothing
/// for reads.
@Suite struct AuditFactsTests {
    @Test func pushesMovesDeletesAndRefusalsCarryTheirFactsAndReadsNone() throws {
        let directory = TemporaryDirectory(prefix: "berth-registry")
        defer { directory.remove() }
        var storeOptions = Store.Options()
        storeOptions.immutableTags = [try #require(ImmutableTagRule("app v*"))]
        let fixture = RegistryFixture(registry: Registry(store: Store(layout: StoreLayout(root: directory.path), options: storeOptions)),
                                      directory: directory)
        let first = fixture.imageManifest(in: "app", seed: 1)
        let second = fixture.imageManifest(in: "app", seed: 2)
        let one = ContentHasher.digest(of: first).description, two = ContentHasher.digest(of: second).description

        let pushed = fixture.send("PUT", "/v2/app/manifests/latest?tag=v1", body: first)
        #expect(pushed.audit == [AuditFacts(.push, digest: one, reference: "latest", tags: ["latest", "v1"])])
        let moved = fixture.send("PUT", "/v2/app/manifests/latest", body: second)
        #expect(moved.audit == [AuditFacts(.push, digest: two, reference: "latest", tags: ["latest"]),
                                AuditFacts(.tagMove, digest: two, reference: "latest", previousDigest: one)])
        let refused = fixture.send("PUT", "/v2/app/manifests/v1", body: second)
        #expect(refused.audit.map(\.action) == [.denied] && refused.audit.first?.reference == "v1")
        #expect(refused.audit.first?.detail?.contains("immutable_tags = app v*") == true)
        #expect(fixture.send("GET", "/v2/app/manifests/latest").audit.isEmpty)
        #expect(fixture.send("GET", "/v2/app/tags/list").audit.isEmpty)
        #expect(fixture.send("DELETE", "/v2/app/manifests/latest").audit
                == [AuditFacts(.delete, reference: "latest", detail: "manifest")])
        // A failed delete changes nothing and is not a refusal.
        #expect(fixture.send("DELETE", "/v2/app/manifests/latest").audit.isEmpty)
    }
}
