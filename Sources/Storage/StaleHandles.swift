import Locks

/// ESTALE answers of the shared filesystem seen by this process, for metrics: those
/// retried, and those that outlasted the retries (answered 503).
public enum StaleHandles {
    private static let totals = Locked<(retried: UInt64, failed: UInt64)>((0, 0))

    /// ESTALE answers retried and ESTALE failures given up on, since the process started.
    public static var snapshot: (retried: UInt64, failed: UInt64) { totals.withLock { $0 } }

    static func record(retried: Bool) {
        totals.withLock { $0 = retried ? ($0.retried + 1, $0.failed) : ($0.retried, $0.failed + 1) }
    }
}
