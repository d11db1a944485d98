import Foundation
import Testing
import IntegrationSupport

/// The store on a real, small filesystem (tmpfs) that fills up.
@Suite(.serialized) struct FullDiskTests {
    static let canMount: Bool = {
        let probe = TemporaryDirectory(prefix: "berth-mount-probe")
        defer { _ = Shell.run("umount", [probe.path]); probe.remove() }
        return Shell.run("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe.path]).succeeded
    }()

    @Test(.enabled(if: canMount, "needs root to mount a small tmpfs for the store"))
    func fullDiskAnswers507KeepsEverythingAcknowledgedAndStillServesReads() throws {
        let server = try RegistryServer(prepareStore: { store in
            let mounted = Shell.run("mount", ["-t", "tmpfs", "-o", "size=6m", "tmpfs", store])
            guard mounted.succeeded else { throw RegistryServer.ServerError.setup("mount: \(mounted.stderr)") }
        })
        defer {
            server.stop()
            _ = Shell.run("umount", [server.store])
            server.directory.remove()
        }
        var random = SeededBytes(seed: 99)
        let config = "\(server.directory.path)/config"
        _ = FileManager.default.createFile(atPath: config, contents: Data("{}".utf8))
        let configDigest = sha256(Data("{}".utf8))
        #expect(server.curl(["-X", "POST", "--data-binary", "@\(config)", "\(server.baseURL)/v2/full/app/blobs/uploads/?digest=\(configDigest)"]).status == 201)

        func putManifest(_ tag: String, layer: String) -> RegistryServer.Response {
            let file = "\(server.directory.path)/manifest-\(tag)"
            let body = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"\(configDigest)\",\"size\":2},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"\(layer)\",\"size\":1048576}]}"
            _ = FileManager.default.createFile(atPath: file, contents: Data(body.utf8))
            return server.curl(["-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json",
                                "--data-binary", "@\(file)", "\(server.baseURL)/v2/full/app/manifests/\(tag)"])
        }

        // Fill the disk with 1 MiB blobs until the registry says it is full, then the
        // room a refused upload gave back with smaller ones, down to a page.
        var stored: [(digest: String, bytes: Data)] = []
        var full: RegistryServer.Response?
        var sizes = Array(repeating: 1 << 20, count: 12) + Array(repeating: 64 << 10, count: 40) + Array(repeating: 4 << 10, count: 300)
        while !sizes.isEmpty {
            let size = sizes.removeFirst()
            let bytes = Data(random.next(size))
            let file = "\(server.directory.path)/blob"
            _ = FileManager.default.createFile(atPath: file, contents: bytes)
            let digest = sha256(bytes)
            let answer = server.curl(["-X", "POST", "--data-binary", "@\(file)", "\(server.baseURL)/v2/full/app/blobs/uploads/?digest=\(digest)"])
            if answer.status == 201 {
                stored.append((digest, bytes))
                if stored.count == 1 { #expect(putManifest("v1", layer: digest).status == 201) }
            } else {
                if full == nil { full = answer }
                sizes.removeAll { $0 >= size }
            }
        }
        let refusal = try #require(full, "the 6 MiB store never filled up")
        #expect(refusal.status == 507, "\(refusal.text)")
        #expect(refusal.errorCode == "UNKNOWN")
        #expect(refusal.text.contains("No space left on device"))
        #expect(stored.count >= 2)

        // A chunked upload that hits the wall keeps the bytes it had acknowledged.
        let location = try #require(server.curl(["-X", "POST", "\(server.baseURL)/v2/full/app/blobs/uploads/"]).header("Location"))
        let small = "\(server.directory.path)/small"
        _ = FileManager.default.createFile(atPath: small, contents: Data(random.next(1000)))
        let first = server.curl(["-X", "PATCH", "--data-binary", "@\(small)", "\(server.baseURL)\(location)"])
        if first.status == 202 {
            let big = "\(server.directory.path)/big"
            _ = FileManager.default.createFile(atPath: big, contents: Data(random.next(4 << 20)))
            let second = server.curl(["-X", "PATCH", "--data-binary", "@\(big)", "\(server.baseURL)\(location)"])
            #expect(second.status == 507, "\(second.text)")
            #expect(server.curl(["\(server.baseURL)\(location)"]).header("Range") == "0-999")
        } else {
            #expect(first.status == 507)
        }

        // A manifest push (blob and index.json update) on the full disk fails cleanly; the
        // tag written before the disk filled is untouched.
        let v1 = server.curl(["-I", "\(server.baseURL)/v2/full/app/manifests/v1"]).header("Docker-Content-Digest")
        #expect(v1 != nil)
        let v2 = putManifest("v2", layer: stored[1].digest)
        #expect(v2.status == 507, "\(v2.text)")
        #expect(server.curl(["-I", "\(server.baseURL)/v2/full/app/manifests/v1"]).header("Docker-Content-Digest") == v1)
        #expect(server.curl(["\(server.baseURL)/v2/full/app/manifests/v2"]).status == 404)

        // Everything acknowledged is intact and still served.
        for blob in stored {
            let got = server.curl(["\(server.baseURL)/v2/full/app/blobs/\(blob.digest)"])
            #expect(got.status == 200 && got.body == blob.bytes, "\(blob.digest)")
        }
        #expect(server.curl(["\(server.baseURL)/v2/full/app/tags/list"]).status == 200)
        #expect(!server.workerLog.contains("\"status\":\"500\""), "only 507s, no crashes or plain 500s")
        // The store holds no half-written file: scrub finds nothing wrong.
        let scrub = Shell.run(RegistryServer.binary, ["scrub", "--store", server.store])
        #expect(scrub.stdout.contains("problems=0"), "\(scrub.stdout)")
    }
}
