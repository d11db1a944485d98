/// The one hexadecimal codec: lowercase digits for digests, ids, saved hash states and
/// JSON escapes; uppercase for percent-encoding.
public enum Hex {
    private static let lowercaseDigits = Array("0123456789abcdef".utf8)
    private static let uppercaseDigits = Array("0123456789ABCDEF".utf8)

    /// The lowercase digit of `nibble` (0...15; higher bits are ignored).
    public static func lowercase(_ nibble: UInt8) -> UInt8 { lowercaseDigits[Int(nibble & 15)] }
    /// The uppercase digit of `nibble` (0...15; higher bits are ignored).
    public static func uppercase(_ nibble: UInt8) -> UInt8 { uppercaseDigits[Int(nibble & 15)] }

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(lowercase(byte >> 4))
            out.append(lowercase(byte))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of lowercase hex text; nil for an odd length or any other character.
    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        var index = 0
        while index < chars.count {
            guard let high = value(chars[index]), let low = value(chars[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    /// The value of a lowercase or uppercase hex digit.
    public static func value(_ char: UInt8) -> UInt8? {
        switch char {
        case 48...57: char - 48
        case 65...70: char - 55
        case 97...102: char - 87
        default: nil
        }
    }
}
