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
    /// Who sent it, once `Registry.handle` authenticated it (nil: anonymous).
    public internal(set) var identity: Identity?
    /// Whether the answer may wait on something slow (a pull-through mirror's upstream).
    /// False on the threads that answer cached pulls: such a request is answered with
    /// `RegistryResponse.moveToWaitingThread` and handled again where it may wait.
    public var mayWait = true

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
        var result: [String: String] = [:]
        for (key, value) in queryItems where result[key] == nil { result[key] = value }
        return result
    }

    /// Every value of the query parameter `key`, in the order sent (`?tag=a&tag=b`).
    public func queryValues(_ key: String) -> [String] {
        queryItems.filter { $0.key == key }.map(\.value)
    }

    /// All query parameters in order, percent-decoded. A key that does not decode is
    /// dropped; a value that does not decode reads as "" (invalid wherever a value matters).
    public var queryItems: [(key: String, value: String)] {
        guard let mark = uri.firstIndex(of: "?") else { return [] }
        var result: [(key: String, value: String)] = []
        for pair in uri[uri.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = PercentDecoding.decode(parts[0]) else { continue }
            let value = parts.count > 1 ? PercentDecoding.decode(parts[1]) ?? "" : ""
            result.append((key, value))
        }
        return result
    }

    /// The values of `If-None-Match`: entity tags with quotes and any `W/` removed, or `*`.
    public var ifNoneMatch: [String] {
        guard let header = headers["if-none-match"] else { return [] }
        return header.split(separator: ",").map { item in
            var text = item.trimmingSpaces
            if text.hasPrefix("W/") { text = text.dropFirst(2) }
            if text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") { text = text.dropFirst().dropLast() }
            return String(text)
        }
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

extension Substring {
    /// Without leading and trailing spaces and tabs.
    var trimmingSpaces: Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return text
    }
}
