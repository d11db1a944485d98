#if canImport(Glibc)
import Glibc
#endif
import FastCGI

/// The socket nginx connects to: the unix socket of the `socket` setting, created here
/// (and so this process's to remove), or the one inherited on fd 0 (systemd socket
/// activation, spawn-fcgi, a supervisor).
struct ListeningSocket {
    let descriptor: Int32
    /// The path this process created, nil for an inherited socket.
    let ownPath: String?

    static func open(_ settings: Settings) throws -> ListeningSocket {
        if let socket = settings.socket {
            return ListeningSocket(descriptor: try FastCGIServer.listenUnix(path: socket, mode: mode_t(settings.socketMode)),
                                   ownPath: socket)
        }
        return try inherited(or: "no socket configured and fd 0 is not a listening socket")
    }

    /// fd 0, which must be a listening socket (else `problem`).
    static func inherited(or problem: String) throws -> ListeningSocket {
        guard FastCGIServer.isListeningSocket(0) else { throw ServiceError(problem) }
        return ListeningSocket(descriptor: 0, ownPath: nil)
    }
}
