/// A non-negative decimal number as a client writes it in a header or a query
/// (`Content-Length`, `Content-Range`, `n`): ASCII digits only, no sign, no spaces, no
/// exponent. Parsing never traps: a number beyond `maximum` is reported as such, so the
/// caller can name the value in a 4xx.
enum DecimalNumber: Equatable {
    case value(UInt64)
    case tooLarge
    case invalid

    /// The largest byte count or offset a file can have (`off_t`).
    static let maximumOffset = UInt64(Int64.max)

    static func parse<Text: StringProtocol>(_ text: Text, maximum: UInt64 = maximumOffset) -> DecimalNumber {
        guard !text.isEmpty else { return .invalid }
        var result: UInt64 = 0
        var overflowed = false
        for byte in text.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return .invalid }
            guard !overflowed else { continue }
            let (times10, overflow1) = result.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            if overflow1 || overflow2 || sum > maximum { overflowed = true } else { result = sum }
        }
        return overflowed ? .tooLarge : .value(result)
    }
}
