#if canImport(Glibc)
import Glibc
#endif

/// Berth's settings, from lowest to highest precedence: defaults, the config file,
/// `BERTH_<KEY>` environment variables, command-line flags.
///
/// The file holds `key = value` lines; `#` starts a comment. An unknown key or a bad value
/// is an error that names the key and where it came from.
struct Settings: Equatable {
    var store: String?
    var socket: String?
    var socketMode: UInt32 = 0o660
    var threads = 32
    /// Accept threads, which also answer GET and HEAD; 0: one per core (at least two).
    var pullThreads = 0
    var automaticCrossMount = false
    var maxUploadSessions = 1000
    var policy: String?
    var uploadAge = 86_400
    var gcGracePeriod = 3600
    var gcUntaggedManifestAge: Int?
    var logLevel = LogLevel.info

    enum LogLevel: String, CaseIterable {
        case debug, info, warning, error
    }

    struct Problem: Error, CustomStringConvertible {
        let key: String
        let source: String
        let reason: String
        var description: String { "\(source): \(key): \(reason)" }
    }

    /// Every key, in the order `config check` prints them.
    static let keys = ["store", "socket", "socket_mode", "threads", "pull_threads", "automatic_cross_mount", "max_upload_sessions",
                       "policy", "upload_age", "gc_grace_period", "gc_untagged_manifest_age", "log_level"]

    /// Applies one `key = value`; `source` says where it came from, for errors.
    mutating func set(_ key: String, _ value: String, source: String) throws(Problem) {
        func fail(_ reason: String) -> Problem { Problem(key: key, source: source, reason: reason) }
        func integer(_ range: ClosedRange<Int>) throws(Problem) -> Int {
            guard let number = Int(value), range.contains(number) else {
                throw fail("\"\(value)\" is not a whole number in \(range.lowerBound)...\(range.upperBound)")
            }
            return number
        }
        func path() throws(Problem) -> String {
            guard value.hasPrefix("/") || value.hasPrefix(".") else { throw fail("\"\(value)\" is not a path") }
            return value
        }
        switch key {
        case "store": store = try path()
        case "socket": socket = value.isEmpty ? nil : try path()
        case "socket_mode":
            guard let mode = UInt32(value, radix: 8), mode <= 0o777 else { throw fail("\"\(value)\" is not an octal mode like 660") }
            socketMode = mode
        case "threads": threads = try integer(1...1024)
        case "pull_threads": pullThreads = try integer(0...256)
        case "automatic_cross_mount":
            switch value {
            case "true", "yes", "on", "1": automaticCrossMount = true
            case "false", "no", "off", "0": automaticCrossMount = false
            default: throw fail("\"\(value)\" is not true or false")
            }
        case "max_upload_sessions": maxUploadSessions = try integer(1...1_000_000)
        case "policy": policy = value.isEmpty ? nil : try path()
        case "upload_age": uploadAge = try integer(0...Int(Int32.max))
        case "gc_grace_period": gcGracePeriod = try integer(0...Int(Int32.max))
        case "gc_untagged_manifest_age": gcUntaggedManifestAge = value.isEmpty ? nil : try integer(0...Int(Int32.max))
        case "log_level":
            guard let level = LogLevel(rawValue: value) else {
                throw fail("\"\(value)\" is not one of \(LogLevel.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            logLevel = level
        default:
            throw fail("unknown key (known: \(Self.keys.joined(separator: ", ")))")
        }
    }

    /// Defaults, then `file` (if given), then the environment's `BERTH_<KEY>` variables.
    static func load(file: String?, environment: [String: String]) throws -> Settings {
        var settings = Settings()
        if let file {
            guard let text = TextFile.read(file) else {
                throw Problem(key: "config", source: file, reason: "cannot read: \(String(cString: strerror(errno)))")
            }
            try settings.apply(fileText: text, name: file)
        }
        for key in keys {
            if let value = environment["BERTH_" + key.uppercased()] {
                try settings.set(key, value, source: "environment BERTH_\(key.uppercased())")
            }
        }
        return settings
    }

    /// Applies a config file's text, LF or CRLF lines (`\r\n` is one Character: split at `"\n"` alone, a CRLF file is one line).
    mutating func apply(fileText: String, name: String) throws(Problem) {
        for (offset, rawLine) in fileText.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let line = (rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            let trimmed = line.trimmingSpaces
            if trimmed.isEmpty { continue }
            guard let equals = trimmed.firstIndex(of: "=") else {
                throw Problem(key: String(trimmed), source: "\(name):\(offset + 1)", reason: "expected key = value")
            }
            let key = trimmed[..<equals].trimmingSpaces
            var value = trimmed[trimmed.index(after: equals)...].trimmingSpaces
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            try set(key, value, source: "\(name):\(offset + 1)")
        }
    }

    /// The settings as a config file would say them: reading the text back gives the same
    /// settings (a path with spaces at either end is quoted).
    var rendered: String {
        func text(_ value: String?) -> String {
            guard let value else { return "" }
            return value.trimmingSpaces == value ? value : "\"\(value)\""
        }
        return [
            "store = \(text(store))", "socket = \(text(socket))", "socket_mode = \(String(socketMode, radix: 8))",
            "threads = \(threads)", "pull_threads = \(pullThreads)", "automatic_cross_mount = \(automaticCrossMount)",
            "max_upload_sessions = \(maxUploadSessions)", "policy = \(text(policy))", "upload_age = \(uploadAge)",
            "gc_grace_period = \(gcGracePeriod)", "gc_untagged_manifest_age = \(gcUntaggedManifestAge.map(String.init) ?? "")",
            "log_level = \(logLevel.rawValue)",
        ].joined(separator: "\n")
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
    }
}
