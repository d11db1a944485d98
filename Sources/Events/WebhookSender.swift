#if canImport(Glibc)
import Glibc
#endif
import Curl

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

/// HTTP POST with the Curl module's client: no redirects, http and https only, a
/// bounded time per request. Blocking: run it on the delivery thread, never on a request
/// thread.
public struct WebhookSender: EventPoster {
    public let timeoutSeconds: Int
    private let client: HTTPClient

    public init(timeoutSeconds: Int) {
        self.timeoutSeconds = timeoutSeconds
        var options = HTTPClient.Options()
        options.connectTimeout = timeoutSeconds
        options.requestTimeout = timeoutSeconds
        options.userAgent = "berth-events"
        client = HTTPClient(options: options)
    }

    public func post(_ body: [UInt8], to url: String, headers: [String]) -> PostOutcome {
        do {
            let status = try client.post(body, url: url, headers: headers)
            return (200..<300).contains(status) ? .accepted(status: status) : .failed("HTTP \(status)")
        } catch {
            return .failed("curl: \(error.description)")
        }
    }
}
