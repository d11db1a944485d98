import Registry
import Storage
import Testing
import TestSupport

/// How the registry routes and answers around a pull-through mirror, over a stand-in for
/// the mirror (the real one, with upstreams, is tested in MirrorTests and the integration tests).
@Suite struct MirrorRoutingTests {
    /// Namespace `hub` (upstream host `hub.example.com`), the default mirror; every blob is
    /// five bytes upstream, every manifest needs the upstream.
    final class StandIn: PullThrough {
        let namespaces = ["hub"]
        let defaultNamespace: String? = "hub"
        static let bytes: [UInt8] = Array("hello".utf8)

        func namespace(named value: String) -> String? { value == "hub" || value == "hub.example.com" ? "hub" : nil }
        func needsUpstream(_ reference: Reference, in repository: RepositoryName) -> Bool { isMirrored(repository) }
        func upstreamSize(of digest: Digest, in repository: RepositoryName) throws(StorageError) -> UInt64? { 5 }
        func fetch(_ digest: Digest, in repository: RepositoryName) throws(StorageError) -> (any IncomingBlob)? {
            Incoming(digest: digest)
        }
    }

    final class Incoming: IncomingBlob {
        let digest: Digest
        let size: UInt64? = 5
        init(digest: Digest) { self.digest = digest }
        func deliver(to sink: any BodySink) throws(StorageError) {
            _ = StandIn.bytes.withUnsafeBytes { sink.write($0) }
        }
    }

    struct Fixture {
        let directory = TemporaryDirectory(prefix: "berth-mirror-routing")
        let registry: Registry

        init(policy: AccessPolicy? = nil) {
            var capabilities = Store(root: directory.path).capabilities
            capabilities.pullThrough = StandIn()
            var options = Registry.Options()
            options.policy = policy
            registry = Registry(capabilities: capabilities, options: options)
        }

        func send(_ method: String, _ uri: String, mayWait: Bool = true, body: [UInt8] = [], user: String? = nil) -> RegistryResponse {
            var headers = body.isEmpty ? [:] : ["content-length": String(body.count)]
            if let user { headers["remote-user"] = user }
            var request = RegistryRequest(method: method, uri: uri, headers: headers, body: BufferByteSource(body))
            request.mayWait = mayWait
            return registry.handle(request)
        }
    }

    static let digest = ContentHasher.digest(of: StandIn.bytes)

    @Test func namespaceParameterPrefixesTheNameAndIsAnswered() {
        let fixture = Fixture()
        defer { fixture.directory.remove() }
        for ns in ["hub", "hub.example.com"] {
            let answer = fixture.send("GET", "/v2/team/app/manifests/v1?ns=\(ns)")
            #expect(answer.repository == "hub/team/app")
            #expect(answer.header("OCI-Namespace") == "hub")
            #expect(answer.status == 404, "the stand-in stores nothing")
        }
        let unknown = fixture.send("GET", "/v2/team/app/manifests/v1?ns=quay.io")
        #expect(unknown.repository == "hub/team/app", "an unknown ns is ignored; the default mirror takes the unhosted name")
        #expect(unknown.header("OCI-Namespace") == nil)
    }

    @Test func missesMoveOffTheAcceptThreadsAndHostedPullsDoNot() {
        let fixture = Fixture()
        defer { fixture.directory.remove() }
        #expect(fixture.send("GET", "/v2/hub/team/app/manifests/v1", mayWait: false).needsWaitingThread)
        #expect(fixture.send("GET", "/v2/hub/team/app/blobs/\(Self.digest)", mayWait: false).needsWaitingThread)
        #expect(fixture.send("HEAD", "/v2/hub/team/app/blobs/\(Self.digest)", mayWait: false).needsWaitingThread)
        let pushed = fixture.send("POST", "/v2/team/app/blobs/uploads/?digest=\(Self.digest)", body: StandIn.bytes)
        #expect(pushed.status == 201, "team/app is hosted now")
        let other = ContentHasher.digest(of: [1])
        let hosted = fixture.send("GET", "/v2/team/app/blobs/\(other)", mayWait: false)
        #expect(!hosted.needsWaitingThread && hosted.status == 404)
    }

    @Test func aBlobMissStreamsWithItsLengthAndDigest() throws {
        let fixture = Fixture()
        defer { fixture.directory.remove() }
        let answer = fixture.send("GET", "/v2/hub/team/app/blobs/\(Self.digest)")
        #expect(answer.status == 200 && !answer.needsWaitingThread)
        #expect(answer.header("Content-Length") == "5" && answer.header("Docker-Content-Digest") == Self.digest.description)
        #expect(answer.header("X-Accel-Buffering") == "no" && answer.header("X-Accel-Redirect") == nil)
        let stream = try #require(answer.stream)
        var received: [UInt8] = []
        #expect(stream(ClosureBodySink { received.append(contentsOf: $0); return true }) == nil)
        #expect(received == StandIn.bytes)
        let head = fixture.send("HEAD", "/v2/hub/team/app/blobs/\(Self.digest)")
        #expect(head.status == 200 && head.header("Content-Length") == "5" && head.stream == nil)
    }

    @Test func writesIntoTheNamespaceAreDeniedWithTheOCIBody() {
        let fixture = Fixture()
        defer { fixture.directory.remove() }
        for (method, uri) in [("POST", "/v2/hub/team/app/blobs/uploads/"), ("POST", "/v2/team/app/blobs/uploads/?ns=hub"),
                              ("PUT", "/v2/hub/team/app/manifests/v1"), ("DELETE", "/v2/hub/team/app/manifests/\(Self.digest)"),
                              ("DELETE", "/v2/hub/team/app/blobs/\(Self.digest)"),
                              ("POST", "/v2/hub/team/app/blobs/uploads/?mount=\(Self.digest)&from=team/app")] {
            let answer = fixture.send(method, uri)
            #expect(answer.status == 403, "\(method) \(uri)")
            #expect(String(decoding: answer.body, as: UTF8.self).contains("\"code\":\"DENIED\""), "\(method) \(uri)")
        }
    }

    @Test func theDefaultMirrorTakesReadsOfUnhostedNamesOnly() {
        let fixture = Fixture()
        defer { fixture.directory.remove() }
        #expect(fixture.send("GET", "/v2/library/alpine/manifests/latest").repository == "hub/library/alpine")
        // A push to a new name is hosted: it creates the repository, and reads stay there.
        let started = fixture.send("POST", "/v2/team/new/blobs/uploads/?digest=\(Self.digest)", body: StandIn.bytes)
        #expect(started.status == 201 && started.repository == "team/new")
        let read = fixture.send("GET", "/v2/team/new/manifests/latest")
        #expect(read.repository == "team/new" && read.status == 404)
    }

    /// The policy judges a routed read by the name it is stored under (`hub/…`), whether
    /// `?ns=`, the prefix or `mirror_default` routed it; and `mirror_default` never tells
    /// whether a hosted repository the caller may not read exists.
    @Test func thePolicySeesTheRoutedNameAndTheDefaultMirrorHidesUnreadableHostedNames() throws {
        let policy = try AccessPolicy(text: """
            alice      **          read,write
            anonymous  hub/**      read
            """)
        let fixture = Fixture(policy: policy)
        defer { fixture.directory.remove() }
        // Anonymous may read hub/** only: each way into the mirror is judged on hub/team/app.
        for uri in ["/v2/hub/team/app/blobs/\(Self.digest)", "/v2/team/app/blobs/\(Self.digest)?ns=hub",
                    "/v2/team/app/blobs/\(Self.digest)"] {
            let answer = fixture.send("GET", uri)
            #expect(answer.status == 200 && answer.repository == "hub/team/app", "\(uri): \(answer.status)")
        }
        // A name outside the mirror is judged as it is.
        #expect(fixture.send("POST", "/v2/team/app/blobs/uploads/").status == 401)
        // alice pushes a hosted team/app: she reads it there, anonymous reads still go to the mirror.
        let pushed = fixture.send("POST", "/v2/team/app/blobs/uploads/?digest=\(Self.digest)", body: StandIn.bytes, user: "alice")
        #expect(pushed.status == 201)
        let hosted = fixture.send("GET", "/v2/team/app/blobs/\(Self.digest)", user: "alice")
        #expect(hosted.repository == "team/app" && hosted.header("X-Accel-Redirect") != nil)
        let anonymous = fixture.send("GET", "/v2/team/app/blobs/\(Self.digest)")
        #expect(anonymous.repository == "hub/team/app" && anonymous.status == 200)
        // Someone the policy gives neither name gets the same refusal, about the mirrored
        // name, whether or not a hosted team/app exists.
        let refusals = ["team/app", "team/none"].map { fixture.send("GET", "/v2/\($0)/manifests/v1", user: "mallory") }
        for (refusal, name) in zip(refusals, ["hub/team/app", "hub/team/none"]) {
            #expect(refusal.status == 403 && refusal.repository == name, "\(refusal.status) \(String(decoding: refusal.body, as: UTF8.self))")
        }
        #expect(refusals[0].status == refusals[1].status)
    }
}
