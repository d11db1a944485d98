#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Storage

/// `berth gc`: frees unreferenced blobs, old upload sessions and temp files, safely
/// while the registry serves pushes.
struct GC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc", abstract: "Remove what no manifest references any more (safe while Berth runs).")

    @Option(help: "Storage root.")
    var store: String

    @Option(help: "Never remove anything changed less than this many seconds ago.")
    var gracePeriod = 3600

    @Option(help: "Remove upload sessions idle for this many seconds.")
    var uploadAge = 86_400

    @Option(help: "Also remove untagged manifests older than this many seconds (default: keep them).")
    var untaggedManifestAge: Int?

    @Flag(help: "List what would be removed, change nothing.")
    var dryRun = false

    func validate() throws {
        guard gracePeriod >= 0, uploadAge >= 0, (untaggedManifestAge ?? 0) >= 0 else {
            throw ValidationError("ages must not be negative")
        }
    }

    func run() throws {
        var options = GarbageCollector.Options()
        options.gracePeriod = gracePeriod
        options.uploadAge = uploadAge
        options.untaggedManifestAge = untaggedManifestAge
        options.dryRun = dryRun
        let collector = GarbageCollector(layout: StoreLayout(root: try StoreRoot.prepare(store)), options: options)
        let report: GarbageCollector.Report
        do { report = try collector.run() } catch {
            throw CommandFailure("gc failed: \(error)")
        }
        for removal in report.removals {
            print("\(dryRun ? "would remove" : "removed") \(removal.kind.rawValue) \(removal.path)\(removal.bytesFreed > 0 ? " (\(removal.bytesFreed) bytes)" : "")")
        }
        let kinds: [GarbageCollector.Removal.Kind] = [.blobLink, .sharedBlob, .manifest, .upload, .referrer, .temp]
        let counts = kinds.map { "\($0.rawValue)s=\(report.count($0))" }.joined(separator: " ")
        print("gc\(dryRun ? " (dry run)" : ""): repositories=\(report.repositoriesScanned) \(counts) bytes_freed=\(report.bytesFreed)")
    }
}

/// `berth scrub`: re-hashes every blob and checks every index and manifest.
struct Scrub: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify every blob, index.json and manifest; exit 1 if a problem remains.")

    @Option(help: "Storage root.")
    var store: String

    @Flag(help: "Move corrupt blobs to _berth/quarantine/ and drop index entries whose manifest is gone.")
    var repair = false

    func run() throws {
        let scrubber = Scrubber(layout: StoreLayout(root: try StoreRoot.prepare(store)), repair: repair)
        let report: Scrubber.Report
        do { report = try scrubber.run() } catch {
            throw CommandFailure("scrub failed: \(error)")
        }
        for problem in report.problems { print("problem: \(problem)") }
        print("scrub: repositories=\(report.repositoriesChecked) blobs_hashed=\(report.blobsHashed) bytes_hashed=\(report.bytesHashed) problems=\(report.problems.count) unrepaired=\(report.unrepaired)")
        if report.unrepaired > 0 { throw ExitCode(1) }
    }
}

/// A failure reported in one line on stderr, exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
