// Fuzz target: every header and query parser the registry has, and the value types
// that validate path parts. The first byte picks the parser, the rest is its text.
// Findings: a trap; an error that is not a 4xx; a value accepted that breaks its own
// grammar or does not survive a round trip.
@testable import Registry
@testable import Storage

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHeaders(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let selector = input.byte()
    let text = String(decoding: input.rest(), as: UTF8.self)
    switch selector % 8 {
    case 0: contentRange(text)
    case 1: pagination(text)
    case 2: contentLength(text)
    case 3: percentCoding(text)
    case 4: contentTypeEssence(text)
    case 5: digestAndReference(text)
    case 6: repositoryName(text)
    default: uploadID(text)
    }
    return 0
}

/// `Content-Range` of a PATCH or PUT chunk.
private func contentRange(_ header: String) {
    let range: ContentRange?
    do { range = try ContentRange.parse(header) } catch {
        Finding.expectClientError(error.status, "Content-Range \(printable(header))")
        return
    }
    guard let range else { Finding.report("a present Content-Range \(printable(header)) parsed as absent") }
    if range.length == 0 { Finding.report("Content-Range \(printable(header)) has length 0") }
    // Both ends are at most 2^63 - 1, so the inclusive end is computed without overflow.
    let (sum, overflow) = range.start.addingReportingOverflow(range.length)
    guard !overflow, sum - 1 <= UInt64(Int64.max) else { Finding.report("Content-Range \(printable(header)) gave \(range)") }
    let end = sum - 1
    if (try? ContentRange.parse("\(range.start)-\(end)")) != range {
        Finding.report("Content-Range \(printable(header)) does not round-trip")
    }
    _ = RangeHeader.value(forSize: end)
}

/// `?n=` and `?last=` of tags/list, _catalog and referrers; any other query keys too.
private func pagination(_ query: String) {
    let request = RegistryRequest(method: "GET", uri: "/v2/_catalog?" + query)
    let decoded = request.query
    let items = (0..<30).map { "repo\($0 < 10 ? "0" : "")\($0)" }
    do {
        let page = try Page(request, path: "/v2/_catalog", items: items, key: { $0 })
        if page.items.count > Registry.maximumPageSize { Finding.report("page of \(page.items.count) for \(printable(query))") }
        if let last = decoded["last"], page.items.contains(where: { $0 <= last }) {
            Finding.report("?\(printable(query)) lists items not after last")
        }
        if let n = decoded["n"].flatMap({ Int($0) }), page.items.count > n { Finding.report("?\(printable(query)) lists more than n") }
        if page.next != nil, page.items.isEmpty { Finding.report("?\(printable(query)): a next link after an empty page") }
        _ = page.response(body: [])
    } catch {
        Finding.expectClientError(error.status, "query ?\(printable(query))")
    }
}

/// Content-Length: digits only, at most 2^63 - 1; anything else is a 4xx that names it.
private func contentLength(_ value: String) {
    let request = RegistryRequest(method: "PUT", uri: "/v2/", headers: ["content-length": value])
    do {
        guard let length = try request.contentLength() else { Finding.report("a present Content-Length read as absent") }
        let digitsOnly = !value.isEmpty && value.utf8.allSatisfy { (48...57).contains($0) }
        guard digitsOnly, UInt64(value) == length, length <= UInt64(Int64.max) else {
            Finding.report("Content-Length \(printable(value)) read as \(length)")
        }
    } catch {
        Finding.expectClientError(error.status, "Content-Length \(printable(value))")
    }
}

/// Percent-decoding of path parts and query values; the encoding of `Link` values.
private func percentCoding(_ text: String) {
    _ = PercentDecoding.decode(text)
    let encoded = PercentEncoding.encodeQueryValue(text)
    guard PercentDecoding.decode(encoded) == text else {
        Finding.report("\(printable(text)) encodes to \(encoded), which does not decode back")
    }
    let request = RegistryRequest(method: "GET", uri: "/v2/_catalog?last=\(encoded)&n=1")
    if request.query["last"] != text { Finding.report("?last=\(encoded) does not decode to \(printable(text))") }
}

private func contentTypeEssence(_ header: String) {
    let essence = ManifestDocument.essence(header)
    if essence.contains(";") || essence != essence.lowercased() {
        Finding.report("essence of \(printable(header)) is \(printable(essence))")
    }
}

private func digestAndReference(_ text: String) {
    if let digest = Digest(text) {
        guard digest.description == text, digest.hex.utf8.count == digest.algorithm.hexLength,
              digest.hex.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
            Finding.report("Digest accepted \(printable(text))")
        }
    }
    if let tag = Tag(text) {
        let bytes = Array(text.utf8)
        guard tag.value == text, bytes.count <= 128, bytes.allSatisfy(isTagByte), bytes.first != UInt8(ascii: "."),
              bytes.first != UInt8(ascii: "-") else {
            Finding.report("Tag accepted \(printable(text))")
        }
    }
    if let reference = Reference(text), reference.description != text {
        Finding.report("Reference \(printable(text)) reads back as \(reference)")
    }
}

private func isTagByte(_ byte: UInt8) -> Bool {
    (65...90).contains(byte) || (97...122).contains(byte) || (48...57).contains(byte)
        || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
}

/// Distribution's grammar, written out independently of `RepositoryName`.
private func repositoryName(_ text: String) {
    guard let name = RepositoryName(text) else { return }
    guard name.value == text, text.utf8.count <= 255 else { Finding.report("RepositoryName accepted \(printable(text))") }
    for component in text.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
        guard matchesComponentGrammar(Array(component)) else {
            Finding.report("RepositoryName accepted \(printable(text)) (component \(printable(String(decoding: component, as: UTF8.self))))")
        }
    }
    if name.components.count != text.split(separator: "/", omittingEmptySubsequences: false).count {
        Finding.report("\(printable(text)) has components \(name.components)")
    }
    for ancestor in name.ancestors where !text.hasPrefix(ancestor.value + "/") {
        Finding.report("\(printable(text)) lists ancestor \(ancestor)")
    }
}

/// `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
private func matchesComponentGrammar(_ bytes: [UInt8]) -> Bool {
    func alnum(_ byte: UInt8) -> Bool { (97...122).contains(byte) || (48...57).contains(byte) }
    var index = 0
    func run() -> Bool {
        let start = index
        while index < bytes.count, alnum(bytes[index]) { index += 1 }
        return index > start
    }
    guard run() else { return false }
    while index < bytes.count {
        let byte = bytes[index]
        if byte == UInt8(ascii: ".") {
            index += 1
        } else if byte == UInt8(ascii: "_") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "_") { index += 1 }
        } else if byte == UInt8(ascii: "-") {
            while index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        } else {
            return false
        }
        guard run() else { return false }
    }
    return true
}

private func uploadID(_ text: String) {
    guard let id = UploadID(text) else { return }
    let bytes = Array(text.utf8)
    guard id.value == text, bytes.count == 36 else { Finding.report("UploadID accepted \(printable(text))") }
    for (position, byte) in bytes.enumerated() {
        let dash = [8, 13, 18, 23].contains(position)
        let ok = dash ? byte == UInt8(ascii: "-") : ((48...57).contains(byte) || (97...102).contains(byte))
        if !ok { Finding.report("UploadID accepted \(printable(text))") }
    }
    if UploadID(UploadID.random().value) == nil { Finding.report("a random UploadID does not validate") }
}
