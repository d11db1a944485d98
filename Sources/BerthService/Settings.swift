#if canImport(Glibc)
import Glibc
#endif
import Auth
import Mirror
import Storage

/// Berth's settings, from lowest to highest precedence: defaults, the config file,
/// `BERTH_<KEY>` environment variables, command-line flags.
///
/// The file holds `key = value` lines; `#` starts a comment. An unknown key or a bad value
/// is an error that names the key and where it came from.
public struct Settings: Equatable, Sendable {
    public init() {}

    public var store: String?
    public var socket: String?
    public var socketMode = Defaults.socketMode
    /// Worker processes a supervising `berth serve` keeps running; 0: no supervisor, this
    /// process serves alone.
    public var workers = Defaults.workers
    public var threads = Defaults.threads
    /// Accept threads, which also answer GET and HEAD; 0: one per core (at least two).
    public var pullThreads = Defaults.pullThreads
    public var automaticCrossMount = false
    public var maxUploadSessions = Defaults.maximumUploadSessions
    public var policy: String?
    public var uploadAge = Defaults.uploadAge
    public var gcGracePeriod = Defaults.gcGracePeriod
    public var gcUntaggedManifestAge: Int?
    public var logLevel = LogLevel.info
    /// The htpasswd file (bcrypt) the worker checks Basic credentials against; nil: the
    /// worker authenticates nobody (anonymous, or REMOTE_USER from nginx `auth_basic`).
    public var htpasswd: String?
    /// What a 401 asks for; nil: `token` once an htpasswd file is set.
    public var auth: AuthMode?
    /// An Ed25519 PEM key that signs tokens instead of the store's keys.
    public var tokenKey: String?
    public var tokenTTL = Defaults.tokenTTL
    public var service = Defaults.tokenService
    /// Write-once tags (`immutable_tags = <repository pattern> <tag pattern>`, repeatable).
    public var immutableTags: [ImmutableTagRule] = []
    /// Byte quotas (`quota = <repository pattern> <size>`, repeatable; a later rule with
    /// the same pattern replaces the earlier one).
    public var quotas: [QuotaRule] = []
    /// Where every repository event is POSTed (`webhook = URL`, repeatable). Set: the
    /// store records events (`EventOutbox`) and one process delivers them.
    public var webhooks: [String] = []
    /// A file whose content (trailing newline dropped) signs each webhook request.
    public var webhookSecretFile: String?
    public var webhookMaxAttempts = Defaults.webhookMaximumAttempts
    /// The audit log (JSON lines, appended); nil: none.
    public var auditLog: String?
    /// Workers note which manifests (and mirrored blobs) are pulled and pushed, and flush
    /// it to `_berth/pulls/` every `pullRecordInterval` seconds (retention, mirror eviction).
    public var recordPulls = true
    public var pullRecordInterval = Defaults.pullRecordInterval
    /// The retention policy file (`berth retention`, and `berth gc` first); nil: none.
    public var retention: String?
    /// Seconds between progress log lines of maintenance commands when stderr is no terminal.
    public var progressInterval = Defaults.progressInterval
    /// External token issuers (`issuer.<name>.<field>` keys), by name.
    public var issuers: [String: IssuerConfiguration] = [:]
    /// Pull-through mirrors (`mirror.<name>.<field>` keys), by name (the namespace).
    public var mirrors: [String: MirrorConfiguration] = [:]
    /// The mirror that reads of names no hosted repository has go to (docker's `registry-mirrors`).
    public var mirrorDefault: String?
    /// Threads per worker for pulls that wait on an upstream (only with mirrors), and the
    /// most blob fetches from upstreams running at once per worker.
    public var mirrorThreads = Defaults.mirrorThreads
    /// The fields of an `issuer.<name>.` section.
    public static let issuerFields = ["issuer", "audience", "jwks_file", "jwks_url", "ca_file", "jwks_refresh", "rootcertbundle",
                                       "user_claim", "groups_claim", "clock_skew"]

    public enum AuthMode: String, CaseIterable, Sendable {
        /// `WWW-Authenticate: Basic`; Basic credentials on every request.
        case basic
        /// Docker token auth: `WWW-Authenticate: Bearer realm=…/token`; Basic still accepted.
        case token
    }

    /// True when the worker authenticates requests itself.
    public var authenticates: Bool { htpasswd != nil || auth != nil || !issuers.isEmpty }

    public enum LogLevel: String, CaseIterable, Sendable {
        case debug, info, warning, error
    }

    public struct Problem: Error, CustomStringConvertible {
        public let key: String
        public let source: String
        public let reason: String
        public var description: String { "\(source): \(key): \(reason)" }
    }

    /// Every key, in the order `config check` prints them.
    public static let keys = ["store", "socket", "socket_mode", "workers", "threads", "pull_threads", "automatic_cross_mount", "max_upload_sessions",
                       "policy", "upload_age", "gc_grace_period", "gc_untagged_manifest_age", "log_level",
                       "htpasswd", "auth", "token_key", "token_ttl", "service", "mirror_default", "mirror_threads",
                       "immutable_tags", "quota",
                       "webhook", "webhook_secret_file", "webhook_max_attempts", "audit_log",
                       "record_pulls", "pull_record_interval", "retention", "progress_interval"]

    /// Applies one `key = value`; `source` says where it came from, for errors.
    public mutating func set(_ key: String, _ value: String, source: String) throws(Problem) {
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
        func boolean() throws(Problem) -> Bool {
            guard let answer = Self.boolean(value) else { throw fail("\"\(value)\" is not true or false") }
            return answer
        }
        if key.hasPrefix("issuer.") {
            try setIssuer(key, value, fail: fail)
            return
        }
        if key.hasPrefix("mirror.") {
            try setMirror(key, value, fail: fail)
            return
        }
        switch key {
        case "store": store = try path()
        case "socket": socket = value.isEmpty ? nil : try path()
        case "socket_mode":
            guard let mode = UInt32(value, radix: 8), mode <= 0o777 else { throw fail("\"\(value)\" is not an octal mode like 660") }
            socketMode = mode
        case "workers": workers = try integer(0...64)
        case "threads": threads = try integer(1...1024)
        case "pull_threads": pullThreads = try integer(0...256)
        case "automatic_cross_mount": automaticCrossMount = try boolean()
        case "record_pulls": recordPulls = try boolean()
        case "pull_record_interval": pullRecordInterval = try integer(1...86_400)
        case "retention": retention = value.isEmpty ? nil : try path()
        case "progress_interval": progressInterval = try integer(0...86_400)
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
        case "htpasswd": htpasswd = value.isEmpty ? nil : try path()
        case "auth":
            if value.isEmpty { auth = nil; break }
            guard let mode = AuthMode(rawValue: value) else { throw fail("\"\(value)\" is not basic or token") }
            auth = mode
        case "token_key": tokenKey = value.isEmpty ? nil : try path()
        case "token_ttl": tokenTTL = try integer(10...86_400)
        case "service":
            guard !value.isEmpty, value.utf8.count <= 255, !value.contains("\""), !value.contains(" ") else {
                throw fail("\"\(value)\" is not a service name (no spaces or quotes)")
            }
            service = value
        case "mirror_default":
            guard !value.isEmpty else { mirrorDefault = nil; break }
            guard RepositoryName(value) != nil, !value.contains("/") else { throw fail("\"\(value)\" is not a mirror name") }
            mirrorDefault = value
        case "mirror_threads": mirrorThreads = try integer(1...1024)
        case "immutable_tags":
            // Repeatable: each line adds a rule; an empty value clears the list.
            if value.isEmpty { immutableTags = []; break }
            guard let rule = ImmutableTagRule(value) else {
                throw fail("\"\(value)\" is not <repository pattern> <tag pattern> (e.g. release/** v*)")
            }
            if !immutableTags.contains(rule) { immutableTags.append(rule) }
        case "quota":
            // Repeatable like immutable_tags; the same pattern again replaces its size.
            if value.isEmpty { quotas = []; break }
            guard let rule = QuotaRule(value) else {
                throw fail("\"\(value)\" is not <repository pattern> <size> (e.g. team/** 50GiB; units KiB MiB GiB TiB, KB MB GB TB)")
            }
            quotas.removeAll { $0.repository == rule.repository }
            quotas.append(rule)
        case "webhook":
            // Repeatable like immutable_tags.
            if value.isEmpty { webhooks = []; break }
            guard Webhook(value) != nil else { throw fail("\"\(value)\" is not an http:// or https:// URL") }
            if !webhooks.contains(value) { webhooks.append(value) }
        case "webhook_secret_file": webhookSecretFile = value.isEmpty ? nil : try path()
        case "webhook_max_attempts": webhookMaxAttempts = try integer(1...1000)
        case "audit_log": auditLog = value.isEmpty ? nil : try path()
        default:
            throw fail("unknown key (known: \(Self.keys.joined(separator: ", ")))")
        }
    }

    /// One line per value of a repeatable key; `key = ` (the empty list) when there is none.
    private static func renderRepeated(_ key: String, _ values: [String]) -> String {
        values.isEmpty ? "\n\(key) = " : values.map { "\n\(key) = \($0)" }.joined()
    }

    /// `issuer.<name>.<field> = value`: one field of an external issuer.
    private mutating func setIssuer(_ key: String, _ value: String, fail: (String) -> Problem) throws(Problem) {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let name = AuthName(String(parts[1])), Self.issuerFields.contains(String(parts[2])) else {
            throw fail("expected issuer.<name>.<\(Self.issuerFields.joined(separator: "|"))> with a name of [a-z0-9._-]")
        }
        var issuer = issuers[name.value] ?? IssuerConfiguration(name: name.value)
        switch parts[2] {
        case "issuer": issuer.issuer = value
        case "audience": issuer.audience = value
        case "jwks_file":
            guard value.hasPrefix("/") || value.hasPrefix(".") else { throw fail("\"\(value)\" is not a path") }
            issuer.jwksFile = value
        case "jwks_url":
            guard value.hasPrefix("https://"), value.count > "https://".count, !value.contains(" ") else {
                throw fail("\"\(value)\" is not an https:// URL")
            }
            issuer.jwksURL = value
        case "ca_file":
            guard value.hasPrefix("/") || value.hasPrefix(".") else { throw fail("\"\(value)\" is not a path") }
            issuer.caFile = value
        case "jwks_refresh":
            guard let seconds = Int(value), (10...86_400).contains(seconds) else { throw fail("\"\(value)\" is not 10...86400 seconds") }
            issuer.jwksRefresh = seconds
        case "rootcertbundle":
            guard value.hasPrefix("/") || value.hasPrefix(".") else { throw fail("\"\(value)\" is not a path") }
            issuer.rootCertBundle = value
        case "user_claim": issuer.userClaim = value
        case "groups_claim": issuer.groupsClaim = value.isEmpty ? nil : value
        default:
            guard let seconds = Int(value), (0...3600).contains(seconds) else { throw fail("\"\(value)\" is not 0...3600 seconds") }
            issuer.clockSkew = seconds
        }
        issuers[name.value] = issuer
    }

    /// A setting's yes or no; nil when `value` is neither.
    private static func boolean(_ value: String) -> Bool? {
        switch value {
        case "true", "yes", "on", "1": true
        case "false", "no", "off", "0": false
        default: nil
        }
    }

    /// `mirror.<name>.<field> = value`: one field of a pull-through mirror.
    private mutating func setMirror(_ key: String, _ value: String, fail: (String) -> Problem) throws(Problem) {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false)
        // The name may hold dots (mirror.docker.io.upstream): the field is the last part.
        guard parts.count >= 3, let field = parts.last.map(String.init), MirrorConfiguration.fields.contains(field) else {
            throw fail("expected mirror.<name>.<\(MirrorConfiguration.fields.joined(separator: "|"))>")
        }
        let name = parts[1..<(parts.count - 1)].joined(separator: ".")
        guard RepositoryName(name) != nil, !name.contains("/") else {
            throw fail("\"\(name)\" is not a mirror name (one repository name component: [a-z0-9] with . _ - inside)")
        }
        var mirror = mirrors[name] ?? MirrorConfiguration(name: name)
        func path() throws(Problem) -> String? {
            if value.isEmpty { return nil }
            guard value.hasPrefix("/") || value.hasPrefix(".") else { throw fail("\"\(value)\" is not a path") }
            return value
        }
        switch field {
        case "upstream":
            if let problem = MirrorConfiguration.problem(withUpstream: value) { throw fail(problem) }
            mirror.upstream = value
        case "username": mirror.username = value.isEmpty ? nil : value
        case "password_file": mirror.passwordFile = try path()
        case "ca_file": mirror.caFile = try path()
        case "max_age":
            if value.isEmpty { mirror.maxAge = nil; break }
            guard let seconds = Quantities.seconds(value) else { throw fail("\"\(value)\" is not a period (seconds, or 30d, 12h, 2w)") }
            mirror.maxAge = seconds
        case "max_bytes":
            if value.isEmpty { mirror.maxBytes = nil; break }
            guard let bytes = Quantities.bytes(value) else { throw fail("\"\(value)\" is not a size (bytes, or 512MiB, 50GiB, 2TB)") }
            mirror.maxBytes = bytes
        case "keep_missing_tags":
            guard let keep = Self.boolean(value) else { throw fail("\"\(value)\" is not true or false") }
            mirror.keepMissingTags = keep
        default:
            guard let seconds = Int(value), (0...31_536_000).contains(seconds) else { throw fail("\"\(value)\" is not 0...31536000 seconds") }
            mirror.tagTTL = seconds
        }
        mirrors[name] = mirror
    }

    /// Problems no single key shows: a mirror without an upstream, a `mirror_default`
    /// naming no mirror.
    public func checkMirrors(source: String) throws(Problem) {
        for name in mirrors.keys.sorted() where mirrors[name]?.upstream == nil {
            throw Problem(key: "mirror.\(name).upstream", source: source, reason: "missing: every mirror needs an upstream URL")
        }
        if let mirrorDefault, mirrors[mirrorDefault] == nil {
            throw Problem(key: "mirror_default", source: source, reason: "\"\(mirrorDefault)\" names no mirror.<name> section")
        }
    }

    /// Defaults, then `file` (if given), then the environment's `BERTH_<KEY>` variables.
    public static func load(file: String?, environment: [String: String]) throws(Problem) -> Settings {
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
        try settings.checkMirrors(source: file ?? "settings")
        return settings
    }

    /// Applies a config file's text, LF or CRLF lines (`\r\n` is one Character: split at `"\n"` alone, a CRLF file is one line).
    public mutating func apply(fileText: String, name: String) throws(Problem) {
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

    /// The settings as a config file would say them.
    /// Reading the text back gives the same settings: a value with spaces at either end is quoted.
    public var rendered: String {
        func text(_ value: String?) -> String {
            guard let value else { return "" }
            return value.trimmingSpaces == value ? value : "\"\(value)\""
        }
        return [
            "store = \(text(store))", "socket = \(text(socket))", "socket_mode = \(String(socketMode, radix: 8))",
            "workers = \(workers)", "threads = \(threads)", "pull_threads = \(pullThreads)", "automatic_cross_mount = \(automaticCrossMount)",
            "max_upload_sessions = \(maxUploadSessions)", "policy = \(text(policy))", "upload_age = \(uploadAge)",
            "gc_grace_period = \(gcGracePeriod)", "gc_untagged_manifest_age = \(gcUntaggedManifestAge.map(String.init) ?? "")",
            "log_level = \(logLevel.rawValue)", "htpasswd = \(text(htpasswd))", "auth = \(auth?.rawValue ?? "")",
            "token_key = \(text(tokenKey))", "token_ttl = \(tokenTTL)", "service = \(text(service))",
            "mirror_default = \(text(mirrorDefault))", "mirror_threads = \(mirrorThreads)",
            "webhook_secret_file = \(text(webhookSecretFile))", "webhook_max_attempts = \(webhookMaxAttempts)",
            "audit_log = \(text(auditLog))", "record_pulls = \(recordPulls)", "pull_record_interval = \(pullRecordInterval)",
            "retention = \(text(retention))", "progress_interval = \(progressInterval)",
        ].joined(separator: "\n") + Self.renderRepeated("immutable_tags", immutableTags.map(\.description))
            + Self.renderRepeated("quota", quotas.map(\.description))
            + Self.renderRepeated("webhook", webhooks) + issuers.keys.sorted().map { name -> String in
            guard let issuer = issuers[name] else { return "" }
            var lines = ["issuer.\(name).user_claim = \(text(issuer.userClaim))", "issuer.\(name).clock_skew = \(issuer.clockSkew)"]
            if let value = issuer.issuer { lines.append("issuer.\(name).issuer = \(text(value))") }
            if let value = issuer.audience { lines.append("issuer.\(name).audience = \(text(value))") }
            if let value = issuer.jwksFile { lines.append("issuer.\(name).jwks_file = \(text(value))") }
            if let value = issuer.rootCertBundle { lines.append("issuer.\(name).rootcertbundle = \(text(value))") }
            if let value = issuer.jwksURL { lines.append("issuer.\(name).jwks_url = \(text(value))") }
            if let value = issuer.caFile { lines.append("issuer.\(name).ca_file = \(text(value))") }
            if issuer.jwksURL != nil { lines.append("issuer.\(name).jwks_refresh = \(issuer.jwksRefresh)") }
            if let value = issuer.groupsClaim { lines.append("issuer.\(name).groups_claim = \(value)") }
            return "\n" + lines.joined(separator: "\n")
        }.joined() + mirrors.keys.sorted().map { name -> String in
            guard let mirror = mirrors[name] else { return "" }
            var lines = ["mirror.\(name).upstream = \(text(mirror.upstream))", "mirror.\(name).tag_ttl = \(mirror.tagTTL)"]
            if let value = mirror.username { lines.append("mirror.\(name).username = \(text(value))") }
            if let value = mirror.passwordFile { lines.append("mirror.\(name).password_file = \(text(value))") }
            if let value = mirror.caFile { lines.append("mirror.\(name).ca_file = \(text(value))") }
            if let value = mirror.maxAge { lines.append("mirror.\(name).max_age = \(value)") }
            if let value = mirror.maxBytes { lines.append("mirror.\(name).max_bytes = \(value)") }
            if !mirror.keepMissingTags { lines.append("mirror.\(name).keep_missing_tags = false") }
            return "\n" + lines.joined(separator: "\n")
        }.joined()
    }
}

extension StringProtocol {
    public var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
    }
}
