#if canImport(Glibc)
import Glibc
#endif
import Storage

/// `berth retention` and the retention pass of `berth gc`: the policy file of `retention`
/// applied to the store (`Retention`), every deletion written to the audit log as the
/// command's (`delete`, detail `manifest`, with the rule and reason) next to the event the
/// store queued in the same commit.
public enum RetentionJob {
    /// Loads and parses the policy file (errors name the file and the line).
    public static func policy(_ path: String) throws -> RetentionPolicy {
        guard let text = TextFile.read(path) else {
            throw ServiceError("cannot read retention policy \(path): \(String(cString: strerror(errno)))")
        }
        do { return try RetentionPolicy(text: text) } catch {
            throw ServiceError("\(path): \(error)")
        }
    }

    /// Runs the policy of `settings` over `store` (opened with `settings.openStore()`).
    public static func run(_ settings: Settings, store: Store, policyFile: String, dryRun: Bool,
                           progress: ProgressReporter? = nil) throws -> Retention.Report {
        let policy = try policy(policyFile)
        var options = Retention.Options()
        options.gracePeriod = settings.gcGracePeriod
        options.dryRun = dryRun
        options.excludedNamespaces = settings.mirrors.keys.sorted()
        if let progress { options.progress = { done, total in progress.update(items: done, ofItems: total) } }
        let report: Retention.Report
        do { report = try Retention(store: store, policy: policy, options: options).run() } catch {
            throw ServiceError("retention failed: \(error)")
        }
        progress?.finish()
        if !dryRun, let audit = try AuditLog.open(settings) {
            for verdict in report.deletions {
                audit.recordCommand("delete", repository: verdict.repository.value, digest: verdict.digest.description,
                                    tags: verdict.tags, detail: "manifest (retention \(verdict.rule): \(verdict.reason))")
            }
        }
        return report
    }

    /// One line per deletion (and, with `kept`, per kept manifest): what, its tags, the rule and the reason.
    public static func lines(_ report: Retention.Report, dryRun: Bool, kept: Bool = false) -> [String] {
        report.verdicts.filter { $0.deleted || kept }.map { verdict in
            let verb = verdict.deleted ? (dryRun ? "would delete" : "deleted") : "keep"
            let tags = verdict.tags.isEmpty ? "untagged" : "tags \(verdict.tags.joined(separator: ","))"
            return "\(verb) \(verdict.repository.value)@\(verdict.digest) (\(tags)): \(verdict.reason) [\(verdict.rule)]"
        }
    }
}
