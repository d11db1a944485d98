#if canImport(Glibc)
import Glibc
#endif
import Locks
import Storage

/// Progress of long maintenance work (`gc`, `scrub`, `retention`, `quota`): items and
/// bytes done (of how many, when known), the rate and an estimate of the time left.
/// On a terminal (stderr a tty) one line rewritten in place with a carriage return, at
/// most five times a second; otherwise a JSON log line (`"event":"progress"`) every
/// `progress_interval` seconds, and one when the work is done. Thread-safe; an update
/// costs a lock and a clock read, so it may be called per item.
public final class ProgressReporter: Sendable {
    private struct State {
        var items = 0
        var totalItems: Int?
        var bytes: UInt64 = 0
        var totalBytes: UInt64?
        var lastShown: Int64 = 0
        var finished = false
    }

    /// What is being done (`gc`), and what an item is (`repositories`, `blobs`).
    public let task: String
    public let unit: String
    private let terminal: Bool
    private let intervalMicroseconds: Int64
    private let started = Clock.monotonicMicroseconds()
    private let state: Locked<State>
    private let log: AccessLog

    /// `terminal` nil: whether stderr is one. `interval`: seconds between log lines off a terminal.
    public init(task: String, unit: String, totalItems: Int? = nil, totalBytes: UInt64? = nil,
                interval: Int = Defaults.progressInterval, terminal: Bool? = nil) {
        self.task = task
        self.unit = unit
        self.terminal = terminal ?? (isatty(2) == 1)
        intervalMicroseconds = self.terminal ? 200_000 : Int64(max(0, interval)) * 1_000_000
        state = Locked(State(totalItems: totalItems, totalBytes: totalBytes))
        log = AccessLog()
    }

    /// A reporter for `task` as the settings say (`progress_interval`).
    public convenience init(task: String, unit: String, settings: Settings, totalItems: Int? = nil, totalBytes: UInt64? = nil) {
        self.init(task: task, unit: unit, totalItems: totalItems, totalBytes: totalBytes, interval: settings.progressInterval)
    }

    /// Items and bytes done so far (absolute, not increments); `ofItems` updates the total.
    public func update(items: Int, ofItems: Int? = nil, bytes: UInt64? = nil) {
        let now = Clock.monotonicMicroseconds()
        let shown: State? = state.withLock { state in
            state.items = items
            if let ofItems { state.totalItems = ofItems }
            if let bytes { state.bytes = bytes }
            guard !state.finished, now - state.lastShown >= intervalMicroseconds else { return nil }
            state.lastShown = now
            return state
        }
        if let shown { show(shown, at: now, done: false) }
    }

    /// The last line: on a terminal it stays, followed by a newline.
    public func finish() {
        let now = Clock.monotonicMicroseconds()
        let last: State? = state.withLock { state in
            guard !state.finished else { return nil }
            state.finished = true
            return state
        }
        if let last { show(last, at: now, done: true) }
    }

    private func show(_ state: State, at now: Int64, done: Bool) {
        let seconds = Double(max(now - started, 1)) / 1_000_000
        let itemRate = Double(state.items) / seconds
        let byteRate = Double(state.bytes) / seconds
        var remaining: Double?
        if let total = state.totalBytes, total > 0, state.bytes > 0, byteRate > 0 {
            remaining = Double(total > state.bytes ? total - state.bytes : 0) / byteRate
        } else if let total = state.totalItems, state.items > 0, itemRate > 0 {
            remaining = Double(max(total - state.items, 0)) / itemRate
        }
        if terminal {
            var line = "\r\u{1B}[K\(task): \(state.items)\(state.totalItems.map { "/\($0)" } ?? "") \(unit)"
            if state.bytes > 0 || state.totalBytes != nil {
                line += ", \(Self.bytes(state.bytes))\(state.totalBytes.map { "/\(Self.bytes($0))" } ?? "")"
            }
            line += ", \(Self.decimal(itemRate)) \(unit)/s"
            if byteRate > 0 { line += ", \(Self.bytes(UInt64(byteRate)))/s" }
            if done {
                line += ", done in \(Self.decimal(seconds)) s\n"
            } else if let remaining {
                line += ", about \(Int(remaining.rounded(.up))) s left"
            }
            var bytes = Array(line.utf8)
            while !bytes.isEmpty {
                let written = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
                if written <= 0 { break }
                bytes.removeFirst(written)
            }
            return
        }
        var details = ["task": task, "unit": unit, "items": String(state.items), "bytes": String(state.bytes),
                       "elapsed_s": Self.decimal(seconds), "items_per_s": Self.decimal(itemRate),
                       "bytes_per_s": String(UInt64(byteRate)), "done": String(done)]
        if let total = state.totalItems { details["total_items"] = String(total) }
        if let total = state.totalBytes { details["total_bytes"] = String(total) }
        if let remaining, !done { details["eta_s"] = String(Int(remaining.rounded(.up))) }
        log.event("progress", details)
    }

    /// `12.3 MiB`, `512 B`.
    static func bytes(_ value: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var amount = Double(value)
        var unit = 0
        while amount >= 1024, unit < units.count - 1 {
            amount /= 1024
            unit += 1
        }
        return unit == 0 ? "\(value) B" : "\(decimal(amount)) \(units[unit])"
    }

    /// One decimal place, without Foundation's formatting.
    static func decimal(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(abs(tenths % 10))"
    }
}
