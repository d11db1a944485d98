#if canImport(Glibc)
import Glibc
#endif
import Storage
import Testing
import TestSupport

@Suite struct RetentionTests {
    @Test func policyLinesParseAndMistakesNameTheLine() throws {
        let policy = try RetentionPolicy(text: """
            # repositories   what to keep
            release/**       keep-tags=v*,stable
            team/**          keep-last=10 keep-pulled=30d untagged=7d   # comment

            **               keep-pushed=2w
            """)
        #expect(policy.rules.count == 3)
        #expect(policy.rule(for: RepositoryName("team/a/b")!)?.keepLast == 10)
        #expect(policy.rule(for: RepositoryName("team/a")!)?.keepPulled == 30 * 86_400)
        #expect(policy.rule(for: RepositoryName("release/x")!)?.keepsTag("v1.2") == true)
        #expect(policy.rule(for: RepositoryName("other")!)?.description == "line 5: ** keep-pushed=2w")
        #expect(try RetentionPolicy(text: "a keep-last=1\r\nb untagged=1d\r\n").rules.map(\.line) == [1, 2], "CRLF lines")
        for (text, line) in [("team/** keep-last=x", 1), ("\nteam/**", 2), ("a keep-forever=1", 1), ("a untagged=7y", 1),
                             ("a keep-tags=v*/x", 1), ("a keep-last=99999999999999999999", 1)] {
            #expect(throws: RetentionPolicy.Problem.self) { try RetentionPolicy(text: text) }
            do { _ = try RetentionPolicy(text: text) } catch { #expect(error.line == line, "\(text): \(error)") }
        }
    }

    @Test func referrersAndChildrenFollowWhatTheyBelongToAndTheDryRunListsWhatTheRunDeletes() throws {
        var storeOptions = Store.Options()
        storeOptions.recordsEvents = true
        let fixture = StoreFixture(options: storeOptions)
        defer { fixture.directory.remove() }
        let repo = fixture.name("team/app")
        func push(_ body: [UInt8], _ reference: Reference) throws -> Digest {
            try fixture.manifests.put(body, contentType: nil, reference: reference, repository: repo).digest
        }
        let released = try push(try fixture.imageManifest(in: repo.value, seed: 1), .tag(Tag("release-1")!))
        let old = try push(try fixture.imageManifest(in: repo.value, seed: 2), .tag(Tag("old")!))
        let newest = try push(try fixture.imageManifest(in: repo.value, seed: 3), .tag(Tag("new")!))
        func signature(of subject: Digest, seed: UInt64) throws -> Digest {
            let size = Int(fixture.blobs.size(of: subject, in: repo) ?? 0)
            let body = try fixture.imageManifest(in: repo.value, seed: seed, layerCount: 1,
                                                 configMediaType: "application/vnd.dev.cosign.artifact.sig.v1+json",
                                                 subject: (subject, size))
            return try push(body, .digest(ContentHasher.digest(of: body)))
        }
        let oldSignature = try signature(of: old, seed: 10)
        let newSignature = try signature(of: newest, seed: 11)
        let releasedSignature = try signature(of: released, seed: 12)
        let untaggedBody = try fixture.imageManifest(in: repo.value, seed: 4)
        let untagged = try push(untaggedBody, .digest(ContentHasher.digest(of: untaggedBody)))
        let childBody = try fixture.imageManifest(in: repo.value, seed: 5)
        let child = try push(childBody, .digest(ContentHasher.digest(of: childBody)))
        let index = try push(fixture.indexManifest(children: [(child, childBody.count)]), .tag(Tag("multi")!))

        // Pushed (recorded) long after the rest: the most recent.
        let later = Int(time(nil)) + 7200
        let record = "# berth pull records 1\n\(later + 100) push \(repo.value) \(newest)\n"
        mkdir(fixture.layout.pullRecordsDirectory, 0o755)
        let file = fopen(fixture.layout.pullRecordsFile(named: "node-1-1-0.log"), "w")
        fputs(record, file)
        fclose(file)

        let policy = try RetentionPolicy(text: "team/** keep-tags=release-* keep-last=1 untagged=1d\n")
        let now = later + 3 * 86_400
        var options = Retention.Options()
        options.dryRun = true
        let dryRun = try Retention(store: fixture.store, policy: policy, options: options).run(now: now)
        let expected: Set<Digest> = [old, oldSignature, untagged, index, child]
        #expect(Set(dryRun.deletions.map(\.digest)) == expected, "\(dryRun.verdicts.map { "\($0.digest) \($0.deleted) \($0.reason)" })")
        #expect(dryRun.deletions.first { $0.digest == oldSignature }?.reason == "referrer of \(old), which goes")
        #expect(dryRun.deletions.first { $0.digest == child }?.reason == "child of index \(index), which goes")
        #expect(dryRun.verdicts.first { $0.digest == newSignature }?.reason == "referrer of \(newest), which is kept")
        #expect(dryRun.verdicts.first { $0.digest == released }?.reason == "tag release-1 matches keep-tags")
        #expect(dryRun.verdicts.first { $0.digest == newest }?.reason.hasPrefix("among the 1 most recently pushed") == true)
        #expect(dryRun.deletions.allSatisfy { $0.rule == "line 1: team/** keep-tags=release-* keep-last=1 untagged=1d" })
        #expect(try fixture.manifests.resolve(.tag(Tag("old")!), in: repo).digest == old, "a dry run changes nothing")

        options.dryRun = false
        let run = try Retention(store: fixture.store, policy: policy, options: options).run(now: now)
        #expect(Set(run.deletions.map(\.digest)) == expected)
        for digest in expected {
            #expect(throws: StorageError.self) { try fixture.manifests.resolve(.digest(digest), in: repo) }
        }
        for digest in [released, newest, newSignature, releasedSignature] {
            #expect(try fixture.manifests.resolve(.digest(digest), in: repo).digest == digest)
        }
        #expect(try fixture.store.referrers.referrers(of: old, in: repo).isEmpty)
        #expect(try fixture.store.referrers.referrers(of: newest, in: repo).map(\.digest) == [newSignature.description])
        // Each deletion is an event of the commit, as a DELETE by digest would queue.
        let deletedEvents = try fixture.store.events.queued(repo).flatMap(\.batch.events)
            .filter { $0.kind == .manifestDeleted }.compactMap(\.data.digest)
        #expect(Set(deletedEvents) == Set(expected.map(\.description)))
        // Nothing more to do the second time.
        #expect(try Retention(store: fixture.store, policy: policy, options: options).run(now: now).deletions.isEmpty)
    }

    @Test func nothingWithinTheGracePeriodNorWithAWriteOnceTagGoes() throws {
        var storeOptions = Store.Options()
        storeOptions.immutableTags = [ImmutableTagRule("team/** v*")!]
        let fixture = StoreFixture(options: storeOptions)
        defer { fixture.directory.remove() }
        let repo = fixture.name("team/app")
        let pinned = try fixture.manifests.put(try fixture.imageManifest(in: repo.value, seed: 1), contentType: nil,
                                               reference: .tag(Tag("v1")!), repository: repo).digest
        let fresh = try fixture.manifests.put(try fixture.imageManifest(in: repo.value, seed: 2), contentType: nil,
                                              reference: .tag(Tag("dev")!), repository: repo).digest
        let policy = try RetentionPolicy(text: "** keep-last=0\n")
        let young = try Retention(store: fixture.store, policy: policy).run()
        #expect(young.deletions.isEmpty)
        #expect(young.verdicts.first { $0.digest == fresh }?.reason.hasSuffix("within the grace period") == true)
        let old = try Retention(store: fixture.store, policy: policy).run(now: Int(time(nil)) + 7200)
        #expect(old.deletions.map(\.digest) == [fresh])
        #expect(old.verdicts.first { $0.digest == pinned }?.reason == "tag v1 is write-once (immutable_tags = team/** v*)")
    }
}
