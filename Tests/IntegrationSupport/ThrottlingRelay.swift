import Foundation

/// A TCP relay on a free loopback port to `target` that passes what the target sends at
/// most `bytesPerSecond` (TLS goes through untouched): a slow upstream, so that a test can
/// act while a transfer from it is under way.
public final class ThrottlingRelay: @unchecked Sendable {
    public let port: Int
    private let process: ChildProcess

    private static let script = """
        import socket, sys, threading, time
        port, target, rate = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
        def pump(source, sink, limited):
            try:
                while True:
                    data = source.recv(16384)
                    if not data:
                        break
                    sink.sendall(data)
                    if limited:
                        time.sleep(len(data) / rate)
            except OSError:
                pass
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(64)
        while True:
            client, _ = server.accept()
            try:
                upstream = socket.create_connection(("127.0.0.1", target))
            except OSError:
                client.close()
                continue
            threading.Thread(target=pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=pump, args=(upstream, client, True), daemon=True).start()
        """

    public init(to target: Int, bytesPerSecond: Int, logFile: String) throws {
        port = try LoopbackPort.free()
        process = try Shell.start("/usr/bin/python3", ["-c", Self.script, String(port), String(target), String(bytesPerSecond)],
                                  logFile: logFile)
        for _ in 0..<200 {
            if Shell.run("bash", ["-c", "exec 3<>/dev/tcp/127.0.0.1/\(port)"]).succeeded { return }
            usleep(25_000)
        }
        throw RegistryServer.ServerError.setup("the throttling relay did not come up")
    }

    public func stop() {
        Shell.stop(process, grace: 5)
    }
}
