import FastCGI
import Registry
import Storage

/// Turns a FastCGI exchange into the registry's request type.
enum RequestAdapter {
    /// The FastCGI params the registry reads, by the header name it reads them under.
    private static let headerParams: [(header: String, param: String)] = [
        ("content-type", "CONTENT_TYPE"),
        ("content-length", "CONTENT_LENGTH"),
        ("content-range", "HTTP_CONTENT_RANGE"),
        ("if-none-match", "HTTP_IF_NONE_MATCH"),
        ("host", "HTTP_HOST"),
        ("x-request-id", "HTTP_X_REQUEST_ID"),
        ("remote-user", "REMOTE_USER"),
        // Credentials: read by the authenticator only, never logged.
        ("authorization", "HTTP_AUTHORIZATION"),
        ("remote-addr", "REMOTE_ADDR"),
        // scheme://host[:port] as the client reached nginx (the token realm).
        ("x-berth-origin", "BERTH_ORIGIN"),
    ]

    /// The request, and its body stream (which counts what it read).
    static func request(from exchange: FastCGIExchange) -> (RegistryRequest, FastCGIBody) {
        var headers: [String: String] = [:]
        for (header, param) in headerParams {
            if let value = exchange.param(param), !value.isEmpty { headers[header] = value }
        }
        let body = FastCGIBody(exchange)
        let request = RegistryRequest(
            method: exchange.param("REQUEST_METHOD") ?? "GET",
            uri: exchange.param("REQUEST_URI") ?? "/",
            headers: headers,
            body: body)
        return (request, body)
    }
}

/// The request body as the store's byte stream.
final class FastCGIBody: ByteSource {
    private let exchange: FastCGIExchange
    private(set) var bytesRead: UInt64 = 0

    init(_ exchange: FastCGIExchange) { self.exchange = exchange }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) -> Int {
        do {
            let count = try exchange.readBody(into: buffer)
            bytesRead += UInt64(count)
            return count
        } catch {
            throw .bodyInterrupted
        }
    }
}
