#if canImport(Glibc)
import Glibc
#endif
import CCurl
import Storage

/// One HTTP request to an upstream, driven by its reader: libcurl's multi interface runs
/// only inside `waitForHeaders` and `read`, so the body arrives at the pace it is read
/// (once the bytes waiting are as many as the current `read` can take, or one chunk
/// outside a `read`, the transfer pauses). Used by one thread at a time.
public final class HTTPTransfer: ByteSource {
    /// The final answer's status (after redirects); 0 before the headers arrived.
    public private(set) var status = 0
    /// The final answer's headers, names lowercased, in the order received.
    public private(set) var headers: [(name: String, value: String)] = []

    private let easy: UnsafeMutableRawPointer
    private let multi: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
    private var pending: [UInt8] = []
    private var pendingStart = 0
    /// How many body bytes may wait before the transfer pauses: what the `read` under
    /// way can take; 1 outside a `read` (waiting for the headers: one chunk is kept).
    private var wanted = 1
    private var lines: [String] = []
    private var bodyStarted = false
    private var paused = false
    private var finished = false
    private var result = CURLE_OK
    /// Kept until the easy handle is cleaned up: its connection goes back to the share.
    private let shared: CurlShare?

    init(method: HTTPClient.Method, url: String, headers: [(name: String, value: String)],
         options: HTTPClient.Options, wholeRequestTimeout: Bool, shared: CurlShare? = nil) throws(HTTPError) {
        guard let easy = curl_easy_init() else { throw .transport("curl_easy_init failed") }
        guard let multi = curl_multi_init() else {
            curl_easy_cleanup(easy)
            throw .transport("curl_multi_init failed")
        }
        self.easy = easy
        self.multi = multi
        self.shared = shared
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        for header in headers {
            headerList = curl_slist_append(headerList, "\(header.name): \(header.value)")
        }
        // Without it libcurl adds `Expect:` to nothing here, but `Accept: */*` to every request.
        if !headers.contains(where: { $0.name.lowercased() == "accept" }) {
            headerList = curl_slist_append(headerList, "Accept: */*")
        }
        let context = Unmanaged.passUnretained(self).toOpaque()
        var failed = false
        func set(_ code: CURLcode) { if code != CURLE_OK { failed = true } }
        set(berth_curl_easy_setopt_string(easy, CURLOPT_URL, url))
        set(berth_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1))
        set(berth_curl_easy_setopt_long(easy, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1))
        if let handle = shared?.handle { set(berth_curl_easy_use_share(easy, handle)) }
        set(berth_curl_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 1))
        set(berth_curl_easy_setopt_long(easy, CURLOPT_MAXREDIRS, 5))
        set(berth_curl_easy_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https"))
        set(berth_curl_easy_setopt_string(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"))
        set(berth_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT, options.connectTimeout))
        set(berth_curl_easy_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, 1))
        set(berth_curl_easy_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, options.stallTimeout))
        if wholeRequestTimeout { set(berth_curl_easy_setopt_long(easy, CURLOPT_TIMEOUT, options.requestTimeout)) }
        if method == .head { set(berth_curl_easy_setopt_long(easy, CURLOPT_NOBODY, 1)) }
        if let caFile = options.caFile { set(berth_curl_easy_setopt_string(easy, CURLOPT_CAINFO, caFile)) }
        set(berth_curl_easy_setopt_string(easy, CURLOPT_USERAGENT, options.userAgent))
        set(berth_curl_easy_setopt_pointer(easy, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headerList)))
        set(berth_curl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, UnsafeMutableRawPointer(errorBuffer)))
        set(berth_curl_easy_setopt_callback(easy, CURLOPT_WRITEFUNCTION, httpBodyCallback))
        set(berth_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, context))
        set(berth_curl_easy_setopt_callback(easy, CURLOPT_HEADERFUNCTION, httpHeaderCallback))
        set(berth_curl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, context))
        guard !failed, curl_multi_add_handle(multi, easy) == CURLM_OK else {
            throw .transport("libcurl refused the request options")
        }
    }

    deinit {
        curl_multi_remove_handle(multi, easy)
        curl_easy_cleanup(easy)
        curl_multi_cleanup(multi)
        curl_slist_free_all(headerList)
        errorBuffer.deallocate()
    }

    /// The first value of header `name` (lowercase) of the final answer.
    public func header(_ name: String) -> String? { headers.first { $0.name == name }?.value }

    /// The body's length as announced (`Content-Length`), if it was.
    public var contentLength: UInt64? { header("content-length").flatMap { UInt64($0) } }

    /// Runs the transfer until the final answer's headers are in (its body begun, or the
    /// transfer over).
    public func waitForHeaders() throws(HTTPError) {
        while !bodyStarted && !finished { try step() }
        if finished, result != CURLE_OK { throw .transport(failureReason) }
        var code = 0
        _ = berth_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &code)
        status = code
        headers = lines.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
            return (name, String(value))
        }
    }

    /// Reads body bytes as they arrive; 0 at the end. A transfer that fails midway
    /// throws `bodyInterrupted` (`failureReason` says why). Once some bytes are in, it
    /// also takes what libcurl can hand over without waiting, up to `batchLimit`: fewer,
    /// larger writes for the reader, and no byte kept waiting.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) -> Int {
        wanted = max(1, min(buffer.count, Self.batchLimit))
        defer { wanted = 1 }
        while pendingStart == pending.count {
            pending.removeAll(keepingCapacity: true)
            pendingStart = 0
            if finished {
                guard result == CURLE_OK else { throw .bodyInterrupted }
                return 0
            }
            if paused {
                paused = false
                curl_easy_pause(easy, CURLPAUSE_CONT)
                continue
            }
            do { try step() } catch { throw .bodyInterrupted }
        }
        var count = takePending(into: buffer)
        let limit = min(buffer.count, Self.batchLimit)
        while count < limit, !finished, !paused {
            pending.removeAll(keepingCapacity: true)
            pendingStart = 0
            do { try perform() } catch { break }
            guard pendingStart < pending.count else { break }
            count += takePending(into: UnsafeMutableRawBufferPointer(rebasing: buffer[count..<limit]))
        }
        return count
    }

    /// Moves body bytes that have already arrived (with the headers) to `buffer`, without
    /// waiting for more; 0 when none is waiting. `read` goes on after them.
    public func readArrived(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        takePending(into: buffer)
    }

    /// Most bytes one `read` gathers from what has already arrived.
    static let batchLimit = 256 << 10

    /// Moves pending bytes to the front of `buffer`; how many.
    private func takePending(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let count = min(buffer.count, pending.count - pendingStart)
        pending.withUnsafeBytes { bytes in
            guard let base = bytes.baseAddress, let target = buffer.baseAddress else { return }
            target.copyMemory(from: base + pendingStart, byteCount: count)
        }
        pendingStart += count
        return count
    }

    /// The whole body, refusing more than `limit` bytes.
    public func readAll(upTo limit: Int) throws(HTTPError) -> [UInt8] {
        do {
            guard let body = try readAll(limit: limit) else { throw HTTPError.tooLarge(limit: limit) }
            return body
        } catch let error as HTTPError {
            throw error
        } catch {
            throw .transport(failureReason)
        }
    }

    /// What libcurl said about a failed transfer.
    public var failureReason: String {
        let message = String(cString: errorBuffer)
        return message.isEmpty ? String(cString: curl_easy_strerror(result)) : message
    }

    /// One round of the multi interface: work, then wait (at most a second) for the socket.
    private func step() throws(HTTPError) {
        try perform()
        if finished || (bodyStarted && (pending.count - pendingStart) > 0) { return }
        var ready: Int32 = 0
        _ = curl_multi_poll(multi, nil, 0, 1000, &ready)
    }

    /// Lets libcurl do what it can without waiting; notes the end of the transfer.
    private func perform() throws(HTTPError) {
        var running: Int32 = 0
        let code = curl_multi_perform(multi, &running)
        guard code == CURLM_OK else { throw .transport(String(cString: curl_multi_strerror(code))) }
        guard running == 0 else { return }
        var queued: Int32 = 0
        while let message = curl_multi_info_read(multi, &queued) {
            if message.pointee.msg == CURLMSG_DONE { result = message.pointee.data.result }
        }
        finished = true
    }

    fileprivate func receivedBody(_ bytes: UnsafeRawBufferPointer) -> Int {
        bodyStarted = true
        // libcurl takes in whatever the socket holds in one round (a megabyte or more
        // from a fast upstream) before it returns: pausing once the reader has enough
        // lets its first bytes go on at once, and keeps `pending` small.
        if pending.count - pendingStart >= wanted {
            paused = true
            return Int(CURL_WRITEFUNC_PAUSE)
        }
        pending.append(contentsOf: bytes)
        return bytes.count
    }

    fileprivate func receivedHeader(_ bytes: UnsafeRawBufferPointer) -> Int {
        var line = String(decoding: bytes, as: UTF8.self)
        while line.hasSuffix("\n") || line.hasSuffix("\r") || line.hasSuffix("\r\n") { line.removeLast() }
        if line.hasPrefix("HTTP/") {
            lines = []  // a new answer (after a redirect or a 100): only the last one counts
        } else if !line.isEmpty {
            lines.append(line)
        }
        return bytes.count
    }
}

private func httpBodyCallback(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int,
                                  _ context: UnsafeMutableRawPointer?) -> Int {
    guard let context else { return 0 }
    let transfer = Unmanaged<HTTPTransfer>.fromOpaque(context).takeUnretainedValue()
    return transfer.receivedBody(UnsafeRawBufferPointer(start: data, count: size * count))
}

private func httpHeaderCallback(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int,
                                    _ context: UnsafeMutableRawPointer?) -> Int {
    guard let context else { return 0 }
    let transfer = Unmanaged<HTTPTransfer>.fromOpaque(context).takeUnretainedValue()
    return transfer.receivedHeader(UnsafeRawBufferPointer(start: data, count: size * count))
}
