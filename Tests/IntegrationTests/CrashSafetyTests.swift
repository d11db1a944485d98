import Foundation
import Testing
import IntegrationSupport

/// Workers are SIGKILLed at random moments while clients push; afterwards everything
/// acknowledged is there, byte-exact, and the store is consistent.
/// `BERTH_CRASH_KILLS` sets how many kills (default 300).
@Suite(.serialized) struct CrashSafetyTests {
    @Test func randomWorkerKillsDuringConcurrentPushesLoseNothingAcknowledged() throws {
        let kills = Int(ProcessInfo.processInfo.environment["BERTH_CRASH_KILLS"] ?? "") ?? 300
        let server = try RegistryServer(listening: .inheritedOnStandardInput, workerCount: 2)
        defer { server.stop() }
        let ledger = try CrashClient.pushWhileKilling(server, clients: 4, kills: kills)
        print("crash safety: \(kills) kills, \(ledger.summary)")

        #expect(ledger.violations.isEmpty, "\(ledger.violations)")
        #expect(ledger.blobs.count > 20 && ledger.manifests.count > 5, "too little work got through: \(ledger.summary)")
        for blob in ledger.blobs {
            let got = server.curl(["\(server.baseURL)/v2/\(blob.repository)/blobs/\(blob.digest)"])
            #expect(got.status == 200 && sha256(got.body) == blob.digest, "blob \(blob.repository)@\(blob.digest)")
        }
        for manifest in ledger.manifests {
            let got = server.curl(["\(server.baseURL)/v2/\(manifest.repository)/manifests/\(manifest.digest)"])
            #expect(got.status == 200 && got.body == manifest.body, "manifest \(manifest.repository)@\(manifest.digest)")
        }
        for (key, allowed) in ledger.tagOutcomes {
            let got = server.curl(["-I", "\(server.baseURL)/v2/\(key.repository)/manifests/\(key.tag)"])
            let outcome = got.status == 200 ? got.header("Docker-Content-Digest") : (got.status == 404 ? nil : "status \(got.status)")
            #expect(allowed.contains(outcome), "tag \(key.repository):\(key.tag) is \(outcome ?? "absent"), allowed \(allowed)")
        }
        let scrub = Shell.run(RegistryServer.binary, ["scrub", "--store", server.store])
        #expect(scrub.succeeded && scrub.stdout.contains("problems=0"), "\(scrub.stdout)")
        #expect(strayFiles(inLayoutsUnder: server.store).isEmpty, "\(strayFiles(inLayoutsUnder: server.store))")
    }

    /// Files inside repository layouts that are not `oci-layout`, `index.json` or a blob
    /// named by its digest (a temp file or half-written file would show here).
    func strayFiles(inLayoutsUnder root: String) -> [String] {
        var stray: [String] = []
        guard let walker = FileManager.default.enumerator(atPath: root) else { return ["cannot walk \(root)"] }
        while let path = walker.nextObject() as? String {
            if path.hasPrefix("_berth") { walker.skipDescendants(); continue }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: "\(root)/\(path)", isDirectory: &isDirectory), isDirectory.boolValue { continue }
            let parts = path.split(separator: "/")
            let name = String(parts.last ?? "")
            if name == "oci-layout" || name == "index.json" { continue }
            if parts.count >= 3, parts[parts.count - 3] == "blobs", ["sha256", "sha512"].contains(String(parts[parts.count - 2])),
               name.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) { continue }
            stray.append(path)
        }
        return stray
    }
}

func sha256(_ data: Data) -> String { Shell.sha256Digest(data) }

extension CrashClient {
    /// Runs `clients` clients against `server` (two workers) while a random worker is
    /// SIGKILLed and started again `kills` times, 5-40 ms apart; what they got acknowledged.
    static func pushWhileKilling(_ server: RegistryServer, clients: Int, kills: Int) throws -> Ledger {
        let ledger = Ledger()
        let running = Flag(true)
        let group = DispatchGroup()
        for client in 0..<clients {
            group.enter()
            Thread.detachNewThread {
                var driver = CrashClient(server: server, ledger: ledger, client: client)
                while running.value { driver.step() }
                group.leave()
            }
        }
        defer {
            running.value = false
            group.wait()
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<kills {
            // 30-90 ms between kills: often enough to land inside requests, rarely enough
            // that a restarted worker serves some before the next one.
            usleep(UInt32.random(in: 30_000...90_000, using: &generator))
            let victim = Int.random(in: 0..<2, using: &generator)
            server.killWorker(victim)
            try server.startWorker(victim)
        }
        return ledger
    }
}

/// One client's random walk of pushes: monolithic blobs, chunked uploads, manifests
/// under tags it alone writes, and tag deletes. Everything acknowledged goes in the ledger.
struct CrashClient {
    let server: RegistryServer
    let ledger: Ledger
    let client: Int
    var random: SeededBytes
    var counter = 0
    let scratch: String

    init(server: RegistryServer, ledger: Ledger, client: Int) {
        self.server = server
        self.ledger = ledger
        self.client = client
        random = SeededBytes(seed: UInt64(1000 + client))
        scratch = "\(server.directory.path)/client\(client)"
        try? FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    }

    var repository: String { counter % 3 == 0 ? "crash/shared" : "crash/c\(client)" }

    mutating func step() {
        counter += 1
        switch counter % 5 {
        case 0, 1: _ = pushMonolithic(random.next(Int(random.next(2).reduce(0) { $0 * 256 + Int($1) }) + 1))
        case 2: pushChunked()
        case 3: pushManifest()
        default: deleteTag()
        }
    }

    func write(_ bytes: [UInt8]) -> String {
        let path = "\(scratch)/\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    mutating func pushMonolithic(_ bytes: [UInt8]) -> String? {
        let file = write(bytes)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let digest = sha256(Data(bytes))
        let repository = self.repository
        let answer = server.curl(["-X", "POST", "--data-binary", "@\(file)", "\(server.baseURL)/v2/\(repository)/blobs/uploads/?digest=\(digest)"])
        guard answer.status == 201 else { return nil }
        ledger.acknowledgeBlob(repository: repository, digest: digest)
        return digest
    }

    mutating func pushChunked() {
        let chunks = [random.next(70_000), random.next(50_000)]
        let whole = chunks.flatMap { $0 }
        let digest = sha256(Data(whole))
        let repository = self.repository
        let started = server.curl(["-X", "POST", "\(server.baseURL)/v2/\(repository)/blobs/uploads/"])
        guard started.status == 202, var location = started.header("Location") else { return }
        var acknowledged = 0
        for chunk in chunks {
            let file = write(chunk)
            defer { try? FileManager.default.removeItem(atPath: file) }
            let answer = server.curl(["-X", "PATCH", "-H", "Content-Range: \(acknowledged)-\(acknowledged + chunk.count - 1)",
                                      "--data-binary", "@\(file)", "\(server.baseURL)\(location)"])
            guard answer.status == 202, let next = answer.header("Location") else {
                // Interrupted: the session holds what was acknowledged, or also this chunk
                // if it was persisted just before the kill; never anything else.
                let status = server.curl(["\(server.baseURL)\(location)"])
                if status.status == 204 {
                    let allowed = ["0-\(max(acknowledged - 1, 0))", "0-\(acknowledged + chunk.count - 1)"]
                    if !allowed.contains(status.header("Range") ?? "") {
                        ledger.violation("session \(location) reports \(status.header("Range") ?? "no Range"), expected one of \(allowed)")
                    }
                }
                return
            }
            acknowledged += chunk.count
            location = next
        }
        let done = server.curl(["-X", "PUT", "\(server.baseURL)\(location)?digest=\(digest)"])
        if done.status == 201 { ledger.acknowledgeBlob(repository: repository, digest: digest) }
    }

    mutating func pushManifest() {
        let repository = self.repository
        let config = Array("{\"client\":\(client),\"step\":\(counter)}".utf8)
        let layer = random.next(20_000)
        guard let configDigest = pushMonolithicTo(repository, config),
              let layerDigest = pushMonolithicTo(repository, layer) else { return }
        let body = Array("""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(configDigest)","size":\(config.count)},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(layerDigest)","size":\(layer.count)}]}
            """.utf8)
        let digest = sha256(Data(body))
        let tag = "c\(client)-t\(counter % 4)"
        let file = write(body)
        defer { try? FileManager.default.removeItem(atPath: file) }
        ledger.attemptTag(repository: repository, tag: tag, digest: digest)
        let answer = server.curl(["-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json",
                                  "--data-binary", "@\(file)", "\(server.baseURL)/v2/\(repository)/manifests/\(tag)"])
        if answer.status == 201 {
            ledger.acknowledgeManifest(repository: repository, tag: tag, digest: digest, body: Data(body))
        }
    }

    mutating func pushMonolithicTo(_ repository: String, _ bytes: [UInt8]) -> String? {
        let file = write(bytes)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let digest = sha256(Data(bytes))
        let answer = server.curl(["-X", "POST", "--data-binary", "@\(file)", "\(server.baseURL)/v2/\(repository)/blobs/uploads/?digest=\(digest)"])
        guard answer.status == 201 else { return nil }
        ledger.acknowledgeBlob(repository: repository, digest: digest)
        return digest
    }

    mutating func deleteTag() {
        let repository = self.repository
        let tag = "c\(client)-t\(counter % 4)"
        ledger.attemptTag(repository: repository, tag: tag, digest: nil)
        let answer = server.curl(["-X", "DELETE", "\(server.baseURL)/v2/\(repository)/manifests/\(tag)"])
        if answer.status == 202 || answer.status == 404 {
            ledger.acknowledgeTagDeleted(repository: repository, tag: tag)
        }
    }
}

/// What the registry acknowledged, and what each tag may be now.
final class Ledger: @unchecked Sendable {
    struct Blob: Hashable { let repository: String; let digest: String }
    struct Manifest { let repository: String; let digest: String; let body: Data }
    struct TagKey: Hashable { let repository: String; let tag: String }

    private let lock = NSLock()
    private var blobSet: Set<Blob> = []
    private var manifestList: [Manifest] = []
    /// Per tag: the digests it may resolve to (nil = absent): the last acknowledged
    /// state plus every state attempted since.
    private var tags: [TagKey: [String?]] = [:]
    private var problems: [String] = []
    private var attempts = 0

    var blobs: Set<Blob> { lock.withLock { blobSet } }
    var manifests: [Manifest] { lock.withLock { manifestList } }
    var violations: [String] { lock.withLock { problems } }
    var tagOutcomes: [TagKey: [String?]] { lock.withLock { tags } }
    var summary: String {
        lock.withLock { "\(blobSet.count) blobs and \(manifestList.count) manifests acknowledged, \(attempts) tag writes attempted" }
    }

    func acknowledgeBlob(repository: String, digest: String) {
        lock.withLock { _ = blobSet.insert(Blob(repository: repository, digest: digest)) }
    }

    func attemptTag(repository: String, tag: String, digest: String?) {
        lock.withLock {
            attempts += 1
            tags[TagKey(repository: repository, tag: tag), default: [nil]].append(digest)
        }
    }

    func acknowledgeManifest(repository: String, tag: String, digest: String, body: Data) {
        lock.withLock {
            manifestList.append(Manifest(repository: repository, digest: digest, body: body))
            tags[TagKey(repository: repository, tag: tag)] = [digest]
        }
    }

    func acknowledgeTagDeleted(repository: String, tag: String) {
        lock.withLock { tags[TagKey(repository: repository, tag: tag)] = [nil] }
    }

    func violation(_ text: String) { lock.withLock { problems.append(text) } }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Bool
    init(_ value: Bool) { stored = value }
    var value: Bool {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
