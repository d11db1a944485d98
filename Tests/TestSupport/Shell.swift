#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Runs programs for tests: real clients (curl, skopeo, umoci) and real servers.
public enum Shell {
    public struct Result: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
        public var succeeded: Bool { status == 0 }
    }

    /// Runs `executable` with `arguments` to completion, capturing its output. With a
    /// `timeout`, a run still going after that many seconds is ended (SIGTERM, SIGKILL 5 s
    /// later) and fails with status -2, saying so on stderr.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                           input: Data? = nil, timeout: TimeInterval? = nil) -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
        process.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        process.environment = merged
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let inputPipe = Pipe()
        process.standardInput = input == nil ? FileHandle.nullDevice : inputPipe
        do { try process.run() } catch {
            return Result(status: -1, stdout: "", stderr: "cannot start \(executable): \(error)")
        }
        if let input {
            DispatchQueue.global().async {
                inputPipe.fileHandleForWriting.write(input)
                try? inputPipe.fileHandleForWriting.close()
            }
        }
        let timedOut = TimeoutFlag()
        let pid = process.processIdentifier
        let watchdog = DispatchWorkItem {
            guard process.isRunning else { return }
            timedOut.set()
            kill(pid, SIGTERM)
            DispatchQueue.global().asyncAfter(deadline: .now() + 5) { if process.isRunning { kill(pid, SIGKILL) } }
        }
        if let timeout { DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog) }
        // Read both pipes concurrently so neither fills up and blocks the child.
        let errBox = DataBox()
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
        var status = process.terminationStatus
        if timedOut.isSet, let timeout {
            stderr += "\n[\(executable) \(arguments.joined(separator: " ")) was ended after \(Int(timeout)) s]"
            status = -2
        }
        return Result(status: status, stdout: String(decoding: stdout, as: UTF8.self), stderr: stderr)
    }

    /// Starts a long-running process with its output going to `logFile`.
    public static func start(_ executable: String, _ arguments: [String], logFile: String,
                             environment: [String: String] = [:], standardInput: FileHandle? = nil,
                             append: Bool = false) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        process.environment = merged
        // O_APPEND: several processes may share one log without overwriting each other.
        let fd = open(logFile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (append ? 0 : O_TRUNC), 0o644)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
        let log = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        process.standardOutput = log
        process.standardError = log
        process.standardInput = standardInput ?? FileHandle.nullDevice
        try process.run()
        return process
    }
}

private final class DataBox: @unchecked Sendable {
    var data = Data()
}

private final class TimeoutFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
