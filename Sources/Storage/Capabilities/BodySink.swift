#if canImport(Glibc)
import Glibc
#endif

/// Where the body of an answer produced after its headers goes: the client's connection,
/// however the server carries it there.
public protocol BodySink {
    /// Sends `bytes`; false once the client is gone.
    func write(_ bytes: UnsafeRawBufferPointer) -> Bool
    /// Sends `count` bytes of the open file `fd` from `offset`. A server that can move them
    /// from the page cache to its connection without copying them through this process
    /// (`sendfile`) does; the default reads them through a buffer into `write`.
    func send(file fd: Int32, offset: UInt64, count: Int) -> FileSendOutcome
}

/// How sending part of a file ended.
public enum FileSendOutcome: Equatable, Sendable {
    case sent
    /// The connection failed: the client went away.
    case clientGone
    /// The file could not be read (`errno`; `EIO` when it ended before `count` bytes).
    case unreadable(errno: Int32)
}

extension BodySink {
    public func send(file fd: Int32, offset: UInt64, count: Int) -> FileSendOutcome {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: min(max(count, 1), 1 << 20), alignment: 16)
        defer { buffer.deallocate() }
        var done = 0
        while done < count {
            let wanted = min(buffer.count, count - done)
            let read = pread(fd, buffer.baseAddress, wanted, off_t(clamping: offset) + off_t(done))
            if read < 0, errno == EINTR { continue }
            guard read > 0 else { return .unreadable(errno: read < 0 ? errno : EIO) }
            guard write(UnsafeRawBufferPointer(rebasing: buffer[0..<read])) else { return .clientGone }
            done += read
        }
        return .sent
    }
}

/// A sink that hands every byte to a function (tests, and answers assembled in memory).
public struct ClosureBodySink: BodySink {
    private let sendBytes: (UnsafeRawBufferPointer) -> Bool

    /// `write` is called with each run of bytes and returns false once the receiver is gone.
    public init(_ write: @escaping (UnsafeRawBufferPointer) -> Bool) {
        sendBytes = write
    }

    public func write(_ bytes: UnsafeRawBufferPointer) -> Bool { sendBytes(bytes) }
}
