#if canImport(Glibc)
import Glibc
#endif
import Foundation

extension Shell {
    /// Ends a long-running process started with `start`: SIGTERM, then SIGKILL if it has
    /// not exited after `grace` seconds. Returns true when it stopped on SIGTERM.
    @discardableResult
    public static func stop(_ process: ChildProcess, grace: TimeInterval = 20) -> Bool {
        guard process.isRunning else { return true }
        process.terminate()
        if process.wait(timeout: grace) { return true }
        process.signal(SIGKILL)
        process.wait()
        return false
    }

    /// The SHA-256 of `data` as `sha256:<hex>`, computed by coreutils' sha256sum (not by
    /// the code under test).
    public static func sha256Digest(_ data: Data) -> String {
        let result = run("sha256sum", [], input: data)
        return "sha256:" + (result.stdout.split(separator: " ").first.map(String.init) ?? "")
    }

    /// The SHA-512 of `data` as `sha512:<hex>`, by coreutils' sha512sum.
    public static func sha512Digest(_ data: Data) -> String {
        let result = run("sha512sum", [], input: data)
        return "sha512:" + (result.stdout.split(separator: " ").first.map(String.init) ?? "")
    }
}
