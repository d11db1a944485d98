#if canImport(Glibc)
import Glibc
#endif
import Locks
import Storage
import Testing
import TestSupport

/// Byte quotas: the rule and size syntax, unique-byte accounting across the repositories
/// a rule matches, refusals before anything is stored, releases, reconciliation with the
/// disk, and racing pushes from threads and two store instances never passing a limit.
@Suite struct QuotaTests {
    static func fixture(_ rules: String..., mirrored: [String] = []) -> StoreFixture {
        var options = Store.Options()
        options.quotas = rules.compactMap(QuotaRule.init)
        options.unmeteredNamespaces = mirrored
        return StoreFixture(options: options)
    }

    static func isQuotaRefusal(_ error: any Error) -> Bool {
        guard let error = error as? StorageError, case .quotaExceeded = error else { return false }
        return true
    }

    /// Uploads `bytes` into `repository` through the metered capabilities, in one PATCH
    /// of known length (or streamed, `chunked`) and an empty PUT.
    @discardableResult
    static func push(_ bytes: [UInt8], to repository: String, in store: Store, chunked: Bool = false) throws -> Digest {
        let caps = store.capabilities
        let name = RepositoryName(repository)!
        let digest = ContentHasher.digest(of: bytes)
        let session = try caps.uploads.start(repository: name)
        _ = try caps.uploads.append(session.id, repository: name, startingAt: 0, expectedLength: chunked ? nil : UInt64(bytes.count),
                                    from: BufferByteSource(bytes))
        _ = try caps.uploads.complete(session.id, repository: name, digest: digest, lastChunk: nil)
        return digest
    }

    static func used(_ store: Store, _ index: Int = 0) throws -> UInt64 { try store.quotas.usage()[index].used }

    @Test func sizesParseWithBinaryAndDecimalUnitsAndNeverTrap() {
        #expect(ByteSize.parse("50GiB") == 50 << 30)
        #expect(ByteSize.parse("1.5gib") == 3 << 29)
        #expect(ByteSize.parse("10KB") == 10_000)
        #expect(ByteSize.parse("2MB") == 2_000_000)
        #expect(ByteSize.parse("1TiB") == 1 << 40)
        #expect(ByteSize.parse("3TB") == 3_000_000_000_000)
        #expect(ByteSize.parse("512") == 512)
        #expect(ByteSize.parse("512B") == 512)
        #expect(ByteSize.parse("0") == 0)
        for bad in ["", "GiB", "-1GiB", "1..5GiB", "1.GiB", ".5GiB", "1 GiB", "1XB", "99999999999999999999999", "16777216TiB",
                    "18446744073709551616", "1.9999999999999999999GiB", "+5MB", "5e3"] {
            #expect(ByteSize.parse(bad) == nil, "\(bad)")
        }
        #expect(ByteSize.format(50 << 30) == "50GiB")
        #expect(ByteSize.format(1_000_000) == "1MB")
        #expect(ByteSize.format(1_000_001) == "1000001")
        #expect(ByteSize.human(1536) == "1.5 KiB")
    }

    @Test func rulesParseAPatternAndASize() throws {
        let rule = try #require(QuotaRule("team/**\t50GiB"))
        #expect(rule.description == "team/** 50GiB")
        #expect(rule.limit == 50 << 30)
        #expect(rule.repository.matches(RepositoryName("team/a/b")!))
        #expect(rule.account == QuotaRule("team/** 1KB")?.account)
        for bad in ["", "team/**", "team/** 5GiB extra", "team//x 5GiB", "team/** lots"] {
            #expect(QuotaRule(bad) == nil, "\(bad)")
        }
    }

    @Test func aBlobInSeveralRepositoriesOfARuleCountsOnce() throws {
        let fixture = Self.fixture("team/** 10KB")
        defer { fixture.directory.remove() }
        var random = SeededBytes(seed: 7)
        let layer = random.next(3000)
        let digest = try Self.push(layer, to: "team/a", in: fixture.store)
        #expect(try Self.used(fixture.store) == 3000)
        // Mounted, pushed again and uploaded into another repository of the rule: once.
        #expect(try fixture.store.capabilities.links.mount(digest, from: fixture.name("team/a"), into: fixture.name("team/b")))
        try Self.push(layer, to: "team/c", in: fixture.store)
        try Self.push(layer, to: "team/a", in: fixture.store)
        let usage = try #require(try fixture.store.quotas.usage().first)
        #expect(usage.used == 3000)
        #expect(usage.blobs == 1)
        #expect(usage.repositories.map(\.value) == ["team/a", "team/b", "team/c"])
        // Outside the rule nothing is counted.
        try Self.push(random.next(9000), to: "other/x", in: fixture.store)
        #expect(try Self.used(fixture.store) == 3000)
        // Another process's view agrees.
        var options = Store.Options()
        options.quotas = fixture.store.options.quotas
        #expect(try Self.used(Store(layout: fixture.layout, options: options)) == 3000)
    }

    @Test func anUploadOverTheLimitIsRefusedBeforeItsBytesAreStored() throws {
        let fixture = Self.fixture("team/** 5000")
        defer { fixture.directory.remove() }
        var random = SeededBytes(seed: 8)
        try Self.push(random.next(3000), to: "team/a", in: fixture.store)
        let caps = fixture.store.capabilities
        let repo = fixture.name("team/a")
        let big = random.next(3000)
        // A PATCH of known length, a streamed PATCH, a monolithic PUT.
        for chunked in [false, true] {
            #expect { try Self.push(big, to: "team/a", in: fixture.store, chunked: chunked) } throws: { Self.isQuotaRefusal($0) }
        }
        let session = try caps.uploads.start(repository: repo)
        #expect {
            try caps.uploads.complete(session.id, repository: repo, digest: ContentHasher.digest(of: big), lastChunk: BufferByteSource(big))
        } throws: { Self.isQuotaRefusal($0) }
        // Refused sessions are cancelled; the blob is nowhere.
        #expect(throws: StorageError.uploadUnknown(session.id.value)) { try caps.uploads.progress(session.id, repository: repo) }
        #expect(fixture.blobs.size(of: ContentHasher.digest(of: big), in: repo) == nil)
        #expect(!fileExists(fixture.layout.sharedBlobFile(ContentHasher.digest(of: big))))
        #expect(try Self.used(fixture.store) == 3000)
        // A mount from outside the rule is new bytes for it: refused too.
        let outside = try Self.push(big, to: "other/x", in: fixture.store)
        #expect { try caps.links.mount(outside, from: fixture.name("other/x"), into: repo) } throws: { Self.isQuotaRefusal($0) }
        #expect(fixture.blobs.size(of: outside, in: repo) == nil)
        // What fits still goes in; then a full quota refuses the POST itself.
        try Self.push(random.next(2000), to: "team/b", in: fixture.store)
        #expect(try Self.used(fixture.store) == 5000)
        #expect { try caps.uploads.start(repository: repo) } throws: { error in
            guard let error = error as? StorageError, case .quotaExceeded(let rule, let used, let adding, let limit) = error else { return false }
            return rule == "team/** 5KB" && used == 5000 && adding == 0 && limit == 5000
        }
    }

    @Test func aBlobTheRuleCountsAlreadyGoesIntoANearlyFullQuotaByMountOrWholeBodyPut() throws {
        let fixture = Self.fixture("team/** 5000")
        defer { fixture.directory.remove() }
        var random = SeededBytes(seed: 12)
        let layer = random.next(3000)
        let digest = try Self.push(layer, to: "team/a", in: fixture.store)
        let caps = fixture.store.capabilities
        // A PUT with the whole body streamed (python-dxf's way): the digest is known, it costs nothing.
        let repo = fixture.name("team/b")
        let session = try caps.uploads.start(repository: repo)
        _ = try caps.uploads.complete(session.id, repository: repo, digest: digest, lastChunk: TricklingByteSource(layer, step: 700))
        #expect(try caps.links.mount(digest, from: fixture.name("team/a"), into: fixture.name("team/c")))
        #expect(try Self.used(fixture.store) == 3000)
        #expect(fixture.blobs.size(of: digest, in: repo) == 3000)
    }

    @Test func aManifestPushCountsItsBytesAndIsRefusedWhenTheyDoNotFit() throws {
        let fixture = Self.fixture("app 2600")
        defer { fixture.directory.remove() }
        // The config and two 1000-byte layers fit; the manifest on top does not.
        let body = try fixture.imageManifest(in: "app")
        let caps = fixture.store.capabilities
        let repo = fixture.name("app")
        // Pushed unmetered by the fixture: count them as a reconcile would.
        _ = try fixture.store.quotas.reconcile()
        #expect { try caps.manifests.put(body, contentType: nil, reference: .tag(Tag("v1")!), repository: repo) } throws: {
            Self.isQuotaRefusal($0)
        }
        #expect(throws: StorageError.manifestUnknown(.tag(Tag("v1")!))) { try caps.manifests.resolve(.tag(Tag("v1")!), in: repo) }
        // With room, the push goes through, and pushing it again costs nothing.
        var options = Store.Options()
        options.quotas = [QuotaRule("app 10KB")!]
        let roomier = Store(layout: fixture.layout, options: options)
        let before = try Self.used(roomier)
        let pushed = try roomier.capabilities.manifests.put(body, contentType: nil, reference: .tag(Tag("v1")!), repository: repo)
        #expect(try Self.used(roomier) == before + UInt64(body.count))
        _ = try roomier.capabilities.manifests.put(body, contentType: nil, reference: .tag(Tag("v2")!), repository: repo)
        #expect(try Self.used(roomier) == before + UInt64(body.count))
        #expect(try roomier.capabilities.manifests.resolve(.tag(Tag("v2")!), in: repo).digest == pushed.digest)
    }

    @Test func deletingABlobReleasesItOnceNoRepositoryOfTheRuleHoldsIt() throws {
        let fixture = Self.fixture("team/** 1MB", "team/a 1MB")
        defer { fixture.directory.remove() }
        var random = SeededBytes(seed: 9)
        let digest = try Self.push(random.next(4000), to: "team/a", in: fixture.store)
        let links = fixture.store.capabilities.links
        #expect(try links.mount(digest, from: fixture.name("team/a"), into: fixture.name("team/b")))
        try links.delete(digest, from: fixture.name("team/a"))
        let afterFirst = try fixture.store.quotas.usage()
        #expect(afterFirst.map(\.used) == [4000, 0])  // team/b still holds it for team/**
        try links.delete(digest, from: fixture.name("team/b"))
        #expect(try fixture.store.quotas.usage().map(\.used) == [0, 0])
    }

    @Test func reconcilingRecomputesFromDiskAndReportsTheDrift() throws {
        let fixture = Self.fixture("team/** 1MB", mirrored: ["hub"])
        defer { fixture.directory.remove() }
        var random = SeededBytes(seed: 10)
        try Self.push(random.next(1000), to: "team/a", in: fixture.store)
        // Unmetered writes (another tool, a crash between link and record), a mirror's blobs.
        try fixture.pushBlob(random.next(500), to: "team/b")
        try fixture.pushBlob(random.next(700), to: "hub/team")
        let drift = try #require(try fixture.store.quotas.reconcile().first)
        #expect(drift.recorded == 1000)
        #expect(drift.actual == 1500)
        #expect(drift.uncounted == 1)
        #expect(try Self.used(fixture.store) == 1500)
        #expect(try fixture.store.quotas.reconcile().allSatisfy(\.isEmpty))
        // A line cut off by a crash is dropped, and the next record goes after the last whole one.
        let ledger = fixture.layout.quotaLedgerFile(try #require(fixture.store.quotas.rules.first).account)
        let handle = try #require(fopen(ledger, "a"))
        fputs("+ sha256:0123", handle)
        fclose(handle)
        #expect(try Self.used(fixture.store) == 1500)
        try Self.push(random.next(100), to: "team/c", in: fixture.store)
        #expect(try Self.used(fixture.store) == 1600)
        #expect(try fixture.store.quotas.reconcile().allSatisfy(\.isEmpty))
    }

    @Test func racingPushesFromThreadsAndTwoProcessesNeverPassTheLimit() throws {
        let fixture = Self.fixture("team/** 10500")
        defer { fixture.directory.remove() }
        let second = Store(layout: fixture.layout, options: fixture.store.options)
        let stores = [fixture.store, second]
        let accepted = Locked(0)
        let refused = Locked(0)
        onThreads(16) { thread in
            var random = SeededBytes(seed: UInt64(100 + thread))
            let store = stores[thread % 2]
            do {
                try Self.push(random.next(1000), to: "team/r\(thread % 4)", in: store, chunked: thread % 3 == 0)
                accepted.withLock { $0 += 1 }
            } catch {
                if Self.isQuotaRefusal(error) { refused.withLock { $0 += 1 } }
            }
        }
        #expect(accepted.withLock { $0 } == 10)
        #expect(refused.withLock { $0 } == 6)
        #expect(try Self.used(fixture.store) == 10_000)
        #expect(try fixture.store.quotas.reconcile().allSatisfy(\.isEmpty))
    }
}

private func fileExists(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0
}
