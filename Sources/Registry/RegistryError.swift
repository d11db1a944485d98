#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// An error answer: an OCI code, a status, a message for people, and extra headers.
/// It renders itself as the OCI error body `{"errors":[{"code","message","detail"}]}`.
public struct RegistryError: Error, Sendable {
    public let code: ErrorCode
    public let status: Int
    public let message: String
    public let detail: String?
    public var headers: [(name: String, value: String)]

    public init(_ code: ErrorCode, _ message: String, status: Int? = nil, detail: String? = nil,
                headers: [(name: String, value: String)] = []) {
        self.code = code
        self.status = status ?? code.defaultStatus
        self.message = message
        self.detail = detail
        self.headers = headers
    }

    public var response: RegistryResponse {
        struct Body: Encodable {
            struct Entry: Encodable {
                let code: String
                let message: String
                let detail: String?
            }
            let errors: [Entry]
        }
        let body = Body(errors: [.init(code: code.rawValue, message: message, detail: detail)])
        return RegistryResponse(
            status: status,
            headers: [("Content-Type", "application/json")] + headers,
            body: JSON.encode(body))
    }
}

/// JSON encoding for answers: sorted keys, unescaped slashes.
enum JSON {
    static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Answer bodies are plain strings and arrays; encoding cannot fail.
        return (try? Array(encoder.encode(value))) ?? Array("{}".utf8)
    }
}
