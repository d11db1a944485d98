import Storage

/// One HTTP request as the registry sees it: method, raw URI, the few headers it reads,
/// and the body as a stream.
public struct RegistryRequest {
    public var method: String
    /// The raw request target (`REQUEST_URI`): path and query, still percent-encoded.
    public var uri: String
    /// Header values keyed by lowercased name (`content-type`, `content-range`, …).
    public var headers: [String: String]
    public var body: any ByteSource

    public init(method: String, uri: String, headers: [String: String] = [:], body: any ByteSource = BufferByteSource([])) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
    }

    /// The path part of the URI.
    public var path: Substring { uri[..<(uri.firstIndex(of: "?") ?? uri.endIndex)] }

    /// Query parameters, percent-decoded; the first value of a repeated key wins.
    public var query: [String: String] {
        guard let mark = uri.firstIndex(of: "?") else { return [:] }
        var result: [String: String] = [:]
        for pair in uri[uri.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = PercentDecoding.decode(parts[0]) else { continue }
            let value = parts.count > 1 ? PercentDecoding.decode(parts[1]) ?? "" : ""
            if result[key] == nil { result[key] = value }
        }
        return result
    }

    /// Content-Length as a number; nil when absent (a chunked body). `SIZE_INVALID` (400)
    /// naming the value when it is not decimal digits or beyond the largest file size.
    public func contentLength() throws(RegistryError) -> UInt64? {
        guard let text = headers["content-length"] else { return nil }
        switch DecimalNumber.parse(text) {
        case .value(let length): return length
        case .tooLarge:
            throw RegistryError(.sizeInvalid, "Content-Length \(String(text.prefix(40))) is beyond the largest possible size (\(DecimalNumber.maximumOffset))")
        case .invalid:
            throw RegistryError(.sizeInvalid, "Content-Length \"\(String(text.prefix(40)))\" is not a decimal number of bytes")
        }
    }
}
