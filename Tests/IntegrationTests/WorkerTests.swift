import Foundation
import Testing
import IntegrationSupport

/// The worker as systemd runs it, and under concurrent load.
@Suite(.serialized) struct WorkerTests {
    @Test func inheritedListeningSocketOnStandardInputServesRequests() throws {
        let server = try RegistryServer(listening: .inheritedOnStandardInput)
        defer { server.stop() }
        let file = "\(server.directory.path)/blob"
        _ = FileManager.default.createFile(atPath: file, contents: Data("inherited".utf8))
        let digest = "sha256:" + (Shell.run("sha256sum", [file]).stdout.split(separator: " ").first.map(String.init) ?? "")
        let posted = server.curl(["-X", "POST", "--data-binary", "@\(file)", "\(server.baseURL)/v2/app/blobs/uploads/?digest=\(digest)"])
        #expect(posted.status == 201)
        #expect(server.curl(["\(server.baseURL)/v2/app/blobs/\(digest)"]).text == "inherited")
        #expect(server.workerLog.contains("\"socket\":\"fd 0\""))
    }

    @Test func concurrentUploadsToOneRepositoryAllLand() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let count = 24
        var random = SeededBytes(seed: 77)
        var files: [(path: String, digest: String)] = []
        for index in 0..<count {
            let path = "\(server.directory.path)/blob\(index)"
            _ = FileManager.default.createFile(atPath: path, contents: Data(random.next(200_000 + index)))
            let digest = "sha256:" + (Shell.run("sha256sum", [path]).stdout.split(separator: " ").first.map(String.init) ?? "")
            files.append((path, digest))
        }
        let statuses = StatusBox(count: count)
        let blobs = files
        DispatchQueue.concurrentPerform(iterations: count) { index in
            let (path, digest) = blobs[index]
            // Half with Content-Length, half chunked as docker sends them.
            let arguments = index % 2 == 0
                ? ["-X", "POST", "--data-binary", "@\(path)", "\(server.baseURL)/v2/shared/app/blobs/uploads/?digest=\(digest)"]
                : ["-X", "POST", "-H", "Transfer-Encoding: chunked", "--data-binary", "@\(path)",
                   "\(server.baseURL)/v2/shared/app/blobs/uploads/?digest=\(digest)"]
            statuses.set(index, server.curl(arguments).status)
        }
        #expect(statuses.values == Array(repeating: 201, count: count))
        for (path, digest) in files {
            let got = server.curl(["\(server.baseURL)/v2/shared/app/blobs/\(digest)"])
            #expect(got.body == FileManager.default.contents(atPath: path), "\(digest)")
        }
    }
}

private final class StatusBox: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Int]

    init(count: Int) { storage = Array(repeating: 0, count: count) }

    func set(_ index: Int, _ value: Int) {
        lock.lock()
        storage[index] = value
        lock.unlock()
    }

    var values: [Int] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
}
