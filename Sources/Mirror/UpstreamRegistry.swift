#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Locks
import Storage
import Curl

/// The Distribution API of one upstream registry, as a pull-through mirror reads it:
/// manifests and blobs by repository, with its authentication handled here.
///
/// Authentication: a request goes out anonymous until the upstream has answered 401
/// once; then every request carries what it asked for. `Bearer`: a token from the
/// challenge's realm (with Basic credentials when configured, anonymous otherwise),
/// cached per scope until shortly before it expires. `Basic`: the configured username
/// and password. The password and the tokens stay in memory and are never logged.
public final class UpstreamRegistry: Sendable {
    public let configuration: MirrorConfiguration
    let http: HTTPClient
    private let credentials: String?
    private let tokens = Locked<[String: CachedToken]>([:])
    private let scheme = Locked<Scheme?>(nil)

    private enum Scheme: Sendable {
        case basic
        case bearer(realm: String, service: String?)
    }

    private struct CachedToken: Sendable {
        let value: String
        let expires: Int64
    }

    /// Reads the password file (first line) when one is configured.
    public init(_ configuration: MirrorConfiguration) throws(MirrorSetupError) {
        guard let upstream = configuration.upstream else { throw .noUpstream(configuration.name) }
        if let problem = MirrorConfiguration.problem(withUpstream: upstream) { throw .invalid(configuration.name, problem) }
        self.configuration = configuration
        var options = HTTPClient.Options()
        options.caFile = configuration.caFile
        options.userAgent = "berth-mirror"
        http = HTTPClient(options: options)
        if let username = configuration.username {
            var password = ""
            if let file = configuration.passwordFile {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw .invalid(configuration.name, "cannot read password_file \(file)")
                }
                password = String(text.prefix { $0 != "\n" && $0 != "\r" })
            }
            credentials = Data("\(username):\(password)".utf8).base64EncodedString()
        } else {
            credentials = nil
        }
    }

    /// What `Accept` names for manifests: every schema 2 and OCI type.
    static let manifestAccept = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest,
                                 MediaType.dockerManifestList].joined(separator: ", ")

    /// A manifest by tag or digest (GET, or HEAD for the digest alone), at most 4 MiB.
    func manifest(_ method: HTTPClient.Method, repository: String, reference: String) throws(HTTPError) -> HTTPReply {
        let transfer = try open(method, path: "/v2/\(repository)/manifests/\(reference)", repository: repository,
                                accept: Self.manifestAccept, whole: true)
        let body = try transfer.readAll(upTo: ManifestDocument.maximumSize)
        return HTTPReply(status: transfer.status, headers: transfer.headers, body: body)
    }

    /// A blob's answer, its body still to be read.
    func blob(_ method: HTTPClient.Method, repository: String, digest: Digest) throws(HTTPError) -> HTTPTransfer {
        try open(method, path: "/v2/\(repository)/blobs/\(digest)", repository: repository, accept: nil, whole: method == .head)
    }

    /// Sends the request with the credentials the upstream wants; after a 401, learns its
    /// challenge and tries once more. The answer may still be 401 or 403.
    private func open(_ method: HTTPClient.Method, path: String, repository: String, accept: String?,
                      whole: Bool) throws(HTTPError) -> HTTPTransfer {
        let scope = "repository:\(repository):pull"
        let url = configuration.base + path
        func send(_ authorization: String?) throws(HTTPError) -> HTTPTransfer {
            var headers: [(name: String, value: String)] = []
            if let accept { headers.append(("Accept", accept)) }
            if let authorization { headers.append(("Authorization", authorization)) }
            return try http.open(method, url: url, headers: headers, wholeRequestTimeout: whole)
        }
        let first = try send(try authorization(scope: scope, challengeScope: nil))
        guard first.status == 401, let header = first.header("www-authenticate"),
              let challenge = AuthChallenge.parse(header) else { return first }
        switch challenge.scheme {
        case "bearer":
            guard let realm = challenge.parameters["realm"], realm.hasPrefix("https://") || realm.hasPrefix("http://") else {
                return first
            }
            scheme.withLock { $0 = .bearer(realm: realm, service: challenge.parameters["service"]) }
            tokens.withLock { _ = $0.removeValue(forKey: scope) }
        case "basic":
            guard credentials != nil else { return first }
            scheme.withLock { $0 = .basic }
        default:
            return first
        }
        return try send(try authorization(scope: scope, challengeScope: challenge.parameters["scope"]))
    }

    /// The `Authorization` value for a request in `scope`; nil while the upstream has not asked.
    private func authorization(scope: String, challengeScope: String?) throws(HTTPError) -> String? {
        guard let learned = scheme.withLock({ $0 }) else { return nil }
        switch learned {
        case .basic:
            return credentials.map { "Basic \($0)" }
        case .bearer(let realm, let service):
            let now = Self.monotonicSeconds()
            if let cached = tokens.withLock({ $0[scope] }), cached.expires > now { return "Bearer \(cached.value)" }
            let token = try fetchToken(realm: realm, service: service, scope: challengeScope ?? scope)
            tokens.withLock { $0[scope] = token }
            return "Bearer \(token.value)"
        }
    }

    /// GET the realm (distribution's token spec).
    private func fetchToken(realm: String, service: String?, scope: String) throws(HTTPError) -> CachedToken {
        var query: [String] = []
        if let service { query.append("service=\(Self.encode(service))") }
        query.append("scope=\(Self.encode(scope))")
        let url = realm + (realm.contains("?") ? "&" : "?") + query.joined(separator: "&")
        let headers: [(name: String, value: String)] = credentials.map { [("Authorization", "Basic \($0)")] } ?? []
        let reply = try http.fetch(.get, url: url, headers: headers, limit: 1 << 20)
        guard reply.status == 200 else {
            throw .transport("the token endpoint answered \(reply.status)\(reply.status == 401 ? " (check username and password_file)" : "")")
        }
        struct Answer: Decodable {
            let token: String?
            let access_token: String?
            let expires_in: Int?
        }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: Data(reply.body)),
              let value = answer.token ?? answer.access_token, !value.isEmpty else {
            throw .transport("the token endpoint's answer has no token")
        }
        let lifetime = Int64(max(answer.expires_in ?? 60, 1))
        return CachedToken(value: value, expires: Self.monotonicSeconds() + lifetime - min(30, lifetime / 2))
    }

    /// Query encoding: everything but RFC 3986's unreserved characters as %XX.
    static func encode(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                result += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 15, radix: 16, uppercase: true)
            }
        }
        return result
    }

    static func monotonicSeconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec)
    }
}

/// A mirror that cannot be set up, with the mirror's name.
public enum MirrorSetupError: Error, Sendable, Equatable, CustomStringConvertible {
    case noUpstream(String)
    case invalid(String, String)

    public var description: String {
        switch self {
        case .noUpstream(let name): "mirror.\(name): no upstream (set mirror.\(name).upstream = https://host)"
        case .invalid(let name, let reason): "mirror.\(name): \(reason)"
        }
    }
}
