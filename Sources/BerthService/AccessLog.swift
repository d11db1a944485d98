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
        if let user = response.user ?? request.headers["remote-user"] { metadata["user"] = .string(user) }
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
