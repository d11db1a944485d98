#if canImport(Glibc)
import Glibc
#endif

/// `FCGI_STDOUT` records written straight to a FastCGI connection (FastCGI 1.0, §3.3
/// and §5.3): an 8-byte header (version 1, type 6, request id, content length, no
/// padding) and up to 65,535 content bytes, each header and its content in one `writev`.
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

    /// The record header as its 8 bytes in wire order.
    static func header(requestID: Int32, contentLength: Int) -> (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) {
        let id = UInt16(truncatingIfNeeded: requestID), length = UInt16(truncatingIfNeeded: contentLength)
        return (version, stdoutType, UInt8(id >> 8), UInt8(id & 0xff), UInt8(length >> 8), UInt8(length & 0xff), 0, 0)
    }

    /// One record: header and content, however many `writev` calls the socket takes.
    private static func writeAll(header: UnsafeRawBufferPointer, content: UnsafeRawBufferPointer, to fd: Int32) -> Bool {
        var pieces = [header, content]
        var first = 0
        while first < pieces.count {
            let written = withUnsafeTemporaryAllocation(of: iovec.self, capacity: 2) { vectors -> Int in
                var used = 0
                for piece in pieces[first...] {
                    vectors[used] = iovec(iov_base: UnsafeMutableRawPointer(mutating: piece.baseAddress), iov_len: piece.count)
                    used += 1
                }
                return writev(fd, vectors.baseAddress, Int32(used))
            }
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            // Drop what went out: whole pieces, then the front of a partly written one.
            var remaining = written
            while first < pieces.count, remaining >= pieces[first].count {
                remaining -= pieces[first].count
                first += 1
            }
            if first < pieces.count, remaining > 0, let start = pieces[first].baseAddress {
                pieces[first] = UnsafeRawBufferPointer(start: start + remaining, count: pieces[first].count - remaining)
            }
        }
        return true
    }
}
