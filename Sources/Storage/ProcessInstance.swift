#if canImport(Glibc)
import Glibc
#endif

/// This process's name in files several processes write side by side (per-process metrics):
/// `<host>-<pid>-<random>`, so that neither two nodes on one shared store nor a process that
/// gets a dead one's pid (workers are restarted) ever overwrite another's file.
public struct ProcessInstance: Sendable, Equatable {
    /// Only `[a-z0-9.-]`: safe as part of a file name.
    public let name: String

    /// The running process's instance, fixed at its first use.
    public static let current = ProcessInstance()

    private init() {
        var buffer = [CChar](repeating: 0, count: 256)
        let host = gethostname(&buffer, 255) == 0 ? buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) } : []
        var safeHost = ""
        for byte in host.prefix(32) {
            let lower = byte >= 65 && byte <= 90 ? byte + 32 : byte
            let allowed = (lower >= 97 && lower <= 122) || (lower >= 48 && lower <= 57) || lower == 46 || lower == 45
            safeHost.append(Character(Unicode.Scalar(allowed ? lower : 45)))
        }
        var random = SystemRandomNumberGenerator()
        let suffix = String(random.next() as UInt64, radix: 16)
        name = "\(safeHost.isEmpty ? "host" : safeHost)-\(getpid())-\(suffix)"
    }
}
