#if canImport(Glibc)
import Glibc
#endif
import Logging
import Registry
import Storage

/// One JSON object per line on stderr (journald keeps it): `time`, `level`, `event` (the
/// message), then the metadata: strings, and lists and objects of them.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let milliseconds = Int(now.tv_sec) * 1000 + Int(now.tv_nsec / 1_000_000)
        let fields = metadata.isEmpty ? (event.metadata ?? [:]) : metadata.merging(event.metadata ?? [:]) { $1 }
        let line = Self.line(level: event.level, message: event.message.description, fields: fields, milliseconds: milliseconds)
        // One write per line, so lines of concurrent threads never interleave.
        line.withUnsafeBytes { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }

    /// One log line: `{"time":<s.mmm>,"level":…,"event":…,<fields sorted by key>}` and a newline.
    static func line(level: Logger.Level, message: String, fields: Logger.Metadata, milliseconds: Int) -> [UInt8] {
        var line: [UInt8] = []
        line.reserveCapacity(512)
        line.append(contentsOf: "{\"time\":\(milliseconds / 1000).".utf8)
        let fraction = milliseconds % 1000
        line.append(contentsOf: (fraction < 10 ? "00" : fraction < 100 ? "0" : "").utf8)
        line.append(contentsOf: "\(fraction),\"level\":\"\(level.rawValue)\",\"event\":\"".utf8)
        JSONText.appendEscaped(message, to: &line)
        line.append(UInt8(ascii: "\""))
        for key in fields.keys.sorted() {
            line.append(contentsOf: ",\"".utf8)
            JSONText.appendEscaped(key, to: &line)
            line.append(contentsOf: "\":".utf8)
            append(fields[key] ?? "", to: &line)
        }
        line.append(contentsOf: "}\n".utf8)
        return line
    }

    /// Appends a metadata value as JSON: a string, or an array or object of values.
    static func append(_ value: Logger.MetadataValue, to line: inout [UInt8]) {
        switch value {
        case .array(let values):
            line.append(UInt8(ascii: "["))
            for (index, element) in values.enumerated() {
                if index > 0 { line.append(UInt8(ascii: ",")) }
                append(element, to: &line)
            }
            line.append(UInt8(ascii: "]"))
        case .dictionary(let fields):
            line.append(UInt8(ascii: "{"))
            for (index, key) in fields.keys.sorted().enumerated() {
                if index > 0 { line.append(UInt8(ascii: ",")) }
                line.append(UInt8(ascii: "\""))
                JSONText.appendEscaped(key, to: &line)
                line.append(contentsOf: "\":".utf8)
                append(fields[key] ?? "", to: &line)
            }
            line.append(UInt8(ascii: "}"))
        case .string, .stringConvertible:
            line.append(UInt8(ascii: "\""))
            JSONText.appendEscaped(value.description, to: &line)
            line.append(UInt8(ascii: "\""))
        }
    }
}
