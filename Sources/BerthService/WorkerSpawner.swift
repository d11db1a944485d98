#if canImport(Glibc)
import Glibc
#endif

/// Starts worker processes: the running binary again (`/proc/self/exe`, so an upgrade that
/// replaced the file on disk never mixes versions under one supervisor), with the
/// supervisor's own arguments plus the hidden `--worker-of-supervisor <pid> --worker-index
/// <i>`, the listening socket as fd 0 and the in-flight table as fd 3, every signal
/// unblocked and at its default.
///
/// Why posix_spawn and not fork: a forked copy of a Swift process keeps only the calling
/// thread, and any lock another thread held at that instant (malloc's, the runtime's
/// metadata caches, a logger's) stays locked forever in the child. exec gives each worker
/// a fresh runtime, and posix_spawn (clone and exec, nothing run in between) has no
/// window where the child runs code of the parent.
struct WorkerSpawner {
    let executable = "/proc/self/exe"
    /// `argv` of the supervisor, `argv[0]` included.
    let arguments: [String]
    let listenFD: Int32
    let inFlightDescriptor: Int32

    /// Starts worker `index`; the child's pid, or the errno of the failure.
    func spawn(index: Int) -> Result<pid_t, SpawnError> {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 leaves the copy without close-on-exec; fd 0 itself is kept open by
        // `Supervisor` (close-on-exec cleared) when the socket already is fd 0.
        if listenFD != 0 { posix_spawn_file_actions_adddup2(&actions, listenFD, 0) }
        posix_spawn_file_actions_adddup2(&actions, inFlightDescriptor, InFlightTable.workerDescriptor)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGCHLD, SIGPIPE, SIGHUP, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = arguments + ["--worker-of-supervisor", String(getpid()), "--worker-index", String(index)]
        var cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
        cArguments.append(nil)
        defer { for pointer in cArguments { free(pointer) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, cArguments, environ)
        guard status == 0 else { return .failure(SpawnError(errno: status)) }
        return .success(pid)
    }

    struct SpawnError: Error, CustomStringConvertible {
        let errno: Int32
        var description: String { String(cString: strerror(errno)) }
    }
}

/// How a child process ended, from `waitpid`'s status.
struct ChildExit: Equatable {
    let status: Int32

    var signal: Int32? { let number = status & 0x7f; return number != 0 && number != 0x7f ? number : nil }
    var exitStatus: Int32? { status & 0x7f == 0 ? (status >> 8) & 0xff : nil }
    var dumpedCore: Bool { signal != nil && status & 0x80 != 0 }
    /// Stopped because it was asked to: exit status 0.
    var isClean: Bool { exitStatus == 0 }

    /// The signal's name (`SIGKILL`), or `signal N` for one without a common name.
    static func name(ofSignal number: Int32) -> String {
        let names: [Int32: String] = [
            SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP", SIGABRT: "SIGABRT",
            SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGUSR1: "SIGUSR1", SIGSEGV: "SIGSEGV", SIGUSR2: "SIGUSR2",
            SIGPIPE: "SIGPIPE", SIGALRM: "SIGALRM", SIGTERM: "SIGTERM", SIGSTKFLT: "SIGSTKFLT", SIGXCPU: "SIGXCPU",
            SIGXFSZ: "SIGXFSZ", SIGSYS: "SIGSYS",
        ]
        return names[number] ?? "signal \(number)"
    }
}
