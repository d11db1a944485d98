import Locks
import Storage
import Testing

/// Write-once tags: the rule syntax, what they refuse and allow, and that the check runs
/// inside the commit (racing pushes from several threads and two store instances, as two
/// worker processes are, leave exactly one winner).
@Suite struct ImmutableTagTests {
    static func rules(_ lines: String...) -> Store.Options {
        var options = Store.Options()
        options.immutableTags = lines.compactMap(ImmutableTagRule.init)
        return options
    }

    @Test func rulesParseTwoPatternsAndRefuseAnythingElse() throws {
        let rule = try #require(ImmutableTagRule("release/**  v*"))
        #expect(rule.description == "release/** v*")
        #expect(rule.matches(RepositoryName("release/team/app")!, Tag("v1.2")!))
        #expect(!rule.matches(RepositoryName("release/app")!, Tag("latest")!))
        #expect(!rule.matches(RepositoryName("other/app")!, Tag("v1")!))
        #expect(try #require(ImmutableTagRule("* *")).matches(RepositoryName("app")!, Tag("x")!))
        #expect(!(try #require(ImmutableTagRule("* *")).matches(RepositoryName("team/app")!, Tag("x")!)))
        for bad in ["", "release/**", "a b c", "team//x v*", "team v/1", "team v\"1"] {
            #expect(ImmutableTagRule(bad) == nil, "\(bad)")
        }
    }

    @Test func aWriteOnceTagTakesTheSameDigestAgainButNeverAnother() throws {
        let fixture = StoreFixture(options: Self.rules("app v*"))
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let first = try fixture.imageManifest(in: "app", seed: 1)
        let second = try fixture.imageManifest(in: "app", seed: 2)
        let v1 = Tag("v1")!
        let pushed = try fixture.manifests.put(first, contentType: nil, reference: .tag(v1), repository: repo)
        _ = try fixture.manifests.put(first, contentType: nil, reference: .tag(v1), repository: repo)
        #expect(throws: StorageError.tagImmutable(v1, repository: repo, rule: "app v*")) {
            try fixture.manifests.put(second, contentType: nil, reference: .tag(v1), repository: repo)
        }
        // Through `?tag=` as well, and the whole push is refused (no other tag moves).
        let secondDigest = ContentHasher.digest(of: second)
        #expect(throws: StorageError.tagImmutable(v1, repository: repo, rule: "app v*")) {
            try fixture.manifests.put(second, contentType: nil, reference: .digest(secondDigest), repository: repo,
                                      tags: [Tag("latest")!, v1])
        }
        #expect(try fixture.manifests.resolve(.tag(v1), in: repo).digest == pushed.digest)
        #expect(try fixture.manifests.tags(of: repo) == ["v1"])
        // Tags no rule covers move freely.
        _ = try fixture.manifests.put(first, contentType: nil, reference: .tag(Tag("latest")!), repository: repo)
        _ = try fixture.manifests.put(second, contentType: nil, reference: .tag(Tag("latest")!), repository: repo)
        #expect(try fixture.manifests.resolve(.tag(Tag("latest")!), in: repo).digest == secondDigest)
    }

    @Test func aWriteOnceTagIsNotDeletedAloneOrWithItsManifest() throws {
        let fixture = StoreFixture(options: Self.rules("team/** *.*"))
        defer { fixture.directory.remove() }
        let repo = fixture.name("team/app")
        let body = try fixture.imageManifest(in: "team/app")
        let pushed = try fixture.manifests.put(body, contentType: nil, reference: .tag(Tag("1.0")!), repository: repo,
                                               tags: [Tag("edge")!])
        #expect(throws: StorageError.tagImmutable(Tag("1.0")!, repository: repo, rule: "team/** *.*")) {
            try fixture.manifests.delete(.tag(Tag("1.0")!), in: repo)
        }
        #expect(throws: StorageError.tagImmutable(Tag("1.0")!, repository: repo, rule: "team/** *.*")) {
            try fixture.manifests.delete(.digest(pushed.digest), in: repo)
        }
        try fixture.manifests.delete(.tag(Tag("edge")!), in: repo)
        #expect(try fixture.manifests.tags(of: repo) == ["1.0"])
        // A manifest no write-once tag names can still be deleted by digest.
        let other = try fixture.imageManifest(in: "team/app", seed: 9)
        let untagged = try fixture.manifests.put(other, contentType: nil, reference: .tag(Tag("edge")!), repository: repo)
        try fixture.manifests.delete(.digest(untagged.digest), in: repo)
    }

    @Test func racingPushesToOneWriteOnceTagHaveExactlyOneWinner() throws {
        let fixture = StoreFixture(options: Self.rules("app release"))
        defer { fixture.directory.remove() }
        let repo = fixture.name("app")
        let bodies = try (0..<6).map { try fixture.imageManifest(in: "app", seed: UInt64(10 + $0)) }
        // Half the threads on this store, half on another instance (another worker process).
        let stores = [fixture.manifests, Store(layout: fixture.layout, options: Self.rules("app release")).manifests]
        let outcomes = Locked<[Int: String]>([:])
        onThreads(bodies.count) { thread in
            let outcome: String
            do {
                _ = try stores[thread % 2].put(bodies[thread], contentType: nil, reference: .tag(Tag("release")!), repository: repo)
                outcome = "won"
            } catch StorageError.tagImmutable {
                outcome = "refused"
            } catch {
                outcome = "\(error)"
            }
            outcomes.withLock { $0[thread] = outcome }
        }
        let all = outcomes.withLock { $0 }
        let winners = all.filter { $0.value == "won" }.map(\.key)
        #expect(winners.count == 1, "\(all)")
        #expect(all.values.allSatisfy { $0 == "won" || $0 == "refused" }, "\(all)")
        let winner = try #require(winners.first)
        #expect(try fixture.otherProcess().manifests.resolve(.tag(Tag("release")!), in: repo).digest
                == ContentHasher.digest(of: bodies[winner]))
    }
}
