#if canImport(Glibc)
import Glibc
#endif
import Registry

public enum PolicyFile {
    public static func load(_ path: String) throws -> AccessPolicy {
        guard let text = TextFile.read(path) else {
            throw ServiceError("cannot read policy \(path): \(String(cString: strerror(errno)))")
        }
        do { return try AccessPolicy(text: text) } catch {
            throw ServiceError("\(path): \(error)")
        }
    }
}
