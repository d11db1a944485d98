#if canImport(Glibc)
import Glibc
#endif
import CFastCGI
import Synchronization

/// Serves FastCGI requests from one listening socket on POSIX threads, and returns from
/// `run()` after SIGTERM or SIGINT once every request in flight has been answered.
///
/// Two kinds of threads share the work:
/// - a few *accept threads* (about one per core) block in `FCGX_Accept_r` and answer
///   GET and HEAD themselves: the pull path, a lookup and a redirect, never waits long;
/// - a pool of *request threads* takes every other request (uploads, manifest pushes,
///   deletes), which can read a body for minutes or wait for a lock.
///
/// Why not one big pool: with 32 threads asleep in accept, every pull woke one of them,
/// and the context switches cost more than the answer (on the reference machine 2
/// accept threads served 1.3-1.4x the pulls of 32). Why not a small pool only: then
/// two slow uploads would stall every pull. When every request thread is busy, the
/// accept thread answers the request itself, so nothing is ever refused or queued
/// without a thread.
///
/// A pull that turns out to wait on something slow (a pull-through mirror's miss) is
/// moved off the accept thread: the handler answers `.moveToWaitingThread` without
/// having written anything, and the request is queued for a third kind of thread, the
/// *waiting threads*, which call the handler again with `mayWait` set.
public final class FastCGIServer: Sendable {
    /// What the handler did with a request.
    public enum Outcome: Sendable {
        /// It answered (or the answer failed): the request is finished.
        case answered
        /// It wrote nothing and needs a thread that may wait (`FastCGIExchange.mayWait`).
        case moveToWaitingThread
    }

    public typealias Handler = @Sendable (FastCGIExchange) -> Outcome

    private let listenFD: Int32
    private let acceptThreadCount: Int
    private let requestThreadCount: Int
    private let waitingThreadCount: Int
    private let ownsListeningSocket: Bool
    private let handler: Handler
    private let handOff = HandOffQueue()
    private let waitingQueue = HandOffQueue()

    /// `listenFD` is a listening socket: fd 0 from systemd or spawn-fcgi, or one made by
    /// `listenUnix(path:mode:)`. `requestThreads` bounds the bodied requests served at
    /// once (beyond it they are answered on the accept threads).
    ///
    /// `ownsListeningSocket`: whether stopping may `shutdown()` the socket. Only a socket
    /// this process alone listens on may be: `shutdown()` acts on the socket, not on this
    /// process's descriptor, so on a socket shared with other workers, a supervisor or
    /// systemd (which keeps it for the next start) it would refuse every connection to
    /// all of them for good. Without it, accept threads are woken by connections that
    /// carry no request (whichever process accepts one drops it).
    ///
    /// `waitingThreads`: threads for requests moved off the accept threads; they queue
    /// for one without bound (0: such a request is answered where it is).
    public init(listenFD: Int32, acceptThreads: Int, requestThreads: Int, waitingThreads: Int = 0,
                ownsListeningSocket: Bool = true, handler: @escaping Handler) {
        self.listenFD = listenFD
        self.acceptThreadCount = max(1, acceptThreads)
        self.requestThreadCount = max(0, requestThreads)
        self.waitingThreadCount = max(0, waitingThreads)
        self.ownsListeningSocket = ownsListeningSocket
        self.handler = handler
    }

    /// How many threads serve requests: `FastCGIExchange.threadIndex` is below it.
    public var threadCount: Int { acceptThreadCount + requestThreadCount + waitingThreadCount }

    /// One accept thread per online core, at least two.
    public static var defaultAcceptThreads: Int { max(2, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

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

        // Thread indices: accept threads first, then request threads, then waiting threads.
        let requestThreads = (0..<requestThreadCount).compactMap { index in
            startThread { $0.requestLoop(thread: $0.acceptThreadCount + index, queue: $0.handOff) }
        }
        let waitingThreads = (0..<waitingThreadCount).compactMap { index in
            startThread { $0.requestLoop(thread: $0.acceptThreadCount + $0.requestThreadCount + index, queue: $0.waitingQueue) }
        }
        let acceptStates = (0..<acceptThreadCount).map { _ in AcceptState() }
        let acceptThreads = acceptStates.enumerated().compactMap { index, state in
            startThread { $0.acceptLoop(thread: index, state: state) }.map { (thread: $0, state: state) }
        }

        var received: Int32 = 0
        sigwait(&stopSignals, &received)
        FCGX_ShutdownPending()
        var stuck: Set<Int> = []
        if ownsListeningSocket {
            shutdown(listenFD, Int32(SHUT_RDWR))
        } else {
            stuck = wakeAcceptThreads(acceptThreads.map(\.state))
        }
        for (index, accept) in acceptThreads.enumerated() where !stuck.contains(index) { pthread_join(accept.thread, nil) }
        handOff.close()
        waitingQueue.close()
        for thread in requestThreads + waitingThreads { pthread_join(thread, nil) }
        return received
    }

    /// Brings every accept thread out of `accept()` once shutdown is pending, with empty
    /// connections to the listening socket, until each has left its loop (a thread
    /// serving a request is left to finish it). Returns the threads that could not be
    /// woken because connecting kept failing for 2 s: they hold no request.
    private func wakeAcceptThreads(_ states: [AcceptState]) -> Set<Int> {
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listenFD, $0, &length) == 0 }
        }
        var failures = 0
        while true {
            let waiting = states.indices.filter { !states[$0].finished.load(ordering: .acquiring) && states[$0].waiting.load(ordering: .relaxed) }
            if states.allSatisfy({ $0.finished.load(ordering: .acquiring) }) { return [] }
            if !waiting.isEmpty {
                if named, Self.connectAndClose(&address, length) {
                    failures = 0
                } else {
                    failures += 1
                    if failures > 400 { return Set(waiting) }
                }
            }
            usleep(5_000)
        }
    }

    /// One connection to `address` that is closed at once; false when it could not be made.
    private static func connectAndClose(_ address: inout sockaddr_storage, _ length: socklen_t) -> Bool {
        let fd = socket(Int32(address.ss_family), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
        }
        return connected == 0 || errno == EINPROGRESS
    }

    private func startThread(_ body: @escaping @Sendable (FastCGIServer) -> Void) -> pthread_t? {
        let context = Unmanaged.passRetained(ThreadStart(server: self, body: body)).toOpaque()
        var thread = pthread_t()
        guard pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            let start = Unmanaged<ThreadStart>.fromOpaque(raw).takeRetainedValue()
            start.body(start.server)
            return nil
        }, context) == 0 else {
            Unmanaged<ThreadStart>.fromOpaque(context).release()
            return nil
        }
        return thread
    }

    private func acceptLoop(thread: Int, state: AcceptState) {
        defer { state.finished.store(true, ordering: .releasing) }
        var request = Self.newRequest(listenFD)
        while true {
            state.waiting.store(true, ordering: .relaxed)
            let accepted = FCGX_Accept_r(request)
            state.waiting.store(false, ordering: .relaxed)
            guard accepted >= 0 else { break }
            let isPull = FCGX_GetParam("REQUEST_METHOD", request.pointee.envp).map {
                strcmp($0, "GET") == 0 || strcmp($0, "HEAD") == 0
            } ?? false
            if !isPull, handOff.offer(request) {
                // The request thread finishes and frees it; accept into a fresh one.
                request = Self.newRequest(listenFD)
                continue
            }
            if serve(request, thread: thread, mayWait: false) == .moveToWaitingThread {
                if waitingQueue.enqueue(request) {
                    request = Self.newRequest(listenFD)
                    continue
                }
                _ = serve(request, thread: thread, mayWait: true)
            }
            FCGX_Finish_r(request)
        }
        FCGX_Free(request, 1)
        request.deallocate()
    }

    private func requestLoop(thread: Int, queue: HandOffQueue) {
        while let request = queue.take() {
            _ = serve(request, thread: thread, mayWait: true)
            FCGX_Finish_r(request)
            FCGX_Free(request, 1)
            request.deallocate()
        }
    }

    /// Answers the request and marks it ready to close; the caller finishes it. A request
    /// the handler moves (possible only when `mayWait` is false) is left untouched.
    private func serve(_ request: UnsafeMutablePointer<FCGX_Request>, thread: Int, mayWait: Bool) -> Outcome {
        let exchange = FastCGIExchange(request: request, threadIndex: thread, mayWait: mayWait)
        let outcome = handler(exchange)
        if outcome == .moveToWaitingThread, !mayWait { return outcome }
        exchange.closeWithoutLingering()
        return .answered
    }

    private static func newRequest(_ listenFD: Int32) -> UnsafeMutablePointer<FCGX_Request> {
        let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        FCGX_InitRequest(request, listenFD, 0)
        return request
    }
}

/// What a new thread runs, passed through pthread_create's context pointer.
private final class ThreadStart: Sendable {
    let server: FastCGIServer
    let body: @Sendable (FastCGIServer) -> Void

    init(server: FastCGIServer, body: @escaping @Sendable (FastCGIServer) -> Void) {
        self.server = server
        self.body = body
    }
}

/// Where an accept thread is, for waking it at shutdown without touching a thread that
/// is serving a request.
private final class AcceptState: Sendable {
    /// Inside `FCGX_Accept_r`: holds no request (or is reading one's params).
    let waiting = Atomic<Bool>(false)
    /// Out of its loop for good.
    let finished = Atomic<Bool>(false)
    /// Keeps the flags of two threads off one cache line: each stores its own twice per request.
    private let padding: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                          UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
}

/// Accepted requests passed from an accept thread to an idle request thread. An offer
/// succeeds only when a request thread is waiting, so a request never sits in a queue.
private final class HandOffQueue: @unchecked Sendable {
    // @unchecked: every stored property is touched only with `mutex` held.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let ready = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var waiting = 0
    private var pending: [UnsafeMutablePointer<FCGX_Request>] = []
    private var closed = false

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(ready, nil)
    }

    deinit {
        pthread_cond_destroy(ready)
        pthread_mutex_destroy(mutex)
        ready.deallocate()
        mutex.deallocate()
    }

    /// Gives `request` to a waiting request thread; false when none is free.
    func offer(_ request: UnsafeMutablePointer<FCGX_Request>) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard !closed, waiting > pending.count else { return false }
        pending.append(request)
        pthread_cond_signal(ready)
        return true
    }

    /// Queues `request` for the next thread that takes one, however long that takes;
    /// false once closed.
    func enqueue(_ request: UnsafeMutablePointer<FCGX_Request>) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard !closed else { return false }
        pending.append(request)
        pthread_cond_signal(ready)
        return true
    }

    /// The next request to serve; nil once closed and drained.
    func take() -> UnsafeMutablePointer<FCGX_Request>? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        waiting += 1
        defer { waiting -= 1 }
        while pending.isEmpty {
            if closed { return nil }
            pthread_cond_wait(ready, mutex)
        }
        return pending.removeFirst()
    }

    /// Lets the request threads finish what they were given and stop.
    func close() {
        pthread_mutex_lock(mutex)
        closed = true
        pthread_cond_broadcast(ready)
        pthread_mutex_unlock(mutex)
    }
}
