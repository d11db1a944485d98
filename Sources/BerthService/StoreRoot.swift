#if canImport(Glibc)
import Glibc
#endif
import Storage

/// Makes the storage root absolute and creates its bookkeeping folders.
public enum StoreRoot {
    public static func prepare(_ path: String) throws -> String {
        for directory in StoreLayout(root: path).requiredDirectories {
            if mkdir(directory, 0o755) != 0, errno != EEXIST {
                throw ServiceError("cannot create \(directory): \(String(cString: strerror(errno)))")
            }
        }
        guard let resolved = realpath(path, nil) else {
            throw ServiceError("cannot resolve \(path): \(String(cString: strerror(errno)))")
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
