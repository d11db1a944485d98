#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import FastCGI
import Locks
import Testing
import TestSupport

/// A file range sent down a FastCGI connection (`sendfile` for the contents) arrives as
/// FCGI_STDOUT records of the request's id that together hold exactly those bytes.
@Suite struct StdoutRecordsTests {
    /// A connected pair of Unix stream sockets, as nginx and the worker hold one.
    func socketPair() throws -> (sender: Int32, receiver: Int32) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { throw CocoaError(.fileReadUnknown) }
        return (fds[0], fds[1])
    }

    /// Reads from `fd` on a thread of its own until the other end closes.
    func drain(_ fd: Int32) -> () -> [UInt8] {
        let received = Locked<[UInt8]>([])
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                received.withLock { $0.append(contentsOf: buffer[0..<count]) }
            }
            done.signal()
        }
        return {
            done.wait()
            return received.withLock { $0 }
        }
    }

    /// The records' contents in order; nil when a header is not version 1, FCGI_STDOUT,
    /// `requestID`, unpadded, or a record is cut short.
    func contents(of stream: [UInt8], requestID: UInt16) -> [UInt8]? {
        var offset = 0, content: [UInt8] = []
        while offset < stream.count {
            guard stream.count - offset >= 8 else { return nil }
            let header = Array(stream[offset..<(offset + 8)])
            let id = UInt16(header[2]) << 8 | UInt16(header[3]), length = Int(header[4]) << 8 | Int(header[5])
            guard header[0] == 1, header[1] == 6, id == requestID, header[6] == 0, length > 0,
                  stream.count - offset - 8 >= length else { return nil }
            content += stream[(offset + 8)..<(offset + 8 + length)]
            offset += 8 + length
        }
        return content
    }

    @Test func aFileRangeArrivesAsRecordsHoldingExactlyItsBytes() throws {
        let directory = TemporaryDirectory(prefix: "berth-stdout-records")
        defer { directory.remove() }
        var random = SeededBytes(seed: 61)
        let bytes = random.next(300_001)
        let path = "\(directory.path)/blob"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let file = open(path, O_RDONLY)
        defer { close(file) }
        let (sender, receiver) = try socketPair()
        let received = drain(receiver)
        // Ranges that start and end off record boundaries, one smaller than a record.
        let ranges = [(offset: 1, count: 65_528 * 2 + 3), (offset: 131_060, count: 100), (offset: 131_160, count: 168_841)]
        for range in ranges {
            #expect(StdoutRecords.send(file: file, offset: UInt64(range.offset), count: range.count, requestID: 513, to: sender) == .sent)
        }
        close(sender)
        let stream = received()
        close(receiver)
        #expect(contents(of: stream, requestID: 513) == Array(bytes[1...]))
    }

    @Test func aFileThatEndsBeforeTheRangeIsAFileFailure() throws {
        let directory = TemporaryDirectory(prefix: "berth-stdout-records")
        defer { directory.remove() }
        let path = "\(directory.path)/short"
        try Data([UInt8](repeating: 7, count: 1000)).write(to: URL(fileURLWithPath: path))
        let file = open(path, O_RDONLY)
        defer { close(file) }
        let (sender, receiver) = try socketPair()
        let received = drain(receiver)
        #expect(StdoutRecords.send(file: file, offset: 500, count: 2000, requestID: 1, to: sender) == .fileFailed(errno: EIO))
        close(sender)
        _ = received()
        close(receiver)
    }
}
