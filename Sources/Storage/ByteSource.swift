/// A stream of request bytes the store consumes without buffering it whole.
public protocol ByteSource: AnyObject {
    /// Fills up to `buffer.count` bytes and returns how many; 0 at the end of the stream.
    /// Throws `StorageError.bodyInterrupted` when the stream broke off before its end.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) -> Int
}

extension ByteSource {
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
