/// The byte range an upload chunk claims (`Content-Range: <start>-<end>`, inclusive,
/// with or without a `bytes=` or `bytes ` prefix and a `/<total>` suffix), held as
/// start and length. Both ends are at most `DecimalNumber.maximumOffset`, so
/// `start + length` cannot overflow anywhere it is used.
struct ContentRange: Equatable {
    let start: UInt64
    /// At least 1: `<start>-<end>` with `end >= start`.
    let length: UInt64

    /// nil when the header is absent; `BLOB_UPLOAD_INVALID` (400) naming the header when
    /// it is malformed, reversed or beyond the largest possible file offset.
    static func parse(_ header: String?) throws(RegistryError) -> ContentRange? {
        guard let header else { return nil }
        var text = Substring(header)
        for prefix in ["bytes=", "bytes "] where text.hasPrefix(prefix) { text = text.dropFirst(prefix.count) }
        if let slash = text.firstIndex(of: "/") { text = text[..<slash] }
        let parts = text.split(separator: "-", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw invalid(header, "is not <start>-<end>") }
        switch (DecimalNumber.parse(parts[0]), DecimalNumber.parse(parts[1])) {
        case (.value(let start), .value(let end)):
            guard end >= start else { throw invalid(header, "ends before it starts") }
            return ContentRange(start: start, length: end - start + 1)
        case (.tooLarge, _), (_, .tooLarge):
            throw invalid(header, "goes beyond the largest possible offset (\(DecimalNumber.maximumOffset))")
        default:
            throw invalid(header, "is not <start>-<end> in decimal digits")
        }
    }

    private static func invalid(_ header: String, _ reason: String) -> RegistryError {
        RegistryError(.blobUploadInvalid, "Content-Range \"\(String(header.prefix(100)))\" \(reason)")
    }
}
