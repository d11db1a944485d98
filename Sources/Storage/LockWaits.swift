import Locks

/// Time spent waiting for locks in this process, for metrics.
public enum LockWaits {
    private static let totals = Locked<(count: UInt64, microseconds: UInt64)>((0, 0))

    /// Locks taken and microseconds spent waiting for them, since the process started.
    public static var snapshot: (count: UInt64, microseconds: UInt64) { totals.withLock { $0 } }

    static func record(microseconds: UInt64) {
        totals.withLock { $0 = ($0.count + 1, $0.microseconds + microseconds) }
    }
}
