import Foundation
import IntegrationSupport
import Testing

/// How a miss streams: the fetch runs at the upstream's pace into the store, and every
/// client (the one that caused it too) reads it as it grows, at its own pace.
@Suite(.serialized) struct MirrorStreamingTests: MirrorTesting {
    @Test func aSlowFirstClientPacesNeitherTheFollowersNorTheFetch() throws {
        let upstream = try DockerRegistryUpstream()
        defer { upstream.remove() }
        let work = upstream.directory.path
        let source = try ImageBuilder.build(layout: "\(work)/source", tag: "v1", layerSizes: [24 << 20], seed: 51)
        let layer = try manifest(try push(source, tag: "v1", to: upstream, as: "team/app")).layers[0]
        let (server, config) = try mirror(try mirrorLines("up", of: upstream))
        defer { server.stop(); config.remove() }
        let url = "\(server.baseURL)/v2/up/team/app/blobs/\(layer.digest)"
        let ca = "\(server.certDirectory)/ca.crt"

        // The first client reads 200 KiB/s: two minutes for the whole layer.
        let slow = try Shell.start("/usr/bin/curl", ["-sS", "--limit-rate", "200K", "--cacert", ca, "-o", "\(work)/slow", url],
                                   logFile: "\(work)/slow.log")
        defer {
            if slow.isRunning { kill(slow.processIdentifier, SIGKILL) }
            slow.waitUntilExit()
        }
        var started = false
        for _ in 0..<400 where !started {
            usleep(25_000)
            started = fileSize("\(work)/slow") > 0
        }
        try #require(started, "the first client received nothing\n\(server.workerLog.suffix(2000))")

        // A second client gets the whole blob while the first is still reading.
        let fast = Shell.run("/usr/bin/curl", ["-sS", "--fail", "--max-time", "90", "--cacert", ca, "-o", "\(work)/fast", url],
                             timeout: 120)
        #expect(fast.succeeded, "\(fast.stderr)")
        let body = FileManager.default.contents(atPath: "\(work)/fast") ?? Data()
        #expect(body.count == layer.size && Shell.sha256Digest(body) == layer.digest, "the follower got \(body.count) bytes")
        #expect(slow.isRunning, "the slow client finished first: it set the pace")
        #expect(fileSize("\(work)/slow") < layer.size)
        // The fetch did not wait for the slow client either: the blob is stored already.
        let hex = String(layer.digest.dropFirst("sha256:".count))
        #expect(FileManager.default.fileExists(atPath: "\(server.store)/up/team/app/blobs/sha256/\(hex)"))
        #expect(upstreamGets(upstream, "/v2/team/app/blobs/\(layer.digest)") == 1)
    }

    @Test func aClientThatLeavesMidFetchDoesNotStopIt() throws {
        let upstream = try DockerRegistryUpstream()
        defer { upstream.remove() }
        let work = upstream.directory.path
        let source = try ImageBuilder.build(layout: "\(work)/source", tag: "v1", layerSizes: [12 << 20], seed: 52)
        let layer = try manifest(try push(source, tag: "v1", to: upstream, as: "team/app")).layers[0]
        // A slow upstream (4 MiB/s): the client leaves while the fetch is under way.
        let relay = try ThrottlingRelay(to: upstream.port, bytesPerSecond: 4 << 20, logFile: "\(work)/relay.log")
        defer { relay.stop() }
        let (server, config) = try mirror(try mirrorLines("up", of: upstream, url: "https://127.0.0.1:\(relay.port)"))
        defer { server.stop(); config.remove() }
        let url = "\(server.baseURL)/v2/up/team/app/blobs/\(layer.digest)"
        let first = try Shell.start("/usr/bin/curl", ["-sS", "--cacert", "\(server.certDirectory)/ca.crt", "-o", "\(work)/first", url],
                                    logFile: "\(work)/first.log")
        var started = false
        for _ in 0..<400 where !started {
            usleep(25_000)
            started = fileSize("\(work)/first") > 0
        }
        try #require(started, "the client received nothing\n\(server.workerLog.suffix(2000))")
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        #expect(fileSize("\(work)/first") < layer.size, "the client got the whole blob before it left")

        // The fetch goes on without it: the blob is stored, fetched once.
        let stored = "\(server.store)/up/team/app/blobs/sha256/\(layer.digest.dropFirst("sha256:".count))"
        for _ in 0..<600 where !FileManager.default.fileExists(atPath: stored) { usleep(50_000) }
        #expect(FileManager.default.fileExists(atPath: stored), "\(server.workerLog.suffix(2000))")
        let again = server.curl([url])
        #expect(again.status == 200 && Shell.sha256Digest(again.body) == layer.digest)
        #expect(upstreamGets(upstream, "/v2/team/app/blobs/\(layer.digest)") == 1)
        #expect(server.workerLog.contains("mirror_stored"))
    }
}
