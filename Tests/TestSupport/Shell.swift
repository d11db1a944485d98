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

    /// How long a run without its own `timeout` may take: nothing a test starts waits forever.
    public static let defaultTimeout: TimeInterval = 900

    /// Runs `executable` with `arguments` to completion, capturing its output. A run still
    /// going after `timeout` seconds (`defaultTimeout` when nil) is ended, with everything
    /// in its process group (SIGTERM, SIGKILL 5 s later), and fails with status -2, saying
    /// so on stderr. Output goes through files, not pipes: a daemon the program leaves
    /// behind (or one another test starts meanwhile) cannot hold this run open.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                           input: Data? = nil, timeout: TimeInterval? = nil) -> Result {
        let scratch = NSTemporaryDirectory() + "berth-shell-" + UUID().uuidString
        let outFile = scratch + ".out", errFile = scratch + ".err", inFile = scratch + ".in"
        defer { for file in [outFile, errFile, inFile] { unlink(file) } }
        if let input { _ = FileManager.default.createFile(atPath: inFile, contents: input) }
        let inFD = open(input == nil ? "/dev/null" : inFile, O_RDONLY | O_CLOEXEC)
        let outFD = open(outFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let errFD = open(errFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer { for fd in [inFD, outFD, errFD] where fd >= 0 { close(fd) } }
        guard inFD >= 0, outFD >= 0, errFD >= 0 else {
            return Result(status: -1, stdout: "", stderr: "cannot open the output files of \(executable): errno \(errno)")
        }
        let process: ChildProcess
        do {
            process = try ChildProcess.spawn(executable, arguments, environment: environment,
                                             standardInput: inFD, standardOutput: outFD, standardError: errFD)
        } catch {
            return Result(status: -1, stdout: "", stderr: "\(error)")
        }
        let limit = timeout ?? defaultTimeout
        var timedOut = false
        if !process.wait(timeout: limit) {
            timedOut = true
            process.signalGroup(SIGTERM)
            if !process.wait(timeout: 5) {
                process.signalGroup(SIGKILL)
                process.wait()
            }
        }
        let stdout = (try? Data(contentsOf: URL(fileURLWithPath: outFile))) ?? Data()
        var stderr = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: errFile))) ?? Data(), as: UTF8.self)
        var status = process.terminationStatus
        if process.wasSignalled { status = 128 + status }
        if timedOut {
            stderr += "\n[\(executable) \(arguments.joined(separator: " ")) was ended after \(Int(limit)) s]"
            status = -2
        }
        return Result(status: status, stdout: String(decoding: stdout, as: UTF8.self), stderr: stderr)
    }

    /// Starts a long-running process with its output going to `logFile`.
    public static func start(_ executable: String, _ arguments: [String], logFile: String,
                             environment: [String: String] = [:], standardInput: FileHandle? = nil,
                             append: Bool = false) throws -> ChildProcess {
        // O_APPEND: several processes may share one log without overwriting each other.
        let logFD = open(logFile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (append ? 0 : O_TRUNC), 0o644)
        guard logFD >= 0 else { throw CocoaError(.fileWriteUnknown) }
        defer { close(logFD) }
        let nullFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { if nullFD >= 0 { close(nullFD) } }
        return try ChildProcess.spawn(executable, arguments, environment: environment,
                                      standardInput: standardInput?.fileDescriptor ?? nullFD,
                                      standardOutput: logFD, standardError: logFD)
    }
}
