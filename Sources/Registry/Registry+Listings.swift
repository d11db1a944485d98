import Storage

extension Registry {
    /// The largest page a listing returns, whatever `n` asks for.
    public static let maximumPageSize = 1000

    func tags(of name: RepositoryName, _ request: RegistryRequest) throws -> RegistryResponse {
        let page = try Page(request, path: "/v2/\(name.value)/tags/list", items: try manifests.tags(of: name), key: { $0 })
        return page.response(body: JSON.object(["name": .string(name.value), "tags": .strings(page.items)]))
    }

    func catalog(_ request: RegistryRequest) throws -> RegistryResponse {
        let page = try Page(request, path: "/v2/_catalog", items: try repositories.catalog().filter { mayRead($0, request) }.map(\.value), key: { $0 })
        return page.response(body: JSON.object(["repositories": .strings(page.items)]))
    }
}

/// One page of a listing sorted by `key`: items after `last`, at most `n` (capped at
/// `Registry.maximumPageSize`), and a `Link` to the next page when more remain.
struct Page<Item> {
    let items: [Item]
    let next: String?

    init(_ request: RegistryRequest, path: String, items all: [Item], key: (Item) -> String,
         extraQuery: String = "") throws(RegistryError) {
        let query = request.query
        var limit = Registry.maximumPageSize
        if let text = query["n"] {
            switch DecimalNumber.parse(text) {
            case .value(let number): limit = Int(min(number, UInt64(Registry.maximumPageSize)))
            case .tooLarge: limit = Registry.maximumPageSize
            case .invalid:
                throw RegistryError(.unsupported, "n=\(String(text.prefix(40))) is not a non-negative decimal number")
            }
        }
        var remaining = all[...]
        if let last = query["last"] { remaining = remaining.drop { key($0) <= last } }
        let page = Array(remaining.prefix(limit))
        items = page
        if remaining.count > page.count, let lastItem = page.last {
            next = "<\(path)?n=\(limit)&last=\(PercentEncoding.encodeQueryValue(key(lastItem)))\(extraQuery)>; rel=\"next\""
        } else {
            next = nil
        }
    }

    func response(body: [UInt8], contentType: String = "application/json",
                  extraHeaders: [(name: String, value: String)] = []) -> RegistryResponse {
        var headers: [(name: String, value: String)] = [("Content-Type", contentType)] + extraHeaders
        if let next { headers.append(("Link", next)) }
        return RegistryResponse(status: 200, headers: headers, body: body)
    }
}

enum PercentEncoding {
    /// Escapes everything but unreserved characters and `/`.
    static func encodeQueryValue(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case 48...57, 65...90, 97...122, UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }
}
