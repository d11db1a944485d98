import Storage

extension Registry {
    /// The largest page a listing returns, whatever `n` asks for.
    public static let maximumPageSize = 1000

    func tags(of name: RepositoryName, _ request: RegistryRequest) throws(RegistryError) -> RegistryResponse {
        let tags = try storage { () throws(StorageError) in try tagService.tags(of: name) }
        let page = try Page(request, path: Route.tags(name).path, items: tags, key: { $0 })
        return page.response(body: ListingBody.object(["name": .string(name.value), "tags": .strings(page.items)]))
    }

    func catalog(_ request: RegistryRequest) throws(RegistryError) -> RegistryResponse {
        let names = try storage { () throws(StorageError) in try repositories.catalog() }
        let page = try Page(request, path: Route.catalog.path, items: names, key: \.value, where: { mayRead($0, request) })
        return page.response(body: ListingBody.object(["repositories": .strings(page.items.map(\.value))]))
    }
}

/// One page of a listing sorted by `key`: items after `last`, at most `n` (capped at
/// `Registry.maximumPageSize`), and a `Link` to the next page when more remain.
struct Page<Item> {
    let items: [Item]
    let next: String?

    /// `all` must be sorted by `key`; only items passing `include` are listed. Finding
    /// `last` is a binary search, so a page costs O(page + log n), not O(n).
    init(_ request: RegistryRequest, path: String, items all: [Item], key: (Item) -> String,
         extraQuery: String = "", where include: (Item) -> Bool = { _ in true }) throws(RegistryError) {
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
        var start = all.startIndex
        if let last = query["last"] {
            var high = all.endIndex
            while start < high {
                let middle = start + (high - start) / 2
                if key(all[middle]) <= last { start = middle + 1 } else { high = middle }
            }
        }
        var page: [Item] = []
        var position = start
        while position < all.endIndex, page.count < limit {
            if include(all[position]) { page.append(all[position]) }
            position += 1
        }
        let moreRemain = all[position...].contains(where: include)
        items = page
        if moreRemain, let lastItem = page.last {
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

/// Listing bodies (`tags/list`, `_catalog`): a flat object of strings and string arrays,
/// written directly (the hot path of listings; JSONEncoder costs several times more).
enum ListingBody {
    enum Value {
        case string(String)
        case strings([String])
    }

    static func object(_ fields: KeyValuePairs<String, Value>) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        for (index, field) in fields.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONText.appendString(field.key, to: &out)
            out.append(UInt8(ascii: ":"))
            switch field.value {
            case .string(let text):
                JSONText.appendString(text, to: &out)
            case .strings(let texts):
                out.append(UInt8(ascii: "["))
                for (position, text) in texts.enumerated() {
                    if position > 0 { out.append(UInt8(ascii: ",")) }
                    JSONText.appendString(text, to: &out)
                }
                out.append(UInt8(ascii: "]"))
            }
        }
        out.append(UInt8(ascii: "}"))
        return out
    }
}
