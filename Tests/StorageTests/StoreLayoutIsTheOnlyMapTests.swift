#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Storage
import Testing

/// `StoreLayout` is the one map of the disk: no other source file spells a bookkeeping
/// path, and its inverse parses undo what it builds.
@Suite struct StoreLayoutIsTheOnlyMapTests {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Sources").path

    @Test func noSourceFileButStoreLayoutSpellsTheBookkeepingFolder() throws {
        let files = try #require(FileManager.default.enumerator(atPath: Self.sources)).compactMap { $0 as? String }
            .filter { $0.hasSuffix(".swift") }
        #expect(files.count > 20, "the sources were found")
        for file in files where !file.hasSuffix("Storage/StoreLayout.swift") {
            let text = try String(contentsOfFile: "\(Self.sources)/\(file)", encoding: .utf8)
            #expect(!text.contains("\"_berth"), "\(file) spells a _berth path; build it with StoreLayout")
        }
    }

    @Test func inverseParsesUndoTheLayout() throws {
        let layout = StoreLayout(root: "/store")
        let name = try #require(RepositoryName("team/app"))
        let subject = try #require(Digest("sha256:" + String(repeating: "a", count: 64)))
        let referrer = try #require(Digest("sha512:" + String(repeating: "b", count: 128)))
        let file = layout.referrerFile(name, subject: subject, referrer: referrer)
        let fileName = String(file.split(separator: "/").last ?? "")
        #expect(StoreLayout.referrer(fromFileName: fileName) == referrer)
        #expect(StoreLayout.referrer(fromFileName: "sha256-zz.json") == nil)
        #expect(StoreLayout.referrer(fromFileName: "nodash.json") == nil)
        let blobName = String(layout.sharedBlobFile(subject).split(separator: "/").last ?? "")
        #expect(StoreLayout.blob(.sha256, fromFileName: blobName) == subject)
        #expect(StoreLayout.blob(.sha256, fromFileName: "../x") == nil)
        let metricsName = String(layout.workerMetricsFile(.current).split(separator: "/").last ?? "")
        #expect(StoreLayout.isWorkerMetricsFile(metricsName))
        #expect(layout.requiredDirectories.allSatisfy { $0.hasPrefix("/store") })
    }
}
