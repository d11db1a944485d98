#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import BerthService
import Storage

/// `berth gc`: frees unreferenced blobs, old upload sessions and temp files, safely
/// while the registry serves pushes.
struct GC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc", abstract: "Remove what no manifest references any more (safe while Berth runs).")

    @OptionGroup var common: SettingsOptions

    @Option(help: "Never remove anything changed less than this many seconds ago (default \(Defaults.gcGracePeriod)).")
    var gracePeriod: Int?

    @Option(help: "Remove upload sessions idle for this many seconds (default \(Defaults.uploadAge)).")
    var uploadAge: Int?

    @Option(help: "Also remove untagged manifests older than this many seconds (default: keep them).")
    var untaggedManifestAge: Int?

    @Flag(help: "List what would be removed, change nothing.")
    var dryRun = false

    func run() throws {
        var settings = try common.load()
        let flags: [(String, Int?)] = [("gc_grace_period", gracePeriod), ("upload_age", uploadAge),
                                       ("gc_untagged_manifest_age", untaggedManifestAge)]
        do {
            for case let (key, value?) in flags { try settings.set(key, String(value), source: "command line") }
        } catch {
            throw ValidationError(error.description)
        }
        var options = GarbageCollector.Options()
        options.gracePeriod = settings.gcGracePeriod
        options.uploadAge = settings.uploadAge
        options.untaggedManifestAge = settings.gcUntaggedManifestAge
        options.dryRun = dryRun
        options.mirrors = settings.mirrors.keys.sorted().compactMap { name in
            settings.mirrors[name].map { GarbageCollector.MirrorLimit(namespace: name, maxAge: $0.maxAge, maxBytes: $0.maxBytes) }
        }
        let store = try settings.openStore()
        // Retention first: what it deletes is freed by this same run.
        if let policyFile = settings.retention {
            let progress = ProgressReporter(task: "retention", unit: "repositories", settings: settings)
            let retention = try RetentionJob.run(settings, store: store, policyFile: policyFile, dryRun: dryRun, progress: progress)
            for line in RetentionJob.lines(retention, dryRun: dryRun) { print(line) }
            print("retention\(dryRun ? " (dry run)" : ""): repositories=\(retention.repositoriesJudged) manifests_deleted=\(retention.deletions.count)")
        }
        let progress = ProgressReporter(task: "gc", unit: "repositories", settings: settings)
        options.progress = { done, total, freed in progress.update(items: done, ofItems: total, bytes: freed) }
        let collector = store.garbageCollector(options: options)
        let report: GarbageCollector.Report
        do { report = try collector.run() } catch {
            throw CommandFailure("gc failed: \(error)")
        }
        progress.finish()
        for removal in report.removals {
            let bytes = removal.bytesFreed > 0 ? " (\(removal.bytesFreed) bytes)" : ""
            print("\(dryRun ? "would remove" : "removed") \(removal.kind.rawValue) \(removal.path)\(bytes)\(removal.reason.map { ": \($0)" } ?? "")")
        }
        let kinds: [GarbageCollector.Removal.Kind] = [.blobLink, .sharedBlob, .manifest, .upload, .referrer, .temp, .trash]
        let counts = kinds.map { "\($0.rawValue)s=\(report.count($0))" }.joined(separator: " ")
        if !dryRun {
            MaintenanceReport(finished: Int(time(nil)), counts: Dictionary(uniqueKeysWithValues: kinds.map { ($0.rawValue, report.count($0)) }),
                              bytes: report.bytesFreed).save(as: "gc", in: store.metricsFiles)
        }
        // The blobs gc freed leave the quotas' usage here.
        if !dryRun { try Quota.reconcile(store, command: "gc", settings: settings) }
        for phase in report.phases { print("gc phase \(phase.name): \(phase.seconds) s") }
        print("gc\(dryRun ? " (dry run)" : ""): repositories=\(report.repositoriesScanned) \(counts) bytes_freed=\(report.bytesFreed)")
    }
}

/// `berth scrub`: re-hashes every blob and checks every index and manifest.
struct Scrub: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify every blob, index.json and manifest; exit 1 if a problem remains.")

    @OptionGroup var common: SettingsOptions

    @Flag(help: "Move corrupt blobs to _berth/quarantine/ and drop index entries whose manifest is gone.")
    var repair = false

    func run() throws {
        let settings = try common.load()
        let store = try settings.openStore()
        var scrubber = store.scrubber(repair: repair)
        scrubber.onDemandNamespaces = settings.mirrors.keys.sorted()
        // Shared copies are hashed first, each once: most of the bytes there are.
        let totals = store.metricsFiles.totals()
        let progress = ProgressReporter(task: "scrub", unit: "blobs", settings: settings, totalBytes: totals.blobBytes)
        scrubber.progress = { blobs, bytes in progress.update(items: blobs, bytes: bytes) }
        let report: Scrubber.Report
        do { report = try scrubber.run() } catch {
            throw CommandFailure("scrub failed: \(error)")
        }
        progress.finish()
        for problem in report.problems { print("problem: \(problem)") }
        try Quota.reconcile(store, command: "scrub", settings: settings)
        MaintenanceReport(finished: Int(time(nil)), counts: ["found": report.problems.count, "unrepaired": report.unrepaired],
                          bytes: report.bytesHashed).save(as: "scrub", in: store.metricsFiles)
        for phase in report.phases { print("scrub phase \(phase.name): \(phase.seconds) s") }
        print("scrub: repositories=\(report.repositoriesChecked) blobs_hashed=\(report.blobsHashed) bytes_hashed=\(report.bytesHashed) problems=\(report.problems.count) unrepaired=\(report.unrepaired)")
        if report.unrepaired > 0 { throw ExitCode(1) }
    }
}

/// `berth retention`: applies the retention policy file (`retention`) now.
struct RetentionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention",
        abstract: "Delete the manifests the retention policy does not keep (safe while Berth runs; gc frees their bytes).")

    @OptionGroup var common: SettingsOptions

    @Option(help: "The retention policy file (default: the retention key of the config).")
    var policy: String?

    @Flag(help: "List what would be deleted and why (rule and reason per manifest), change nothing.")
    var dryRun = false

    @Flag(help: "Also list what is kept and why.")
    var verbose = false

    func run() throws {
        let settings = try common.load()
        guard let policyFile = policy ?? settings.retention else {
            throw ValidationError("no retention policy: set retention = FILE in the config or pass --policy FILE")
        }
        let store = try settings.openStore()
        let progress = ProgressReporter(task: "retention", unit: "repositories", settings: settings)
        let report = try RetentionJob.run(settings, store: store, policyFile: policyFile, dryRun: dryRun, progress: progress)
        for line in RetentionJob.lines(report, dryRun: dryRun, kept: verbose) { print(line) }
        print("retention\(dryRun ? " (dry run)" : ""): repositories=\(report.repositoriesJudged) manifests=\(report.verdicts.count) deleted=\(report.deletions.count)")
    }
}

/// A failure reported in one line on stderr, exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// `berth config check`: loads the settings as `serve` would and prints them.
struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work with the configuration.", subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the config file and environment; print the effective settings.")

        @OptionGroup var common: SettingsOptions

        func run() throws {
            let settings = try common.load()
            if let policy = settings.policy { _ = try PolicyFile.load(policy) }
            if let retention = settings.retention { _ = try RetentionJob.policy(retention) }
            print(settings.rendered)
        }
    }
}
