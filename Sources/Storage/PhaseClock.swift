#if canImport(Glibc)
import Glibc
#endif

/// How long one phase of a maintenance run took.
public struct MaintenancePhase: Sendable, Equatable {
    public let name: String
    public let seconds: Double
}

/// Times the phases of a maintenance run on the monotonic clock.
struct PhaseClock {
    private(set) var phases: [MaintenancePhase] = []
    private var started = PhaseClock.now()

    /// Closes the phase that ran since the previous call (or since the clock was made).
    mutating func finish(_ name: String) {
        let now = Self.now()
        phases.append(MaintenancePhase(name: name, seconds: now - started))
        started = now
    }

    private static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
