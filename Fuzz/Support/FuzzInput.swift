#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer's bytes read as a sequence of choices. Past the end every read gives 0,
/// so any input, even an empty one, decodes to something.
struct FuzzInput {
    private let bytes: [UInt8]
    private var position = 0

    init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    }

    var isAtEnd: Bool { position >= bytes.count }

    mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func bool() -> Bool { byte() & 1 == 1 }

    /// A number in `0..<count` (count ≤ 256); always one byte, so inputs stay aligned.
    mutating func index(_ count: Int) -> Int {
        let value = Int(byte())
        return count <= 1 ? 0 : value % count
    }

    mutating func choose<T>(_ options: [T]) -> T { options[index(options.count)] }

    /// A length-prefixed run of at most `maximum` bytes (prefix: one byte, or two when `maximum` > 255).
    mutating func bytes(upTo maximum: Int) -> [UInt8] {
        var length = Int(byte())
        if maximum > 255 { length = length << 8 | Int(byte()) }
        length = min(length, maximum, bytes.count - min(position, bytes.count))
        defer { position += length }
        return Array(bytes[position..<(position + length)])
    }

    mutating func string(upTo maximum: Int) -> String { String(decoding: bytes(upTo: maximum), as: UTF8.self) }

    /// Everything not read yet.
    mutating func rest() -> [UInt8] {
        defer { position = bytes.count }
        return position < bytes.count ? Array(bytes[position...]) : []
    }
}

/// A fuzzer's verdict that the code under test misbehaved: printed, then a crash that
/// libFuzzer records as a `crash-*` input.
enum Finding {
    static func report(_ message: String) -> Never {
        let line = Array("FINDING: \(message)\n".utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        abort()
    }

    /// A status the client's own mistake may get: 4xx.
    static func expectClientError(_ status: Int, _ context: @autoclosure () -> String) {
        if !(400..<500).contains(status) { report("status \(status) for a client mistake: \(context())") }
    }
}

/// Text for messages: control characters escaped, long text cut.
func printable<S: StringProtocol>(_ text: S, limit: Int = 300) -> String {
    var out = ""
    for scalar in text.unicodeScalars.prefix(limit) {
        out += scalar.value < 0x20 || scalar.value == 0x7f ? "\\u{\(String(scalar.value, radix: 16))}" : String(scalar)
    }
    return text.unicodeScalars.count > limit ? out + "…" : out
}

/// `text` with every LF line end written CRLF: a file saved on Windows, which must read the same.
func withCRLF(_ text: String) -> String {
    var out = String.UnicodeScalarView()
    var previous: Unicode.Scalar?
    for scalar in text.unicodeScalars {
        if scalar == "\n", previous != "\r" { out.append("\r") }
        out.append(scalar)
        previous = scalar
    }
    return String(out)
}
