import ArgumentParser
import BerthService
import Storage

/// `berth quota`: the usage of every byte quota (`quota = <pattern> <size>`) as its ledger
/// has it; `--reconcile` recomputes it from the disk first, as `scrub` and `gc` do.
struct Quota: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print each byte quota's usage: used, limit, percent, repositories.")

    @OptionGroup var common: SettingsOptions

    @Flag(help: "Recompute every quota's usage from the blobs on disk first (fixing and reporting drift).")
    var reconcile = false

    @Flag(help: "Also list the repositories each quota matches.")
    var verbose = false

    func run() throws {
        let settings = try common.load()
        let store = try settings.openStore()
        guard !store.quotas.rules.isEmpty else {
            print("quota: no quota rules configured (quota = <repository pattern> <size>)")
            return
        }
        if reconcile { try Self.reconcile(store, command: "reconcile", settings: settings) }
        let usage: [QuotaBook.Usage]
        do { usage = try store.quotas.usage() } catch {
            throw CommandFailure("quota: \(error)")
        }
        for entry in usage {
            let percent = (entry.percent * 10).rounded() / 10
            print("quota \(entry.rule.repository) used=\(entry.used) limit=\(entry.rule.limit) percent=\(percent)"
                  + " blobs=\(entry.blobs) repositories=\(entry.repositories.count)"
                  + " (\(ByteSize.human(entry.used)) of \(ByteSize.human(entry.rule.limit)))")
            if verbose { for name in entry.repositories { print("  \(name)") } }
        }
    }

    /// Recomputes every quota's usage from the disk, showing progress (blobs and bytes
    /// walked); prints one line per quota and each drift found (and fixed).
    static func reconcile(_ store: Store, command: String, settings: Settings) throws {
        guard !store.quotas.rules.isEmpty else { return }
        let progress = ProgressReporter(task: "quota", unit: "blobs", settings: settings)
        var blobs = 0, bytes: UInt64 = 0
        let drifts: [QuotaBook.Drift]
        do {
            drifts = try store.quotas.reconcile { count, size in
                blobs += count
                bytes += size
                progress.update(items: blobs, bytes: bytes)
            }
        } catch {
            throw CommandFailure("\(command): reconciling quotas failed: \(error)")
        }
        progress.finish()
        for drift in drifts {
            if !drift.isEmpty { print("quota drift fixed: \(drift)") }
            print("\(command) quota \(drift.rule.repository): used=\(drift.actual) limit=\(drift.rule.limit) drift=\(Int64(clamping: drift.actual) - Int64(clamping: drift.recorded))")
        }
    }
}
