#if canImport(Glibc)
import Glibc
#endif

enum TextFile {
    /// The whole file as UTF-8 text; nil (errno set) when it cannot be read.
    static func read(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count == 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The last `bytes` bytes of the file as UTF-8 text (all of a shorter file).
    static func tail(_ path: String, bytes count: Int) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        if fseeko(file, 0, SEEK_END) == 0 {
            let size = ftello(file)
            _ = fseeko(file, max(0, size - off_t(count)), SEEK_SET)
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let read = fread(&buffer, 1, buffer.count, file)
            if read == 0 { break }
            bytes.append(contentsOf: buffer[0..<read])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
