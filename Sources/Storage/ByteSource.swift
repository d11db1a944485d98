/// A stream of request bytes the store consumes without buffering it whole.
public protocol ByteSource: AnyObject {
    /// Fills up to `buffer.count` bytes and returns how many; 0 at the end of the stream.
    /// Throws `StorageError.bodyInterrupted` when the stream broke off before its end.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) -> Int
    /// True when others read what the store writes from this source while it is being
    /// written (a mirror's fetch, followed by its pulls): each read then reaches the file
    /// at once, through the page cache, instead of being gathered into large direct writes.
    var isFollowed: Bool { get }
}

extension ByteSource {
    public var isFollowed: Bool { false }

    /// Reads the whole stream into memory, refusing more than `limit` bytes
    /// (returns nil when the stream is longer).
    public func readAll(limit: Int) throws(StorageError) -> [UInt8]? {
        var result: [UInt8] = []
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer { chunk.deallocate() }
        while true {
            let count = try read(into: chunk)
            if count == 0 { return result }
            if result.count + count > limit { return nil }
            result.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[0..<count]))
        }
    }
}
