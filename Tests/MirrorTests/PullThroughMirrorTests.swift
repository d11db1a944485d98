#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Locks
import Mirror
@testable import Storage
import Testing
import TestSupport

/// The decorator over a real disk store, with an upstream that cannot be reached (a
/// closed port): what it does with what is stored, and how it fails without it.
@Suite struct PullThroughMirrorTests {
    struct Subject {
        let directory = TemporaryDirectory(prefix: "berth-mirror")
        let store: Store
        let mirror: PullThroughMirror
        let events = Locked<[String]>([])

        init(tagTTL: Int = 300) throws {
            store = Store(root: directory.path)
            var configuration = MirrorConfiguration(name: "hub")
            configuration.upstream = "http://127.0.0.1:1"
            configuration.tagTTL = tagTTL
            let events = self.events
            mirror = try PullThroughMirror(decorating: store.capabilities, mirrors: [configuration], defaultNamespace: "hub",
                                           onEvent: { name, _ in events.withLock { $0.append(name) } })
        }

        func name(_ text: String) -> RepositoryName {
            guard let name = RepositoryName(text) else { fatalError("bad test name \(text)") }
            return name
        }

        /// A manifest stored as the mirror stores what it fetched (its layer not stored).
        func storeFetched(tag: String, in repository: String) throws -> Digest {
            let layer = ContentHasher.digest(of: [1, 2, 3])
            let body = Array("""
                {"schemaVersion":2,"mediaType":"\(MediaType.ociManifest)","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(layer)","size":3},"layers":[]}
                """.utf8)
            guard let tag = Tag(tag) else { fatalError("bad tag") }
            return try mirror.putFetched(body, contentType: MediaType.ociManifest, reference: .tag(tag), repository: name(repository)).digest
        }
    }

    @Test func aStoredTagIsServedWhileTheUpstreamIsDownAndTheStaleServeIsReported() throws {
        let subject = try Subject(tagTTL: 0)
        defer { subject.directory.remove() }
        let digest = try subject.storeFetched(tag: "v1", in: "hub/team/app")
        let repository = subject.name("hub/team/app")
        #expect(subject.mirror.needsUpstream(.tag(Tag("v1")!), in: repository), "tag_ttl 0: every tag is revalidated")
        #expect(!subject.mirror.needsUpstream(.digest(digest), in: repository), "a stored digest never is")
        #expect(try subject.mirror.resolve(.tag(Tag("v1")!), in: repository).digest == digest)
        #expect(subject.events.withLock { $0 }.contains("mirror_stale"))
        #expect(try subject.mirror.resolve(.digest(digest), in: repository).digest == digest)
    }

    @Test func whatWasNeverFetchedFailsAsUnavailableNamingTheMirror() throws {
        let subject = try Subject()
        defer { subject.directory.remove() }
        let repository = subject.name("hub/team/app")
        #expect(subject.mirror.needsUpstream(.tag(Tag("v1")!), in: repository))
        #expect {
            try subject.mirror.resolve(.tag(Tag("v1")!), in: repository)
        } throws: { error in
            guard let error = error as? StorageError, case .upstreamUnavailable(let namespace, _) = error else { return false }
            return namespace == "hub"
        }
        let digest = ContentHasher.digest(of: [9])
        #expect(throws: StorageError.self) { try subject.mirror.fetch(digest, in: repository) }
        #expect(subject.store.blobs.size(of: digest, in: repository) == nil)
    }

    @Test func pushesAndDeletesInTheNamespaceAreRefusedAndOthersPassThrough() throws {
        let subject = try Subject()
        defer { subject.directory.remove() }
        let digest = try subject.storeFetched(tag: "v1", in: "hub/team/app")
        let body = Array("{}".utf8)
        #expect(throws: StorageError.mirrored(subject.name("hub/team/app"))) {
            try subject.mirror.put(body, contentType: nil, reference: .tag(Tag("v2")!), repository: subject.name("hub/team/app"), tags: [])
        }
        #expect(throws: StorageError.mirrored(subject.name("hub/team/app"))) {
            try subject.mirror.delete(.digest(digest), in: subject.name("hub/team/app"))
        }
        // Outside the namespace: the store's own answers, no upstream asked.
        let hosted = subject.name("team/app")
        #expect(!subject.mirror.needsUpstream(.tag(Tag("v1")!), in: hosted))
        #expect(throws: StorageError.manifestUnknown(.tag(Tag("v1")!))) { try subject.mirror.resolve(.tag(Tag("v1")!), in: hosted) }
        #expect(subject.events.withLock { $0 }.isEmpty)
        #expect(subject.mirror.isMirrored(subject.name("hub/x")) && !subject.mirror.isMirrored(subject.name("hubx/y")))
    }

    @Test func namespacesAreNamedByMirrorOrUpstreamHost() throws {
        let subject = try Subject()
        defer { subject.directory.remove() }
        #expect(subject.mirror.namespace(named: "hub") == "hub")
        #expect(subject.mirror.namespace(named: "127.0.0.1:1") == "hub")
        #expect(subject.mirror.namespace(named: "docker.io") == nil)
        #expect(subject.mirror.defaultNamespace == "hub" && subject.mirror.namespaces == ["hub"])
    }
}

/// An upstream that answers every request 429 with `Retry-After: 60` (a Python HTTP server
/// on loopback, which logs each request it gets).
@Suite struct RetryAfterTests {
    static let server = """
        import http.server, sys
        class H(http.server.BaseHTTPRequestHandler):
            def answer(self):
                self.send_response(429)
                self.send_header("Retry-After", "60")
                self.send_header("Content-Length", "0")
                self.end_headers()
            do_GET = answer
            do_HEAD = answer
        http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
        """

    @Test func aRateLimitedUpstreamIsLeftAloneForItsRetryAfter() throws {
        let directory = TemporaryDirectory(prefix: "berth-retry-after")
        defer { directory.remove() }
        let log = "\(directory.path)/upstream.log"
        let upstream = try PythonUpstream(script: Self.server, log: log)
        defer { upstream.stop() }
        var configuration = MirrorConfiguration(name: "hub")
        configuration.upstream = upstream.url
        let store = Store(root: "\(directory.path)/store")
        let mirror = try PullThroughMirror(decorating: store.capabilities, mirrors: [configuration], defaultNamespace: nil)
        let repository = try #require(RepositoryName("hub/team/app"))
        let asked = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").components(separatedBy: "\" 429 ").count - 1
        for attempt in 1...3 {
            #expect(throws: StorageError.self, "attempt \(attempt)") { try mirror.resolve(.tag(Tag("v1")!), in: repository) }
        }
        let after = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").components(separatedBy: "\" 429 ").count - 1
        #expect(after - asked == 1, "the upstream was asked \(after - asked) times")
    }
}

/// A blob fetched and stored whose fetch event cannot be written is still a stored blob:
/// its client gets every byte, and the mirror reports the event's failure, not a failed
/// fetch (a Python HTTP server on loopback is the upstream).
@Suite struct FetchEventFailureTests {
    static let server = """
        import http.server, sys
        body = open(sys.argv[2], "rb").read()
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
        """

    /// Every call goes to the store's manifests, except that recording a fetch fails.
    struct FailingRecords: ManifestServiceDecorator {
        let inner: any ManifestService
        func recordFetched(blob digest: Digest, size: UInt64, in repository: RepositoryName) throws(StorageError) {
            throw .io(operation: "write", path: "events outbox", errno: ENOSPC)
        }
    }

    @Test func aStoredBlobWhoseEventFailsIsDeliveredAndReportedAsSuch() throws {
        let directory = TemporaryDirectory(prefix: "berth-fetch-event")
        defer { directory.remove() }
        var random = SeededBytes(seed: 52)
        let bytes = random.next((3 << 20) + 5)
        let blobFile = "\(directory.path)/blob"
        try Data(bytes).write(to: URL(fileURLWithPath: blobFile))
        let upstream = try PythonUpstream(script: Self.server, arguments: [blobFile], log: "\(directory.path)/upstream.log")
        defer { upstream.stop() }
        var configuration = MirrorConfiguration(name: "hub")
        configuration.upstream = upstream.url
        let store = Store(root: "\(directory.path)/store")
        var capabilities = store.capabilities
        capabilities.manifests = FailingRecords(inner: store.capabilities.manifests)
        let events = Locked<[String]>([])
        let mirror = try PullThroughMirror(decorating: capabilities, mirrors: [configuration], defaultNamespace: nil,
                                           onEvent: { name, _ in events.withLock { $0.append(name) } })
        let repository = try #require(RepositoryName("hub/team/app"))
        let digest = ContentHasher.digest(of: bytes)
        let incoming = try #require(try mirror.fetch(digest, in: repository))
        var received: [UInt8] = []
        try incoming.deliver { received.append(contentsOf: $0); return true }
        #expect(received == bytes)
        #expect(store.blobs.size(of: digest, in: repository) == UInt64(bytes.count))
        let seen = events.withLock { $0 }
        #expect(seen.contains("mirror_stored") && seen.contains("mirror_event_failed"), "\(seen)")
        #expect(!seen.contains("mirror_fetch_failed"), "\(seen)")
    }
}

/// A Python HTTP server on a free loopback port (its script gets the port, then
/// `arguments`), up once it answers.
struct PythonUpstream {
    let url: String
    private let process: ChildProcess

    init(script: String, arguments: [String] = [], log: String) throws {
        let port = try LoopbackPort.free()
        url = "http://127.0.0.1:\(port)"
        process = try Shell.start("/usr/bin/python3", ["-c", script, String(port)] + arguments, logFile: log)
        var waited = 0
        while !Shell.run("curl", ["-s", "-o", "/dev/null", "\(url)/"]).succeeded, waited < 200 {
            usleep(25_000)
            waited += 1
        }
    }

    func stop() { Shell.stop(process, grace: 2) }
}
