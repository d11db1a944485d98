import Storage

/// Percent-encoding of the URLs Berth writes (`Route.path`, `Link`), and decoding of
/// the ones it reads (`Route.parse`, the query).
enum PercentEncoding {
    /// Escapes everything but unreserved characters and `/`.
    static func encodeQueryValue(_ text: String) -> String { encode(text, keepingSlash: true) }

    /// Escapes everything but unreserved characters (a `/` too: one path component).
    static func encodePathComponent(_ text: String) -> String { encode(text, keepingSlash: false) }

    private static func encode(_ text: String, keepingSlash: Bool) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "/") where keepingSlash:
                out.unicodeScalars.append("/")
            case 48...57, 65...90, 97...122, UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(Unicode.Scalar(Hex.uppercase(byte >> 4)))
                out.unicodeScalars.append(Unicode.Scalar(Hex.uppercase(byte)))
            }
        }
        return out
    }
}

/// Decodes `%XX` escapes; nil for a malformed escape or bytes that are not UTF-8.
enum PercentDecoding {
    static func decode<S: StringProtocol>(_ text: S) -> String? {
        guard text.utf8.contains(UInt8(ascii: "%")) else { return String(text) }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
            guard let high = iterator.next().flatMap(Hex.value), let low = iterator.next().flatMap(Hex.value) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
