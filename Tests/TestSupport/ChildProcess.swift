#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// glibc ≥ 2.34 has it; Swift's Glibc module hides it behind `_GNU_SOURCE`.
@_silgen_name("posix_spawn_file_actions_addclosefrom_np")
private func spawnActionsCloseFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ lowest: Int32) -> Int32

/// A program the tests started, spawned and reaped here rather than by Foundation's
/// `Process`. Why: `Process` learns that its child exited from the end of a socketpair
/// the child inherits, and `Shell.run` read pipes to their end; a daemon started at the
/// same moment by another test (a cluster node, a docker engine) could inherit either
/// and keep it open, and the test waiting on it then hung until the daemon went away,
/// which for a suite's shared fixture is never. Here the child keeps only descriptors
/// 0, 1 and 2 (everything above is closed in it, `closefrom`), runs in its own process
/// group (so a timeout can end what it started), and exit is learnt from `waitpid`.
public final class ChildProcess: @unchecked Sendable {
    public let processIdentifier: pid_t
    private let lock = NSLock()
    /// The raw wait status once reaped.
    private var waitStatus: Int32?

    private init(processIdentifier: pid_t) { self.processIdentifier = processIdentifier }

    /// Spawns `executable` (an absolute path, or a name looked up on the PATH of the
    /// merged environment by `/usr/bin/env`) with the given descriptors as its 0, 1 and 2.
    public static func spawn(_ executable: String, _ arguments: [String], environment extra: [String: String] = [:],
                             standardInput: Int32, standardOutput: Int32, standardError: Int32) throws -> ChildProcess {
        let argv = executable.hasPrefix("/") ? [executable] + arguments : ["/usr/bin/env", executable] + arguments
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in extra { environment[key] = value }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, standardInput, 0)
        posix_spawn_file_actions_adddup2(&actions, standardOutput, 1)
        posix_spawn_file_actions_adddup2(&actions, standardError, 2)
        _ = spawnActionsCloseFrom(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Signals the test process blocks or ignores must not stay so in the child.
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGCHLD, SIGPIPE, SIGALRM, SIGUSR1, SIGUSR2] { sigaddset(&defaults, number) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argvPointers: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let envPointers: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argvPointers + envPointers { free(pointer) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, argv[0], &actions, &attributes, argvPointers, envPointers)
        guard status == 0 else { throw SpawnError(program: argv[0], errno: status) }
        return ChildProcess(processIdentifier: pid)
    }

    public struct SpawnError: Error, CustomStringConvertible {
        public let program: String
        public let errno: Int32
        public var description: String { "cannot start \(program): \(String(cString: strerror(errno)))" }
    }

    /// Reaps the child if it has exited; true once it has.
    private func poll() -> Bool {
        lock.withLock {
            if waitStatus != nil { return true }
            var status: Int32 = 0
            let reaped = waitpid(processIdentifier, &status, WNOHANG)
            if reaped == processIdentifier {
                waitStatus = status
                return true
            }
            // ECHILD: not ours to reap any more; count it as gone.
            if reaped < 0 && errno == ECHILD {
                waitStatus = 0
                return true
            }
            return false
        }
    }

    public var isRunning: Bool { !poll() }

    /// Waits for the exit, at most `timeout` seconds (nil: as long as it takes); true
    /// once the child has exited.
    @discardableResult
    public func wait(timeout: TimeInterval? = nil) -> Bool {
        let deadline = timeout.map { Date().addingTimeInterval($0) }
        var pause: UInt32 = 200
        while !poll() {
            if let deadline, Date() >= deadline { return false }
            usleep(pause)
            pause = min(pause * 2, 10_000)
        }
        return true
    }

    public func waitUntilExit() { wait() }

    /// The exit code, or the signal number that ended it (as Foundation's `Process`).
    public var terminationStatus: Int32 {
        let status = lock.withLock { waitStatus } ?? 0
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : status & 0x7f
    }

    /// True when a signal ended it.
    public var wasSignalled: Bool {
        let status = lock.withLock { waitStatus } ?? 0
        return (status & 0x7f) != 0
    }

    /// SIGTERM to the child.
    public func terminate() { signal(SIGTERM) }

    public func signal(_ number: Int32) {
        if isRunning { kill(processIdentifier, number) }
    }

    /// `number` to the child's whole process group (what it started stays in it unless
    /// it moved itself out).
    public func signalGroup(_ number: Int32) {
        kill(-processIdentifier, number)
    }
}
