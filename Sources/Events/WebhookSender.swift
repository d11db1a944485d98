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
        var status = 0
        var error = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE))
        let code: Int32 = withCStrings(headers) { lines in
            body.withUnsafeBufferPointer { bytes in
                error.withUnsafeMutableBufferPointer { message in
                    berth_webhook_post(url, bytes.baseAddress, bytes.count, lines.baseAddress, lines.count, timeoutSeconds,
                                       &status, message.baseAddress)
                }
            }
        }
        guard code == 0 else {
            let text = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return .failed("curl: \(text)")
        }
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

    private func withCStrings<T>(_ strings: [String], _ body: (UnsafeBufferPointer<UnsafePointer<CChar>?>) -> T) -> T {
        let copies = strings.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        let pointers = copies.map { UnsafePointer($0) }
        return pointers.withUnsafeBufferPointer(body)
    }
}
