#if canImport(Glibc)
import Glibc
#endif
import CCurl
import Locks

/// What came of one POST.
public enum PostOutcome: Sendable, Equatable {
    /// A 2xx answer.
    case accepted(status: Int)
    /// Any other answer, or no answer (connection refused, timeout: the curl error).
    case failed(String)
}

/// Sends one request body to a URL; the deliverer's only way out of the process.
public protocol EventPoster: Sendable {
    func post(_ body: [UInt8], to url: String, headers: [String]) -> PostOutcome
}

/// HTTP POST through libcurl (`CCurl`): no redirects, http and https only, a bounded
/// time per request. Blocking: run it on the delivery thread, never on a request thread.
public struct WebhookSender: EventPoster {
    public let timeoutSeconds: Int

    public init(timeoutSeconds: Int) {
        Self.initializeCurl()
        self.timeoutSeconds = timeoutSeconds
    }

    public func post(_ body: [UInt8], to url: String, headers: [String]) -> PostOutcome {
        guard let curl = curl_easy_init() else { return .failed("curl: cannot start a request") }
        defer { curl_easy_cleanup(curl) }
        var list: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(list) }
        for header in headers {
            guard let next = curl_slist_append(list, header) else { return .failed("curl: out of memory") }
            list = next
        }
        var error = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE))
        let timeout = timeoutSeconds
        let code = body.withUnsafeBufferPointer { bytes in
            error.withUnsafeMutableBufferPointer { message -> CURLcode in
                // Every option is set before any can fail: one check of them all.
                let set = [
                    berth_curl_easy_setopt_string(curl, CURLOPT_URL, url),
                    berth_curl_easy_setopt_long(curl, CURLOPT_POST, 1),
                    berth_curl_easy_setopt_pointer(curl, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress)),
                    berth_curl_easy_setopt_long(curl, CURLOPT_POSTFIELDSIZE, bytes.count),
                    berth_curl_easy_setopt_pointer(curl, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(list)),
                    berth_curl_easy_setopt_long(curl, CURLOPT_NOSIGNAL, 1),
                    berth_curl_easy_setopt_long(curl, CURLOPT_TIMEOUT, timeout),
                    berth_curl_easy_setopt_long(curl, CURLOPT_CONNECTTIMEOUT, timeout),
                    berth_curl_easy_setopt_long(curl, CURLOPT_FOLLOWLOCATION, 0),
                    berth_curl_easy_setopt_string(curl, CURLOPT_PROTOCOLS_STR, "http,https"),
                    berth_curl_easy_setopt_callback(curl, CURLOPT_WRITEFUNCTION, { _, size, count, _ in size * count }),
                    berth_curl_easy_setopt_pointer(curl, CURLOPT_ERRORBUFFER, message.baseAddress),
                ]
                if let failed = set.first(where: { $0 != CURLE_OK }) { return failed }
                return curl_easy_perform(curl)
            }
        }
        guard code == CURLE_OK else {
            var text = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.isEmpty { text = String(cString: curl_easy_strerror(code)) }
            return .failed("curl: \(text)")
        }
        var status = 0
        _ = berth_curl_easy_getinfo_long(curl, CURLINFO_RESPONSE_CODE, &status)
        return (200..<300).contains(status) ? .accepted(status: status) : .failed("HTTP \(status)")
    }

    /// `curl_global_init` once per process, before any request (it is not thread-safe).
    private static let initialized = Locked(false)
    private static func initializeCurl() {
        initialized.withLock { done in
            if !done { _ = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }
            done = true
        }
    }
}
