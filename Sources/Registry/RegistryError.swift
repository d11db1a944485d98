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
        // Every 429 tells the client when to come back.
        if self.status == 429, !headers.contains(where: { $0.name.lowercased() == "retry-after" }) {
            self.headers.append(("Retry-After", "1"))
        }
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
    enum Value {
        case string(String)
        case strings([String])
    }

    /// A flat object of strings and string arrays, written directly (listings are the
    /// hot path of `tags/list` and `_catalog`; JSONEncoder costs several times more).
    static func object(_ fields: KeyValuePairs<String, Value>) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        for (index, field) in fields.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            appendString(field.key, to: &out)
            out.append(UInt8(ascii: ":"))
            switch field.value {
            case .string(let text):
                appendString(text, to: &out)
            case .strings(let texts):
                out.append(UInt8(ascii: "["))
                for (position, text) in texts.enumerated() {
                    if position > 0 { out.append(UInt8(ascii: ",")) }
                    appendString(text, to: &out)
                }
                out.append(UInt8(ascii: "]"))
            }
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    private static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), byte])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [92, 117, 48, 48, hex[Int(byte >> 4)], hex[Int(byte & 15)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Answer bodies are plain strings and arrays; encoding cannot fail.
        return (try? Array(encoder.encode(value))) ?? Array("{}".utf8)
    }
}
