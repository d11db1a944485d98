#if canImport(Glibc)
import Glibc
#endif
import CFastCGI

/// Serves FastCGI requests from one listening socket on a pool of POSIX threads, each
/// blocked in `FCGX_Accept_r`. `run()` returns after SIGTERM or SIGINT, once every
/// request in flight has been answered.
public final class FastCGIServer: Sendable {
    public typealias Handler = @Sendable (FastCGIExchange) -> Void

    private let listenFD: Int32
    private let threadCount: Int
    private let handler: Handler

    /// `listenFD` is a listening socket: fd 0 from systemd or spawn-fcgi, or one made by
    /// `listenUnix(path:mode:)`.
    public init(listenFD: Int32, threads: Int, handler: @escaping Handler) {
        self.listenFD = listenFD
        self.threadCount = max(1, threads)
        self.handler = handler
    }

    /// Creates a unix socket at `path` (replacing a stale one), chmods it, listens.
    public static func listenUnix(path: String, mode: mode_t = 0o660, backlog: Int32 = 1024) throws(FastCGIError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .socket(operation: "socket", path: path, errno: errno) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else {
            close(fd)
            throw .socket(operation: "bind (path too long)", path: path, errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
            raw[path.utf8.count] = 0
        }
        unlink(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw .socket(operation: "bind", path: path, errno: code)
        }
        chmod(path, mode)
        guard listen(fd, backlog) == 0 else {
            let code = errno
            close(fd)
            throw .socket(operation: "listen", path: path, errno: code)
        }
        return fd
    }

    /// True when `fd` is a listening socket (how an inherited fd 0 is recognised).
    public static func isListeningSocket(_ fd: Int32) -> Bool {
        var accepting: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0 && accepting != 0
    }

    /// Serves until SIGTERM or SIGINT; returns the signal that stopped it.
    public func run() -> Int32 {
        FCGX_Init()
        signal(SIGPIPE, SIG_IGN)
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGTERM)
        sigaddset(&stopSignals, SIGINT)
        pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

        var threads: [pthread_t] = []
        for _ in 0..<threadCount {
            let context = Unmanaged.passRetained(self).toOpaque()
            var thread = pthread_t()
            if pthread_create(&thread, nil, { raw in
                guard let raw else { return nil }
                let server = Unmanaged<FastCGIServer>.fromOpaque(raw).takeRetainedValue()
                server.acceptLoop()
                return nil
            }, context) == 0 {
                threads.append(thread)
            } else {
                Unmanaged<FastCGIServer>.fromOpaque(context).release()
            }
        }

        var received: Int32 = 0
        sigwait(&stopSignals, &received)
        FCGX_ShutdownPending()
        shutdown(listenFD, Int32(SHUT_RDWR))
        for thread in threads { pthread_join(thread, nil) }
        return received
    }

    private func acceptLoop() {
        let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        defer { request.deallocate() }
        guard FCGX_InitRequest(request, listenFD, 0) == 0 else { return }
        while FCGX_Accept_r(request) >= 0 {
            let exchange = FastCGIExchange(request: request)
            handler(exchange)
            FCGX_Finish_r(request)
        }
        FCGX_Free(request, 1)
    }
}
