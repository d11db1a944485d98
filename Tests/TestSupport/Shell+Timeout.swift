#if canImport(Glibc)
import Glibc
#endif
import Foundation

extension Shell {
    /// Runs `executable` like `run(_:_:environment:input:)`, but ends it if it is still
    /// running after `timeout` seconds (SIGTERM, then SIGKILL 5 s later). A run that had
    /// to be ended fails with status -2 and says so on stderr.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                           timeout: TimeInterval) -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
        process.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        process.environment = merged
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            return Result(status: -1, stdout: "", stderr: "cannot start \(executable): \(error)")
        }
        let timedOut = Flag()
        let pid = process.processIdentifier
        let watchdog = DispatchWorkItem {
            guard process.isRunning else { return }
            timedOut.set()
            kill(pid, SIGTERM)
            DispatchQueue.global().asyncAfter(deadline: .now() + 5) {
                if process.isRunning { kill(pid, SIGKILL) }
            }
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        let errBox = OutputBox()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errBox.data = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        watchdog.cancel()
        var stderr = String(decoding: errBox.data, as: UTF8.self)
        if timedOut.isSet {
            stderr += "\n[\(executable) \(arguments.joined(separator: " ")) was ended after \(Int(timeout)) s]"
            return Result(status: -2, stdout: String(decoding: stdout, as: UTF8.self), stderr: stderr)
        }
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: stderr)
    }

    /// Ends a long-running process started with `start`: SIGTERM, then SIGKILL if it has
    /// not exited after `grace` seconds. Returns true when it stopped on SIGTERM.
    @discardableResult
    public static func stop(_ process: Process, grace: TimeInterval = 20) -> Bool {
        guard process.isRunning else { return true }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return false
        }
        process.waitUntilExit()
        return true
    }

    /// The SHA-256 of `data` as `sha256:<hex>`, computed by coreutils' sha256sum (not by
    /// the code under test).
    public static func sha256Digest(_ data: Data) -> String {
        let result = run("sha256sum", [], input: data)
        return "sha256:" + (result.stdout.split(separator: " ").first.map(String.init) ?? "")
    }
}

private final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

private final class OutputBox: @unchecked Sendable {
    var data = Data()
}
