#if canImport(Glibc)
import Glibc
#endif

/// `FCGI_STDOUT` records written straight to a FastCGI connection (FastCGI 1.0, §3.3
/// and §5.3): an 8-byte header (version 1, type 6, request id, content length, no
/// padding) and up to 65,535 content bytes; from memory each header and its content in
/// one `writev`, from a file the content by `sendfile`.
enum StdoutRecords {
    /// Content per record: the largest multiple of 8 a record can hold.
    static let maximumContent = 65_528
    static let version: UInt8 = 1
    static let stdoutType: UInt8 = 6

    /// Writes all of `bytes` as records for `requestID` to `fd`; false once a write failed.
    static func write(_ bytes: UnsafeRawBufferPointer, requestID: Int32, to fd: Int32) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        var offset = 0
        while offset < bytes.count {
            let count = min(bytes.count - offset, maximumContent)
            var header = header(requestID: requestID, contentLength: count)
            let sent = withUnsafeMutableBytes(of: &header) { headerBytes in
                writeAll(header: UnsafeRawBufferPointer(headerBytes), content: UnsafeRawBufferPointer(start: base + offset, count: count), to: fd)
            }
            guard sent else { return false }
            offset += count
        }
        return true
    }

    /// Writes `count` bytes of `file` from `offset` as records for `requestID` to `fd`,
    /// each header with `write` and its content with `sendfile` (from the page cache to
    /// the connection, never through this process).
    static func send(file: Int32, offset: UInt64, count: Int, requestID: Int32, to fd: Int32) -> FileSendResult {
        var position = off_t(clamping: offset)
        var remaining = count
        while remaining > 0 {
            let content = min(remaining, maximumContent)
            var header = header(requestID: requestID, contentLength: content)
            let headerSent = withUnsafeBytes(of: &header) { writeAll(header: $0, content: UnsafeRawBufferPointer(start: nil, count: 0), to: fd) }
            guard headerSent else { return .connectionFailed }
            var left = content
            while left > 0 {
                let sent = sendfile(fd, file, &position, left)
                if sent < 0, errno == EINTR { continue }
                if sent < 0 { return isConnectionError(errno) ? .connectionFailed : .fileFailed(errno: errno) }
                if sent == 0 { return .fileFailed(errno: EIO) }
                left -= sent
            }
            remaining -= content
        }
        return .sent
    }

    /// Errors `sendfile` reports for its socket end rather than its file.
    private static func isConnectionError(_ code: Int32) -> Bool {
        [EPIPE, ECONNRESET, ENOTCONN, ESHUTDOWN, ECONNABORTED].contains(code)
    }

    /// The record header as its 8 bytes in wire order.
    static func header(requestID: Int32, contentLength: Int) -> (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) {
        let id = UInt16(truncatingIfNeeded: requestID), length = UInt16(truncatingIfNeeded: contentLength)
        return (version, stdoutType, UInt8(id >> 8), UInt8(id & 0xff), UInt8(length >> 8), UInt8(length & 0xff), 0, 0)
    }

    /// One record: header and content, however many `writev` calls the socket takes.
    private static func writeAll(header: UnsafeRawBufferPointer, content: UnsafeRawBufferPointer, to fd: Int32) -> Bool {
        var sent = 0
        let total = header.count + content.count
        while sent < total {
            // What is left: the rest of the header (if any), then the rest of the content.
            let headerSent = min(sent, header.count), contentSent = sent - headerSent
            var vectors = (iovec(iov_base: UnsafeMutableRawPointer(mutating: header.baseAddress), iov_len: 0),
                           iovec(iov_base: UnsafeMutableRawPointer(mutating: content.baseAddress), iov_len: 0))
            vectors.0.iov_base = vectors.0.iov_base.map { $0 + headerSent }
            vectors.0.iov_len = header.count - headerSent
            vectors.1.iov_base = vectors.1.iov_base.map { $0 + contentSent }
            vectors.1.iov_len = content.count - contentSent
            let written = withUnsafePointer(to: &vectors) { pointer in
                pointer.withMemoryRebound(to: iovec.self, capacity: 2) { writev(fd, $0, 2) }
            }
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            sent += written
        }
        return true
    }
}

/// How sending part of a file down a FastCGI connection ended.
public enum FileSendResult: Equatable, Sendable {
    case sent
    case connectionFailed
    /// Reading the file failed (`EIO` when it ended early); the answer is broken off.
    case fileFailed(errno: Int32)
}
