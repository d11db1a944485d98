import CFastCGI

/// One accepted FastCGI request: its params, its body as a stream, and the way to
/// answer it. Valid only inside the handler call that received it.
public final class FastCGIExchange {
    private let request: UnsafeMutablePointer<FCGX_Request>
    private var answered = false
    /// Which server thread serves it, below `FastCGIServer.threadCount`: one request at a
    /// time per index, so per-thread state needs no lock.
    public let threadIndex: Int
    /// False on an accept thread, which answers pulls and must not wait on anything slow
    /// (the handler answers `.moveToWaitingThread` instead); true elsewhere.
    public let mayWait: Bool

    init(request: UnsafeMutablePointer<FCGX_Request>, threadIndex: Int, mayWait: Bool) {
        self.request = request
        self.threadIndex = threadIndex
        self.mayWait = mayWait
    }

    /// A FastCGI param (`REQUEST_METHOD`, `REQUEST_URI`, `HTTP_HOST`, …); the first of
    /// duplicates, as libfcgi returns it.
    public func param(_ name: String) -> String? {
        guard let value = FCGX_GetParam(name, request.pointee.envp) else { return nil }
        return String(cString: value)
    }

    /// Reads up to `buffer.count` body bytes; 0 at the end of the body. Throws
    /// `FastCGIError.bodyInterrupted` when the client or nginx cut the body off.
    public func readBody(into buffer: UnsafeMutableRawBufferPointer) throws(FastCGIError) -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        let wanted = Int32(min(buffer.count, Int(Int32.max)))
        let count = FCGX_GetStr(base.assumingMemoryBound(to: CChar.self), wanted, request.pointee.in)
        if count < wanted, FCGX_GetError(request.pointee.in) != 0 { throw .bodyInterrupted }
        return Int(max(count, 0))
    }

    /// When nginx has sent the whole request, lets the connection close at once.
    ///
    /// By default libfcgi ends a connection with shutdown, then polls and reads until
    /// nginx closes its side, so that unread request bytes cannot reset the answer;
    /// that sleep and wakeup per request was a tenth of the pull path's CPU on the
    /// reference machine. Once the body's end has been read (bodiless requests: the
    /// empty stream is drained here, up to a small bound) nothing can be left unread,
    /// and the request is marked detached, which makes libfcgi simply close.
    func closeWithoutLingering() {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 4096) { scratch in
            var drained = 0
            while drained < 64 * 1024 {
                let count = FCGX_GetStr(scratch.baseAddress, Int32(scratch.count), request.pointee.in)
                if count <= 0 { break }
                drained += Int(count)
            }
        }
        if FCGX_HasSeenEOF(request.pointee.in) != 0, FCGX_GetError(request.pointee.in) == 0 {
            _ = FCGX_Detach(request)
        }
    }

    /// Writes the answer: a CGI `Status` line, the headers, then the body. Only the
    /// first call writes.
    public func respond(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        guard !answered else { return }
        answered = true
        var bytes = Self.head(status: status, headers: headers, capacity: body.count)
        bytes.append(contentsOf: body)
        put(bytes)
    }

    /// Writes the status line and headers of an answer whose body follows through
    /// `write`, as it is produced. Only the first answer of an exchange writes.
    public func respondHead(status: Int, headers: [(name: String, value: String)]) {
        guard !answered else { return }
        answered = true
        put(Self.head(status: status, headers: headers, capacity: 0))
        _ = FCGX_FFlush(request.pointee.out)
    }

    /// Sends body bytes after `respondHead` at once (nginx passes them on as they come
    /// with `X-Accel-Buffering: no`); false once the connection failed.
    ///
    /// libfcgi's output stream cuts everything into 8 KiB records, one `write` each; a
    /// streamed blob goes instead as `FCGI_STDOUT` records of up to 64 KiB written here
    /// straight to the connection (`StdoutRecords`), after libfcgi's buffer is flushed,
    /// so the order on the wire stays what libfcgi would have sent. Its own close record
    /// still ends the stream.
    public func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.baseAddress != nil, bytes.count > 0 else { return true }
        guard FCGX_FFlush(request.pointee.out) == 0, request.pointee.ipcFd >= 0 else { return false }
        return StdoutRecords.write(bytes, requestID: request.pointee.requestId, to: request.pointee.ipcFd)
    }

    /// Sends `count` bytes of the open file `file` from `offset` after `respondHead`, as
    /// `write` does but with the content moved by `sendfile` (no copy through this process).
    public func send(file: Int32, offset: UInt64, count: Int) -> FileSendResult {
        guard count > 0 else { return .sent }
        guard FCGX_FFlush(request.pointee.out) == 0, request.pointee.ipcFd >= 0 else { return .connectionFailed }
        return StdoutRecords.send(file: file, offset: offset, count: count, requestID: request.pointee.requestId, to: request.pointee.ipcFd)
    }

    private func put(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            _ = FCGX_PutStr(base.assumingMemoryBound(to: CChar.self), Int32(buffer.count), request.pointee.out)
        }
    }

    private static func head(status: Int, headers: [(name: String, value: String)], capacity: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256 + capacity)
        bytes.append(contentsOf: "Status: \(status) \(HTTPStatus.reason(status))\r\n".utf8)
        for header in headers where Self.isSafe(header.name, forbidding: 58) && Self.isSafe(header.value, forbidding: 13) {
            bytes.append(contentsOf: header.name.utf8)
            bytes.append(contentsOf: [58, 32])
            bytes.append(contentsOf: header.value.utf8)
            bytes.append(contentsOf: [13, 10])
        }
        bytes.append(contentsOf: [13, 10])
        return bytes
    }
}

extension FastCGIExchange {
    /// A header part must not smuggle a line break (or, for a name, a colon) into the answer.
    static func isSafe(_ text: String, forbidding extra: UInt8) -> Bool {
        var text = text
        return !text.isEmpty && text.withUTF8 { bytes in
            for byte in bytes where byte == 10 || byte == 13 || byte == extra { return false }
            return true
        }
    }
}

enum HTTPStatus {
    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 206: "Partial Content"
        case 301: "Moved Permanently"
        case 307: "Temporary Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 409: "Conflict"
        case 413: "Payload Too Large"
        case 416: "Range Not Satisfiable"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 503: "Service Unavailable"
        case 507: "Insufficient Storage"
        default: "Status"
        }
    }
}
