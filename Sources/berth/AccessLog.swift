#if canImport(Glibc)
import Glibc
#endif
import Logging
import Registry

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
            "method": "\(request.method)",
            "uri": "\(request.uri)",
            "route": "\(response.route)",
            "status": "\(response.status)",
            "bytes_received": "\(bytesReceived)",
            "bytes_sent": "\(response.body.count)",
            "duration_ms": "\(Double(microseconds) / 1000)",
        ]
        if let repository = response.repository { metadata["repository"] = "\(repository)" }
        if let id = request.headers["x-request-id"] { metadata["request_id"] = "\(id)" }
        if let user = request.headers["remote-user"] { metadata["user"] = "\(user)" }
        if response.status >= 400, !response.body.isEmpty, response.body.count <= 4096 {
            metadata["error"] = "\(String(decoding: response.body, as: UTF8.self))"
        }
        logger.log(level: level, "request", metadata: metadata)
    }

    func event(_ name: String, _ details: [String: String]) {
        logger.info("\(name)", metadata: details.mapValues { .string($0) })
    }
}

/// One JSON object per line on stderr (journald keeps it): `time`, `level`, `event` (the
/// message), then the metadata, each value a string.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let level = event.level, message = event.message, explicit = event.metadata
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let time = Double(now.tv_sec) + Double(now.tv_nsec / 1_000_000) / 1000
        var text = "{\"time\":\(time),\"level\":\"\(level.rawValue)\",\"event\":\"\(Self.escape(message.description))\""
        let merged = metadata.merging(explicit ?? [:]) { $1 }
        for key in merged.keys.sorted() {
            text += ",\"\(Self.escape(key))\":\"\(Self.escape(merged[key]?.description ?? ""))\""
        }
        text += "}\n"
        var bytes = Array(text.utf8)
        // One write per line, so lines of concurrent threads never interleave.
        bytes.withUnsafeMutableBytes { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}
