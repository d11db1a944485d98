#if canImport(Glibc)
import Glibc
#endif
import Logging
import Registry
import Storage

/// The worker's log through swift-log: an access line per request (info; warning for a
/// 4xx, error for a 5xx) and a line per lifecycle event, rendered by `JSONLogHandler`.
struct AccessLog: Sendable {
    private let logger: Logger

    init(level: Settings.LogLevel = .info) {
        var logger = Logger(label: "berth") { label in JSONLogHandler(label: label) }
        logger.logLevel = switch level {
        case .debug: .debug
        case .info: .info
        case .warning: .warning
        case .error: .error
        }
        self.logger = logger
    }

    func request(_ request: RegistryRequest, _ response: RegistryResponse, bytesReceived: UInt64, microseconds: Int64) {
        let level: Logger.Level = response.status >= 500 ? .error : response.status >= 400 ? .warning : .info
        var metadata: Logger.Metadata = [
            "method": .string(request.method),
            "uri": .string(request.uri),
            "route": .string(response.route),
            "status": .string(String(response.status)),
            "bytes_received": .string(String(bytesReceived)),
            "bytes_sent": .string(String(response.body.count)),
            "duration_us": .string(String(microseconds)),
        ]
        if let repository = response.repository { metadata["repository"] = .string(repository) }
        if let id = request.headers["x-request-id"] { metadata["request_id"] = .string(id) }
        if let user = request.headers["remote-user"] { metadata["user"] = .string(user) }
        if response.status >= 400, !response.body.isEmpty, response.body.count <= 4096 {
            metadata["error"] = .string(String(decoding: response.body, as: UTF8.self))
        }
        if let cause = response.cause { metadata["cause"] = .string(cause) }
        logger.log(level: level, "request", metadata: metadata)
    }

    func event(_ name: String, _ details: [String: String], level: Logger.Level = .info) {
        event(name, metadata: details.mapValues { .string($0) }, level: level)
    }

    /// A lifecycle event whose metadata may hold lists and objects (rendered as JSON).
    func event(_ name: String, metadata: Logger.Metadata, level: Logger.Level = .info) {
        logger.log(level: level, "\(name)", metadata: metadata)
    }
}

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
        var line: [UInt8] = []
        line.reserveCapacity(512)
        line.append(contentsOf: "{\"time\":\(milliseconds / 1000).".utf8)
        let fraction = milliseconds % 1000
        line.append(contentsOf: (fraction < 10 ? "00" : fraction < 100 ? "0" : "").utf8)
        line.append(contentsOf: "\(fraction),\"level\":\"\(event.level.rawValue)\",\"event\":\"".utf8)
        JSONText.appendEscaped(event.message.description, to: &line)
        line.append(UInt8(ascii: "\""))
        let fields = metadata.isEmpty ? (event.metadata ?? [:]) : metadata.merging(event.metadata ?? [:]) { $1 }
        for key in fields.keys.sorted() {
            line.append(contentsOf: ",\"".utf8)
            JSONText.appendEscaped(key, to: &line)
            line.append(contentsOf: "\":".utf8)
            Self.append(fields[key] ?? "", to: &line)
        }
        line.append(contentsOf: "}\n".utf8)
        // One write per line, so lines of concurrent threads never interleave.
        line.withUnsafeBytes { _ = Glibc.write(2, $0.baseAddress, $0.count) }
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
