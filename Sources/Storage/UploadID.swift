/// The identifier of an upload session: a lowercase RFC 4122 UUID string.
public struct UploadID: Hashable, Sendable, CustomStringConvertible {
    public let value: String

    public init?(_ value: String) {
        let bytes = Array(value.utf8)
        guard bytes.count == 36 else { return nil }
        for (index, byte) in bytes.enumerated() {
            if [8, 13, 18, 23].contains(index) {
                guard byte == UInt8(ascii: "-") else { return nil }
            } else {
                guard (48...57).contains(byte) || (97...102).contains(byte) else { return nil }
            }
        }
        self.value = value
    }

    /// A new random identifier.
    public static func random() -> UploadID {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[6] = (bytes[6] & 0x0f) | 0x40
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        let chars = Array(Hex.encode(bytes))
        let text = String(chars[0..<8]) + "-" + String(chars[8..<12]) + "-" + String(chars[12..<16])
            + "-" + String(chars[16..<20]) + "-" + String(chars[20..<32])
        // The text above is always a well-formed UUID.
        return UploadID(text) ?? UploadID(unchecked: text)
    }

    private init(unchecked value: String) { self.value = value }

    public var description: String { value }
}
