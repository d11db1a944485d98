import Locks

/// Slows down guessing: after `threshold` failed logins from one client address, or for
/// one user, within `window` seconds, further attempts from it (or for them) are refused
/// with 429 for 1 s, then 2 s, 4 s, … at most `maximumDelay`, without checking the
/// password. A success clears the address and the user. Bounded: past `capacity`
/// records, the ones not currently blocking are dropped.
final class FailureThrottle: Sendable {
    struct Record: Sendable {
        var failures: Int
        var last: Int
        var blockedUntil: Int
    }
    private let table = Locked<[String: Record]>([:])
    let threshold: Int
    let window: Int
    let maximumDelay: Int
    let capacity: Int

    init(threshold: Int = 5, window: Int = 600, maximumDelay: Int = 60, capacity: Int = 100_000) {
        self.threshold = threshold
        self.window = window
        self.maximumDelay = maximumDelay
        self.capacity = capacity
    }

    static func keys(user: String, client: String?) -> [String] {
        var keys = ["user:" + user]
        if let client, !client.isEmpty { keys.append("addr:" + client) }
        return keys
    }

    /// Seconds until the next attempt is allowed, when one of `keys` is blocked now.
    func retryAfter(_ keys: [String], now: Int) -> Int? {
        table.withLock { table in
            let waits = keys.compactMap { key -> Int? in
                guard let record = table[key], record.blockedUntil > now else { return nil }
                return record.blockedUntil - now
            }
            return waits.max()
        }
    }

    func recordFailure(_ keys: [String], now: Int) {
        table.withLock { table in
            if table.count >= capacity { table = table.filter { $0.value.blockedUntil > now } }
            for key in keys {
                var record = table[key] ?? Record(failures: 0, last: now, blockedUntil: 0)
                if now - record.last > window { record.failures = 0 }
                record.failures += 1
                record.last = now
                if record.failures >= threshold {
                    let exponent = min(record.failures - threshold, 16)
                    record.blockedUntil = now + min(1 << exponent, maximumDelay)
                }
                table[key] = record
            }
        }
    }

    func recordSuccess(_ keys: [String]) {
        table.withLock { table in for key in keys { table[key] = nil } }
    }
}
