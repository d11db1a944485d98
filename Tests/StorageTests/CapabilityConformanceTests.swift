import Mirror
import Storage
import Testing
import TestSupport

/// The storage conformance suite: the contract of each capability protocol, run against
/// every implementation (the disk store today; each decorator, such as a mirror or a
/// quota, adds itself to `implementations`). A factory returns two bundles over one
/// state, standing for two worker processes.
@Suite struct CapabilityConformanceTests {
    struct Implementation: CustomStringConvertible, Sendable {
        let description: String
        /// Two bundles over the same fresh state (as two processes would see it).
        let make: @Sendable (_ root: String) -> (Capabilities, Capabilities)
    }

    static let implementations: [Implementation] = [
        Implementation(description: "disk store") { root in
            (Store(root: root).capabilities, Store(root: root).capabilities)
        },
        // Repositories outside its namespace pass through the mirror untouched (its
        // upstream, a closed port, is never asked).
        Implementation(description: "pull-through mirror over the disk store") { root in
            func mirrored() -> Capabilities {
                var mirror = MirrorConfiguration(name: "mirror.test")
                mirror.upstream = "http://127.0.0.1:1"
                guard let decorator = try? PullThroughMirror(decorating: Store(root: root).capabilities, mirrors: [mirror],
                                                             defaultNamespace: nil) else { fatalError("mirror setup") }
                return decorator.capabilities
            }
            return (mirrored(), mirrored())
        },
        // Every repository metered by a rule with room to spare: the contracts hold
        // through the quota decorators (admission, releases) unchanged.
        Implementation(description: "byte quotas over the disk store") { root in
            func metered() -> Capabilities {
                var options = Store.Options()
                options.quotas = ["** 1GiB", "*/** 1GiB"].compactMap(QuotaRule.init)
                return Store(layout: StoreLayout(root: root), options: options).capabilities
            }
            return (metered(), metered())
        },
    ]

    /// One run of a contract over a fresh state.
    struct Subject {
        let directory = TemporaryDirectory(prefix: "berth-conformance")
        let first: Capabilities
        let second: Capabilities

        init(_ implementation: Implementation) {
            (first, second) = implementation.make(directory.path)
        }

        func name(_ text: String) -> RepositoryName {
            guard let name = RepositoryName(text) else { fatalError("bad test name \(text)") }
            return name
        }

        @discardableResult
        func pushBlob(_ bytes: [UInt8], to repository: String, via capabilities: Capabilities? = nil) throws -> Digest {
            let uploads = (capabilities ?? first).uploads
            let digest = ContentHasher.digest(of: bytes)
            let session = try uploads.start(repository: name(repository))
            _ = try uploads.complete(session.id, repository: name(repository), digest: digest, lastChunk: BufferByteSource(bytes))
            return digest
        }

        func manifest(in repository: String, seed: UInt8, subject: Digest? = nil) throws -> [UInt8] {
            let config = Array("{\"seed\":\(seed)}".utf8)
            let layer = [UInt8](repeating: seed, count: 300)
            let configDigest = try pushBlob(config, to: repository)
            let layerDigest = try pushBlob(layer, to: repository)
            let subjectField = subject.map { ",\"subject\":{\"mediaType\":\"\(MediaType.ociManifest)\",\"digest\":\"\($0)\",\"size\":1}" } ?? ""
            return Array("""
                {"schemaVersion":2,"mediaType":"\(MediaType.ociManifest)","artifactType":"application/x-test","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(configDigest)","size":\(config.count)},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(layerDigest)","size":300}]\(subjectField)}
                """.utf8)
        }

        func remove() { directory.remove() }
    }

    @Test(arguments: implementations)
    func ingesterCommitsOnlyVerifiedContentAndSessionsOutliveTheProcess(_ implementation: Implementation) throws {
        let subject = Subject(implementation)
        defer { subject.remove() }
        let repository = subject.name("team/app")
        let bytes = Array("conformance".utf8)
        let digest = ContentHasher.digest(of: bytes)
        let session = try subject.first.uploads.start(repository: repository)
        #expect(session.size == 0)
        #expect(try subject.first.uploads.append(session.id, repository: repository, from: BufferByteSource(Array(bytes[0..<4]))).size == 4)
        // Another process continues the session where the first left it.
        #expect(try subject.second.uploads.progress(session.id, repository: repository).size == 4)
        #expect(throws: StorageError.uploadRangeMismatch(currentSize: 4)) {
            try subject.second.uploads.append(session.id, repository: repository, startingAt: 2, expectedLength: nil,
                                              from: BufferByteSource([1]))
        }
        #expect(throws: StorageError.sizeMismatch(expected: 9, received: 3)) {
            try subject.second.uploads.append(session.id, repository: repository, startingAt: 4, expectedLength: 9,
                                              from: BufferByteSource([1, 2, 3]))
        }
        #expect(try subject.second.uploads.progress(session.id, repository: repository).size == 4, "failed appends change nothing")
        let wrong = ContentHasher.digest(of: [0])
        #expect(throws: StorageError.digestMismatch(expected: wrong, computed: digest)) {
            try subject.second.uploads.complete(session.id, repository: repository, digest: wrong,
                                                lastChunk: BufferByteSource(Array(bytes[4...])))
        }
        #expect(subject.first.blobs.size(of: wrong, in: repository) == nil)
        #expect(subject.first.blobs.size(of: digest, in: repository) == nil, "nothing visible before a verified commit")
        #expect(try subject.first.uploads.progress(session.id, repository: repository).size == 4, "as before the last chunk")
        #expect(try subject.second.uploads.complete(session.id, repository: repository, digest: digest,
                                                    lastChunk: BufferByteSource(Array(bytes[4...]))) == UInt64(bytes.count))
        #expect(subject.first.blobs.size(of: digest, in: repository) == UInt64(bytes.count))
        #expect(throws: StorageError.uploadUnknown(session.id.value)) {
            try subject.first.uploads.progress(session.id, repository: repository)
        }
        let cancelled = try subject.first.uploads.start(repository: repository)
        try subject.first.uploads.cancel(cancelled.id, repository: repository)
        #expect(throws: StorageError.uploadUnknown(cancelled.id.value)) {
            try subject.second.uploads.progress(cancelled.id, repository: repository)
        }
        #expect(throws: StorageError.uploadUnknown(session.id.value)) {
            try subject.first.uploads.progress(session.id, repository: subject.name("other"))
        }
    }

    @Test(arguments: implementations)
    func linkerMountsOnlyWhatTheSourceHoldsAndDeletesPerRepository(_ implementation: Implementation) throws {
        let subject = Subject(implementation)
        defer { subject.remove() }
        let (source, target, third) = (subject.name("src"), subject.name("dst"), subject.name("third"))
        let digest = try subject.pushBlob([7, 7, 7], to: "src")
        let absent = ContentHasher.digest(of: [8])
        #expect(try subject.first.links.mount(absent, from: source, into: target) == false)
        #expect(subject.first.blobs.size(of: absent, in: target) == nil)
        #expect(try subject.first.links.mount(digest, from: source, into: target))
        #expect(subject.second.blobs.size(of: digest, in: target) == 3)
        #expect(try subject.first.links.mountFromAnywhere(digest, into: third))
        #expect(try subject.first.links.mountFromAnywhere(absent, into: third) == false)
        try subject.second.links.delete(digest, from: target)
        #expect(subject.first.blobs.size(of: digest, in: target) == nil)
        #expect(subject.first.blobs.size(of: digest, in: source) == 3, "other repositories keep theirs")
        #expect(throws: StorageError.blobUnknown(digest)) { try subject.first.links.delete(digest, from: target) }
    }

    @Test(arguments: implementations)
    func manifestsResolveByTagAndDigestAndTagsMoveAndGo(_ implementation: Implementation) throws {
        let subject = Subject(implementation)
        defer { subject.remove() }
        let repository = subject.name("app")
        guard let latest = Reference("latest"), let stable = Reference("stable") else { return }
        let firstBody = try subject.manifest(in: "app", seed: 1)
        let pushed = try subject.first.manifests.put(firstBody, contentType: MediaType.ociManifest, reference: latest, repository: repository)
        #expect(pushed.digest == ContentHasher.digest(of: firstBody))
        _ = try subject.first.manifests.put(firstBody, contentType: nil, reference: stable, repository: repository)
        let resolved = try subject.second.manifests.resolve(latest, in: repository)
        #expect(resolved == ResolvedManifest(digest: pushed.digest, mediaType: MediaType.ociManifest, size: Int64(firstBody.count)))
        #expect(try subject.second.manifests.resolve(.digest(pushed.digest), in: repository).digest == pushed.digest)
        #expect(try subject.second.tags.tags(of: repository) == ["latest", "stable"])

        let secondBody = try subject.manifest(in: "app", seed: 2)
        let moved = try subject.second.manifests.put(secondBody, contentType: MediaType.ociManifest, reference: latest, repository: repository)
        #expect(try subject.first.manifests.resolve(latest, in: repository).digest == moved.digest)
        #expect(try subject.first.manifests.resolve(.digest(pushed.digest), in: repository).digest == pushed.digest,
                "a moved tag leaves the old manifest reachable by digest")

        try subject.first.manifests.delete(stable, in: repository)
        #expect(try subject.second.tags.tags(of: repository) == ["latest"])
        #expect(throws: StorageError.manifestUnknown(stable)) { try subject.second.manifests.resolve(stable, in: repository) }
        try subject.first.manifests.delete(.digest(moved.digest), in: repository)
        #expect(try subject.second.tags.tags(of: repository).isEmpty, "deleting by digest takes every tag naming it")
        #expect(throws: StorageError.manifestUnknown(.digest(moved.digest))) {
            try subject.second.manifests.delete(.digest(moved.digest), in: repository)
        }
        #expect(throws: StorageError.repositoryUnknown(subject.name("nobody"))) { try subject.first.tags.tags(of: subject.name("nobody")) }
    }

    @Test(arguments: implementations)
    func manifestsNamingMissingBlobsAreRefusedAndLeaveNothing(_ implementation: Implementation) throws {
        let subject = Subject(implementation)
        defer { subject.remove() }
        let body = try subject.manifest(in: "other", seed: 3)
        guard let tag = Reference("v1") else { return }
        #expect(throws: StorageError.self) {
            try subject.first.manifests.put(body, contentType: MediaType.ociManifest, reference: tag, repository: subject.name("app"))
        }
        #expect(throws: StorageError.manifestUnknown(tag)) { try subject.second.manifests.resolve(tag, in: subject.name("app")) }
    }

    @Test(arguments: implementations)
    func catalogListsEveryRepositoryNestedOnesIncludedSorted(_ implementation: Implementation) throws {
        let subject = Subject(implementation)
        defer { subject.remove() }
        for name in ["b", "a/nested/deep", "a", "org/blobs"] { try subject.pushBlob([1], to: name) }
        #expect(try subject.first.repositories.catalog().map(\.value) == ["a", "a/nested/deep", "b", "org/blobs"])
        try subject.pushBlob([2], to: "c", via: subject.second)
        #expect(try subject.first.repositories.catalog().map(\.value).contains("c"), "a repository another process created")
        #expect(subject.first.repositories.exists(subject.name("a/nested/deep")))
        #expect(!subject.first.repositories.exists(subject.name("a/nested")))
    }

    @Test(arguments: implementations)
    func referrersLiveAndDieWithTheManifestsNamingTheSubject(_ implementation: Implementation) throws {
        let subject = Subject(implementation)
        defer { subject.remove() }
        let repository = subject.name("app")
        guard let tag = Reference("v1") else { return }
        let base = try subject.manifest(in: "app", seed: 1)
        let baseDigest = try subject.first.manifests.put(base, contentType: nil, reference: tag, repository: repository).digest
        let signature = try subject.manifest(in: "app", seed: 2, subject: baseDigest)
        let signatureDigest = ContentHasher.digest(of: signature)
        _ = try subject.first.manifests.put(signature, contentType: nil, reference: .digest(signatureDigest), repository: repository)
        let listed = try subject.second.referrers.referrers(of: baseDigest, in: repository)
        #expect(listed.map(\.digest) == [signatureDigest.description])
        #expect(listed.first?.artifactType == "application/x-test")
        #expect(try subject.second.referrers.referrers(of: signatureDigest, in: repository).isEmpty)
        try subject.second.manifests.delete(.digest(signatureDigest), in: repository)
        #expect(try subject.first.referrers.referrers(of: baseDigest, in: repository).isEmpty)
    }
}
