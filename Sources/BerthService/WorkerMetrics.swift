#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Storage
import Locks

/// This process's request counters, saved every second (when they changed) to
/// `_berth/metrics/worker-<instance>.json` so that whichever worker answers `/metrics`
/// reports the sum over all workers of the store (and the restarts their supervisors saved).
final class WorkerMetrics: Sendable {
    /// Upper bounds of the request duration histogram, in seconds.
    static let buckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

    struct Counters: Codable, Equatable {
        /// "route status" → requests.
        var requests: [String: UInt64] = [:]
        /// route → count per bucket (cumulative is computed when rendering), last = +Inf.
        var durations: [String: [UInt64]] = [:]
        var durationSums: [String: Double] = [:]
        var bytesReceived: UInt64 = 0
        var lockWaits: UInt64 = 0
        var lockWaitMicroseconds: UInt64 = 0
        /// Workers a supervisor started again after one died (only supervisors save it).
        var workerRestarts: UInt64 = 0
        /// "mirror event" → count (bytes for `fetched_bytes`): what pull-through mirrors did.
        var mirrors: [String: UInt64] = [:]
        /// ESTALE answers of a shared filesystem retried, and those that outlasted the retries.
        var staleHandleRetries: UInt64 = 0
        var staleHandleFailures: UInt64 = 0

        init() {}

        /// Missing keys count as zero: files saved by older versions, and supervisors'
        /// files, hold only some counters.
        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            requests = try container.decodeIfPresent([String: UInt64].self, forKey: .requests) ?? [:]
            durations = try container.decodeIfPresent([String: [UInt64]].self, forKey: .durations) ?? [:]
            durationSums = try container.decodeIfPresent([String: Double].self, forKey: .durationSums) ?? [:]
            bytesReceived = try container.decodeIfPresent(UInt64.self, forKey: .bytesReceived) ?? 0
            lockWaits = try container.decodeIfPresent(UInt64.self, forKey: .lockWaits) ?? 0
            lockWaitMicroseconds = try container.decodeIfPresent(UInt64.self, forKey: .lockWaitMicroseconds) ?? 0
            workerRestarts = try container.decodeIfPresent(UInt64.self, forKey: .workerRestarts) ?? 0
            mirrors = try container.decodeIfPresent([String: UInt64].self, forKey: .mirrors) ?? [:]
            staleHandleRetries = try container.decodeIfPresent(UInt64.self, forKey: .staleHandleRetries) ?? 0
            staleHandleFailures = try container.decodeIfPresent(UInt64.self, forKey: .staleHandleFailures) ?? 0
        }

        /// Adds `other`'s counts to these.
        mutating func add(_ other: Counters) {
            for (key, value) in other.requests { requests[key, default: 0] += value }
            for (route, counts) in other.durations where counts.count == WorkerMetrics.buckets.count + 1 {
                var sum = durations[route] ?? Array(repeating: 0, count: counts.count)
                for index in counts.indices { sum[index] += counts[index] }
                durations[route] = sum
            }
            for (route, value) in other.durationSums { durationSums[route, default: 0] += value }
            bytesReceived += other.bytesReceived
            lockWaits += other.lockWaits
            lockWaitMicroseconds += other.lockWaitMicroseconds
            workerRestarts += other.workerRestarts
            for (key, value) in other.mirrors { mirrors[key, default: 0] += value }
            staleHandleRetries += other.staleHandleRetries
            staleHandleFailures += other.staleHandleFailures
        }
    }

    /// Counters of the threads that hash to it: with one shared lock, 32 threads took
    /// turns (and spun) on every request.
    private final class Shard: Sendable {
        let counters = Locked(Counters())
    }

    private let files: MetricsFiles
    private let quotas: QuotaBook?
    private let outbox: EventOutbox?
    private let ownFile: String
    private let shards = (0..<16).map { _ in Shard() }
    private let lastSaved = Locked(Counters())

    /// `quotas` and `outbox`, when given, add their gauges (usage per quota rule; event
    /// batches pending and dead).
    init(files: MetricsFiles, quotas: QuotaBook? = nil, outbox: EventOutbox? = nil) {
        self.files = files
        self.quotas = quotas
        self.outbox = outbox
        ownFile = files.layout.workerMetricsFile(.current)
    }

    /// Counts one answered request. Every thread passes through here, so the locked
    /// part only bumps numbers in place: key and bucket are worked out before.
    func observe(route: String, status: Int, microseconds: Int64, bytesReceived: UInt64) {
        let seconds = Double(microseconds) / 1_000_000
        let bucket = Self.buckets.firstIndex { seconds <= $0 } ?? Self.buckets.count
        let key = "\(route) \(status)"
        shard.counters.withLock { counters in
            counters.requests[key, default: 0] += 1
            counters.durations[route, default: Self.emptyHistogram][bucket] += 1
            counters.durationSums[route, default: 0] += seconds
            counters.bytesReceived += bytesReceived
        }
    }

    /// Counts what a pull-through mirror did: `event` names the counter (`hits`, `misses`,
    /// `follows`, `stale_serves`, `upstream_errors`, `failed_fetches`, or `fetched_bytes` by bytes).
    func countMirror(_ mirror: String, _ event: String, by amount: UInt64 = 1) {
        let key = "\(mirror) \(event)"
        shard.counters.withLock { $0.mirrors[key, default: 0] += amount }
    }

    /// The calling thread's shard.
    private var shard: Shard { shards[Int((UInt(pthread_self()) &* 0x9E37_79B9_7F4A_7C15) >> 60)] }

    private static let emptyHistogram = [UInt64](repeating: 0, count: buckets.count + 1)

    /// Saves the counters when they changed since the last save (the worker calls it
    /// every second from a background loop).
    func saveIfChanged() {
        let current = snapshot()
        let changed = lastSaved.withLock { saved in
            guard saved != current else { return false }
            saved = current
            return true
        }
        if changed { write(current) }
    }

    /// Writes this process's counters (with its lock waits) to its file.
    func save() { write(snapshot()) }

    private func snapshot() -> Counters {
        var snapshot = Counters()
        for shard in shards { snapshot.add(shard.counters.withLock { $0 }) }
        let locks = LockWaits.snapshot
        snapshot.lockWaits = locks.count
        snapshot.lockWaitMicroseconds = locks.microseconds
        let stale = StaleHandles.snapshot
        snapshot.staleHandleRetries = stale.retried
        snapshot.staleHandleFailures = stale.failed
        return snapshot
    }

    private func write(_ snapshot: Counters) { Self.save(snapshot, to: ownFile, files: files) }

    /// Saves a supervisor's count of worker restarts to its own file, summed like a worker's.
    static func saveWorkerRestarts(_ restarts: UInt64, files: MetricsFiles) {
        var counters = Counters()
        counters.workerRestarts = restarts
        save(counters, to: files.layout.supervisorMetricsFile(.current), files: files)
    }

    private static func save(_ counters: Counters, to file: String, files: MetricsFiles) {
        try? files.save(JSONText.encode(counters), to: file)
    }

    /// The Prometheus text exposition for the whole store.
    func exposition() -> String {
        save()
        var total = Counters()
        let decoder = JSONDecoder()
        for bytes in files.processCounters() {
            guard let counters = try? decoder.decode(Counters.self, from: Data(bytes)) else { continue }
            total.add(counters)
        }
        var out = PrometheusText()
        out.family("berth_requests_total", "counter", "Requests answered by the workers, by route and status.")
        for (key, value) in total.requests.sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: " ")
            out.sample("berth_requests_total", ["route": String(parts.first ?? ""), "status": String(parts.last ?? "")], Double(value))
        }
        out.family("berth_request_duration_seconds", "histogram", "Time the worker spent on a request (not nginx's sending).")
        for (route, counts) in total.durations.sorted(by: { $0.key < $1.key }) {
            var cumulative: UInt64 = 0
            for (index, count) in counts.enumerated() {
                cumulative += count
                let bound = index < Self.buckets.count ? PrometheusText.number(Self.buckets[index]) : "+Inf"
                out.sample("berth_request_duration_seconds_bucket", ["route": route, "le": bound], Double(cumulative))
            }
            out.sample("berth_request_duration_seconds_sum", ["route": route], total.durationSums[route] ?? 0)
            out.sample("berth_request_duration_seconds_count", ["route": route], Double(cumulative))
        }
        out.family("berth_received_bytes_total", "counter", "Request body bytes read by the workers (uploads, manifests).")
        out.sample("berth_received_bytes_total", [:], Double(total.bytesReceived))
        out.family("berth_lock_waits_total", "counter", "Repository and upload locks taken.")
        out.sample("berth_lock_waits_total", [:], Double(total.lockWaits))
        out.family("berth_lock_wait_seconds_total", "counter", "Time spent waiting for locks held by others.")
        out.sample("berth_lock_wait_seconds_total", [:], Double(total.lockWaitMicroseconds) / 1_000_000)
        out.family("berth_worker_restarts_total", "counter", "Worker processes started again by their supervisor after one died or exited.")
        out.sample("berth_worker_restarts_total", [:], Double(total.workerRestarts))
        if !total.mirrors.isEmpty {
            out.family("berth_mirror_events_total", "counter",
                       "What pull-through mirrors did: hits (manifests and blobs answered from the store), misses (fetched from the upstream), pulls that followed a fetch, stale serves, upstream errors, failed fetches.")
            for (key, value) in total.mirrors.sorted(by: { $0.key < $1.key }) where !key.hasSuffix(" fetched_bytes") {
                let parts = key.split(separator: " ")
                out.sample("berth_mirror_events_total", ["mirror": String(parts.first ?? ""), "event": String(parts.last ?? "")], Double(value))
            }
            out.family("berth_mirror_fetched_bytes_total", "counter", "Bytes of blobs and manifests fetched from upstreams and stored.")
            for (key, value) in total.mirrors.sorted(by: { $0.key < $1.key }) where key.hasSuffix(" fetched_bytes") {
                out.sample("berth_mirror_fetched_bytes_total", ["mirror": String(key.split(separator: " ").first ?? "")], Double(value))
            }
        }
        out.family("berth_stale_handle_retries_total", "counter",
                   "Opens, stats and reads tried again after ESTALE (a file another node replaced on a shared filesystem).")
        out.sample("berth_stale_handle_retries_total", [:], Double(total.staleHandleRetries))
        out.family("berth_stale_handle_failures_total", "counter", "ESTALE answers that outlasted the retries (answered 503).")
        out.sample("berth_stale_handle_failures_total", [:], Double(total.staleHandleFailures))

        let totals = files.totals()
        out.family("berth_repositories", "gauge", "Repositories in the store.")
        out.sample("berth_repositories", [:], Double(totals.repositories))
        out.family("berth_blobs", "gauge", "Distinct blobs in the store (each stored once).")
        out.sample("berth_blobs", [:], Double(totals.blobs))
        out.family("berth_blob_bytes", "gauge", "Bytes of the distinct blobs.")
        out.sample("berth_blob_bytes", [:], Double(totals.blobBytes))
        out.family("berth_uploads_in_progress", "gauge", "Open upload sessions.")
        out.sample("berth_uploads_in_progress", [:], Double(totals.uploadsInProgress))
        appendMaintenance(to: &out)
        appendQuotas(to: &out)
        appendOutbox(to: &out)
        return out.text
    }

    /// Per quota rule: bytes used (as its ledger has it), the limit, distinct blobs and
    /// repositories matched.
    private func appendQuotas(to out: inout PrometheusText) {
        guard let quotas, !quotas.rules.isEmpty, let usage = try? quotas.usage() else { return }
        let families: [(String, String, (QuotaBook.Usage) -> Double)] = [
            ("berth_quota_used_bytes", "Bytes of the distinct blobs the repositories of a quota rule hold.", { Double($0.used) }),
            ("berth_quota_limit_bytes", "The limit of a quota rule.", { Double($0.rule.limit) }),
            ("berth_quota_blobs", "Distinct blobs counted by a quota rule.", { Double($0.blobs) }),
            ("berth_quota_repositories", "Repositories a quota rule matches.", { Double($0.repositories.count) }),
        ]
        for (name, help, value) in families {
            out.family(name, "gauge", help)
            for entry in usage { out.sample(name, ["rule": entry.rule.repository.text], value(entry)) }
        }
    }

    /// Event batches (one per commit) waiting for webhook delivery, and dead letters.
    private func appendOutbox(to out: inout PrometheusText) {
        guard let outbox, let pending = try? outbox.batchCount(dead: false), let dead = try? outbox.batchCount(dead: true) else { return }
        out.family("berth_events_pending_batches", "gauge", "Event batches (one per commit) waiting for delivery to the webhooks.")
        out.sample("berth_events_pending_batches", [:], Double(pending))
        out.family("berth_events_dead_batches", "gauge", "Event batches given up on after the last attempt (berth events replay).")
        out.sample("berth_events_dead_batches", [:], Double(dead))
    }

    private func appendMaintenance(to out: inout PrometheusText) {
        appendReport("gc", to: &out, when: "When the last gc finished.",
                     counts: ("berth_gc_last_removed", "kind", "What the last gc removed, by kind."),
                     bytes: ("berth_gc_last_freed_bytes", "Bytes the last gc freed."))
        appendReport("scrub", to: &out, when: "When the last scrub finished.",
                     counts: ("berth_scrub_last_problems", "state", "Problems the last scrub found, and those left unrepaired."),
                     bytes: ("berth_scrub_last_hashed_bytes", "Bytes the last scrub re-hashed."))
    }

    /// The last run of a maintenance command (`gc`, `scrub`): when, its counts by label, its bytes.
    private func appendReport(_ name: StaticString, to out: inout PrometheusText, when help: String,
                              counts: (metric: String, label: String, help: String), bytes: (metric: String, help: String)) {
        guard let data = files.read(files.layout.maintenanceReportFile(name)),
              let report = try? JSONDecoder().decode(MaintenanceReport.self, from: Data(data)) else { return }
        let timestamp = "berth_\(name)_last_run_timestamp_seconds"
        out.family(timestamp, "gauge", help)
        out.sample(timestamp, [:], Double(report.finished))
        out.family(counts.metric, "gauge", counts.help)
        for (key, count) in report.counts.sorted(by: { $0.key < $1.key }) {
            out.sample(counts.metric, [counts.label: key], Double(count))
        }
        out.family(bytes.metric, "gauge", bytes.help)
        out.sample(bytes.metric, [:], Double(report.bytes))
    }
}
