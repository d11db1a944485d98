#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The one JSON writer of the code base: canonical encoding (sorted keys, unescaped
/// slashes) of `Encodable` values for files and answers, and the string escaper that
/// hand-written bodies and log lines use on the hot path.
public enum JSONText {
    /// `value` as canonical JSON. Berth's own types always encode; an impossible failure
    /// gives an empty document rather than a trap.
    public static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? Array(encoder.encode(value))) ?? []
    }

    /// Appends `text` as a JSON string, quotes included.
    public static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        appendEscaped(text, to: &out)
        out.append(UInt8(ascii: "\""))
    }

    /// Appends the inside of a JSON string: quotes, backslashes and control characters
    /// escaped; everything else (UTF-8 included) copied as is.
    public static func appendEscaped(_ text: String, to out: inout [UInt8]) {
        let done: Void? = text.utf8.withContiguousStorageIfAvailable { bytes in appendEscaped(bytes, to: &out) }
        if done == nil {
            var copy = text
            copy.withUTF8 { appendEscaped($0, to: &out) }
        }
    }

    /// Bytes that need no escape (the common case: digests, media types, tags) are
    /// copied in one piece.
    private static func appendEscaped(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        guard bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
            out.append(contentsOf: bytes)
            return
        }
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
            case 10: out.append(contentsOf: [92, 110])
            case 13: out.append(contentsOf: [92, 114])
            case 9: out.append(contentsOf: [92, 116])
            case 0..<0x20: out.append(contentsOf: [92, 117, 48, 48, Hex.lowercase(byte >> 4), Hex.lowercase(byte & 15)])
            default: out.append(byte)
            }
        }
    }
}
