#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Asks `condition` every 50 ms until it holds or `seconds` have passed (then once more);
/// whether it held. For waiting on a state, never for asserting a duration.
public func poll(seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    repeat {
        if condition() { return true }
        usleep(50_000)
    } while Date() < deadline
    return condition()
}
