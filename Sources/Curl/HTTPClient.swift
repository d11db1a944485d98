#if canImport(Glibc)
import Glibc
#endif
import CCurl

/// An HTTP client over libcurl (an upstream registry, an issuer's JWKS, a webhook): GET
/// and HEAD with headers, the answer's headers before its body, and the body as a stream
/// read at the caller's pace; POST of a small body.
/// TLS is verified (against the system's CAs, or `caFile`); redirects are followed (at
/// most 5, http and https only); nothing is logged, so credentials in headers stay here.
public struct HTTPClient: Sendable {
    public struct Options: Sendable, Equatable {
        /// PEM file of the CAs that sign the upstream's certificate; nil: the system's.
        public var caFile: String?
        /// Seconds to establish the connection (TCP and TLS).
        public var connectTimeout = 10
        /// Seconds without a single byte before a transfer is given up.
        public var stallTimeout = 60
        /// Seconds a whole small request (a manifest, a token) may take.
        public var requestTimeout = 120
        /// What the requests say they come from.
        public var userAgent = "berth"

        public init() {}
    }

    public enum Method: String, Sendable {
        case get = "GET"
        case head = "HEAD"
    }

    public let options: Options
    /// Connections (kept alive between requests), TLS sessions and DNS answers shared by
    /// this client's requests, on whatever thread they run.
    let shared: CurlShare?

    public init(options: Options = Options()) {
        self.options = options
        shared = CurlGlobal.ready ? CurlShare() : nil
    }

    /// Sends the request and waits for the final answer's status and headers; its body
    /// is then read from the transfer.
    public func open(_ method: Method, url: String, headers: [(name: String, value: String)],
                     wholeRequestTimeout: Bool = false) throws(HTTPError) -> HTTPTransfer {
        guard CurlGlobal.ready else { throw .transport("libcurl could not be initialised") }
        let transfer = try HTTPTransfer(method: method, url: url, headers: headers, options: options,
                                        wholeRequestTimeout: wholeRequestTimeout, shared: shared)
        try transfer.waitForHeaders()
        return transfer
    }

    /// POSTs `body` with `headers` (`Name: value` lines) and answers the status; redirects
    /// are not followed, and the whole request (connection included) takes at most
    /// `requestTimeout` seconds. The answer's body is read and dropped.
    public func post(_ body: [UInt8], url: String, headers: [String]) throws(HTTPError) -> Int {
        guard CurlGlobal.ready else { throw .transport("libcurl could not be initialised") }
        guard let curl = curl_easy_init() else { throw .transport("curl_easy_init failed") }
        defer { curl_easy_cleanup(curl) }
        var list: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(list) }
        for header in headers {
            guard let next = curl_slist_append(list, header) else { throw .transport("out of memory") }
            list = next
        }
        var error = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let options = self.options
        let code = body.withUnsafeBufferPointer { bytes in
            error.withUnsafeMutableBufferPointer { message -> CURLcode in
                // Every option is set before any can fail: one check of them all.
                var set = [
                    berth_curl_easy_setopt_string(curl, CURLOPT_URL, url),
                    berth_curl_easy_setopt_long(curl, CURLOPT_POST, 1),
                    berth_curl_easy_setopt_pointer(curl, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress)),
                    berth_curl_easy_setopt_long(curl, CURLOPT_POSTFIELDSIZE, bytes.count),
                    berth_curl_easy_setopt_pointer(curl, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(list)),
                    berth_curl_easy_setopt_long(curl, CURLOPT_NOSIGNAL, 1),
                    berth_curl_easy_setopt_long(curl, CURLOPT_TIMEOUT, options.requestTimeout),
                    berth_curl_easy_setopt_long(curl, CURLOPT_CONNECTTIMEOUT, options.connectTimeout),
                    berth_curl_easy_setopt_long(curl, CURLOPT_FOLLOWLOCATION, 0),
                    berth_curl_easy_setopt_string(curl, CURLOPT_PROTOCOLS_STR, "http,https"),
                    berth_curl_easy_setopt_string(curl, CURLOPT_USERAGENT, options.userAgent),
                    berth_curl_easy_setopt_callback(curl, CURLOPT_WRITEFUNCTION, { _, size, count, _ in size * count }),
                    berth_curl_easy_setopt_pointer(curl, CURLOPT_ERRORBUFFER, message.baseAddress),
                ]
                if let caFile = options.caFile { set.append(berth_curl_easy_setopt_string(curl, CURLOPT_CAINFO, caFile)) }
                if let failed = set.first(where: { $0 != CURLE_OK }) { return failed }
                return curl_easy_perform(curl)
            }
        }
        guard code == CURLE_OK else {
            let text = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw .transport(text.isEmpty ? String(cString: curl_easy_strerror(code)) : text)
        }
        var status = 0
        _ = berth_curl_easy_getinfo_long(curl, CURLINFO_RESPONSE_CODE, &status)
        return status
    }

    /// The whole answer of a small request, its body at most `limit` bytes.
    public func fetch(_ method: Method, url: String, headers: [(name: String, value: String)],
                      limit: Int) throws(HTTPError) -> HTTPReply {
        let transfer = try open(method, url: url, headers: headers, wholeRequestTimeout: true)
        let body = try transfer.readAll(upTo: limit)
        return HTTPReply(status: transfer.status, headers: transfer.headers, body: body)
    }
}

/// A complete small answer.
public struct HTTPReply: Sendable {
    public let status: Int
    /// Header names lowercased, in the order received.
    public let headers: [(name: String, value: String)]
    public let body: [UInt8]

    public func header(_ name: String) -> String? { headers.first { $0.name == name }?.value }

    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Why an upstream request failed before an answer could be read.
public enum HTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No answer: connection refused, TLS failure, timeout (libcurl's message).
    case transport(String)
    /// The body was longer than the caller accepts.
    case tooLarge(limit: Int)

    public var description: String {
        switch self {
        case .transport(let reason): reason
        case .tooLarge(let limit): "the answer is larger than \(limit) bytes"
        }
    }
}

/// A libcurl share handle (`berth_curl_share` in the shim: its own mutex per kind of data,
/// so requests on several threads may use it). Each transfer holds it, so it goes only
/// after the last of them.
final class CurlShare: @unchecked Sendable {
    // @unchecked: libcurl serializes every use of the share with the shim's mutexes.
    let handle: UnsafeMutablePointer<berth_curl_share>?

    init() { handle = berth_curl_share_new() }

    deinit { berth_curl_share_free(handle) }
}

/// libcurl's process-wide setup, once, before the first handle (a thread-safe lazy global).
enum CurlGlobal {
    static let ready: Bool = curl_global_init(Int(CURL_GLOBAL_ALL)) == CURLE_OK
}
