#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Storage

/// What `berth gc` and `berth scrub` leave for `/metrics`.
public struct MaintenanceReport: Codable, Sendable {
    public var finished: Int
    public var counts: [String: Int]
    public var bytes: UInt64

    public init(finished: Int, counts: [String: Int], bytes: UInt64) {
        self.finished = finished
        self.counts = counts
        self.bytes = bytes
    }

    /// Saves the report; a failure only costs the metric, never the run.
    public func save(as name: StaticString, in files: MetricsFiles) {
        try? files.save(JSONText.encode(self), to: files.layout.maintenanceReportFile(name))
    }
}
