@testable import Mirror
import Storage
import Testing
import Curl

@Suite struct UpstreamPartsTests {
    @Test func bearerChallengeParametersAreReadWithQuotedCommas() throws {
        let challenge = try #require(AuthChallenge.parse(
            #"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/app:pull,push""#))
        #expect(challenge.scheme == "bearer")
        #expect(challenge.parameters == ["realm": "https://auth.example.com/token", "service": "registry.example.com",
                                         "scope": "repository:team/app:pull,push"])
    }

    @Test func basicChallengeAndOddSpellingsParse() throws {
        #expect(AuthChallenge.parse(#"Basic realm="upstream""#) == AuthChallenge(scheme: "basic", parameters: ["realm": "upstream"]))
        #expect(AuthChallenge.parse("BEARER realm=https://a/token, service=x") ==
                AuthChallenge(scheme: "bearer", parameters: ["realm": "https://a/token", "service": "x"]))
        #expect(AuthChallenge.parse(#"Bearer realm="a\"b""#)?.parameters["realm"] == #"a"b"#)
        #expect(AuthChallenge.parse("") == nil)
        #expect(AuthChallenge.parse("   ") == nil)
    }

    @Test func upstreamURLsMustBeAnOriginAlone() {
        #expect(MirrorConfiguration.problem(withUpstream: "https://registry-1.docker.io") == nil)
        #expect(MirrorConfiguration.problem(withUpstream: "http://127.0.0.1:5000/") == nil)
        for bad in ["registry-1.docker.io", "ftp://x", "https://", "https://x/v2", "https://user:pw@x", "https://x?y"] {
            #expect(MirrorConfiguration.problem(withUpstream: bad) != nil, "\(bad)")
        }
        var mirror = MirrorConfiguration(name: "hub")
        mirror.upstream = "https://127.0.0.1:5000/"
        #expect(mirror.upstreamHost == "127.0.0.1:5000" && mirror.base == "https://127.0.0.1:5000")
    }

    @Test func queryValuesArePercentEncoded() {
        #expect(UpstreamRegistry.encode("repository:library/alpine:pull") == "repository%3Alibrary%2Falpine%3Apull")
        #expect(UpstreamRegistry.encode("a b~c") == "a%20b~c")
    }

    @Test func anUnreachableUpstreamIsATransportError() {
        #expect {
            _ = try HTTPClient().fetch(.get, url: "http://127.0.0.1:1/v2/", headers: [], limit: 100)
        } throws: { error in
            guard let error = error as? HTTPError, case .transport(let reason) = error else { return false }
            return !reason.isEmpty
        }
    }

    @Test func aMirrorNeedsAnUpstreamAndAValidNameAndDefault() {
        let store = Store(root: "/nonexistent-berth-root")
        #expect(throws: MirrorSetupError.noUpstream("hub")) {
            try PullThroughMirror(decorating: store.capabilities, mirrors: [MirrorConfiguration(name: "hub")], defaultNamespace: nil)
        }
        var mirror = MirrorConfiguration(name: "hub")
        mirror.upstream = "https://127.0.0.1:1"
        #expect(throws: MirrorSetupError.self) {
            try PullThroughMirror(decorating: store.capabilities, mirrors: [mirror], defaultNamespace: "other")
        }
        mirror.name = "Bad/Name"
        #expect(throws: MirrorSetupError.self) {
            try PullThroughMirror(decorating: store.capabilities, mirrors: [mirror], defaultNamespace: nil)
        }
    }
}
