#if canImport(Glibc)
import Glibc
#endif
import Registry

/// One JSON object per line on stderr (journald keeps it): an access line per request
/// (level info, warning for a 4xx, error for a 5xx) and a line per lifecycle event.
/// Lines below `level` are dropped.
struct AccessLog: Sendable {
    let level: Settings.LogLevel

    init(level: Settings.LogLevel = .info) { self.level = level }

    func request(_ request: RegistryRequest, _ response: RegistryResponse, microseconds: Int64) {
        let lineLevel: Settings.LogLevel = response.status >= 500 ? .error : response.status >= 400 ? .warning : .info
        guard Self.rank(lineLevel) >= Self.rank(level) else { return }
        var fields: [(String, String)] = [
            ("level", lineLevel.rawValue),
            ("event", "request"),
            ("method", request.method),
            ("uri", request.uri),
            ("status", String(response.status)),
            ("duration_ms", String(Double(microseconds) / 1000)),
        ]
        if let id = request.headers["x-request-id"] { fields.append(("request_id", id)) }
        if let user = request.headers["remote-user"] { fields.append(("user", user)) }
        if response.status >= 400, let message = Self.errorMessage(response) { fields.append(("error", message)) }
        write(fields)
    }

    func event(_ name: String, _ details: [String: String]) {
        guard Self.rank(.info) >= Self.rank(level) else { return }
        write([("level", "info"), ("event", name)] + details.sorted { $0.key < $1.key })
    }

    private static func rank(_ level: Settings.LogLevel) -> Int {
        Settings.LogLevel.allCases.firstIndex(of: level) ?? 0
    }

    private func write(_ fields: [(String, String)]) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let time = Double(now.tv_sec) + Double(now.tv_nsec / 1_000_000) / 1000
        var line = "{\"time\":\(time)"
        for (key, value) in fields { line += ",\"\(key)\":\"\(Self.escape(value))\"" }
        line += "}\n"
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }

    private static func errorMessage(_ response: RegistryResponse) -> String? {
        response.body.isEmpty || response.body.count > 4096 ? nil : String(decoding: response.body, as: UTF8.self)
    }

    private static func escape(_ text: String) -> String {
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
