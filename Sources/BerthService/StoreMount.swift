#if canImport(Glibc)
import Glibc
#endif

/// What the mount under the store says about locks and caches shared with other nodes,
/// read from `/proc/mounts` (and, for GlusterFS, from its client's command line and log).
/// Refusals name mount options known to make locks local to one node; warnings name
/// client caches that let one node read what another has already replaced.
public struct StoreMount: Equatable, Sendable {
    public let device: String
    public let mountPoint: String
    public let type: String
    public let options: [String]

    public struct Verdict: Equatable, Sendable {
        /// Each a reason not to serve from this mount.
        public var refusals: [String] = []
        public var warnings: [String] = []
    }

    /// The entries of a `/proc/mounts` text (octal escapes such as `\040` decoded).
    public static func parse(_ text: String) -> [StoreMount] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 4 else { return nil }
            return StoreMount(device: unescape(fields[0]), mountPoint: unescape(fields[1]), type: String(fields[2]),
                              options: fields[3].split(separator: ",").map(String.init))
        }
    }

    /// The mount `path` (absolute, resolved) lives on: the longest mount point above it,
    /// the last mounted of equals.
    public static func containing(_ path: String, in mounts: [StoreMount]) -> StoreMount? {
        var best: StoreMount?
        for mount in mounts {
            let point = mount.mountPoint
            let above = point == "/" || path == point || path.hasPrefix(point + "/")
            if above, point.count >= (best?.mountPoint.count ?? 0) { best = mount }
        }
        return best
    }

    /// The mount of `path` now, from /proc/mounts.
    public static func of(_ path: String) -> StoreMount? {
        guard let text = TextFile.read("/proc/mounts") else { return nil }
        return containing(path, in: parse(text))
    }

    public var isNFS: Bool { type == "nfs" || type == "nfs4" }
    public var isGlusterFS: Bool { type == "fuse.glusterfs" }

    private func option(_ name: String) -> String? {
        for option in options {
            if option == name { return "" }
            if option.hasPrefix(name + "=") { return String(option.dropFirst(name.count + 1)) }
        }
        return nil
    }

    /// The verdict from the mount options alone (and, for GlusterFS, `client`: its client's
    /// arguments and the last graph it logged, when found).
    public func verdict(client: GlusterClient? = nil) -> Verdict {
        var verdict = Verdict()
        if isNFS {
            if let local = option("local_lock"), local != "none" {
                verdict.refusals.append("NFS mount \(mountPoint) has local_lock=\(local): its locks are local to this node, "
                                        + "so other nodes would not see them; mount with local_lock=none")
            }
            if option("nolock") != nil {
                verdict.refusals.append("NFS mount \(mountPoint) has nolock: its locks are local to this node; mount without nolock")
            }
            if option("nocto") != nil {
                verdict.warnings.append("NFS mount \(mountPoint) has nocto: an open may read a file another node has already "
                                        + "replaced; mount without nocto")
            }
            if let lookup = option("lookupcache"), lookup == "positive" || lookup == "pos" || lookup == "none" {
            } else {
                verdict.warnings.append("NFS mount \(mountPoint) caches failed lookups (lookupcache=all, the default): a blob "
                                        + "another node just stored can look missing for up to acdirmax; mount with lookupcache=positive")
            }
        }
        if isGlusterFS, let client {
            let missing = GlusterClient.strictArguments.filter { !client.arguments.contains($0) }
            if !missing.isEmpty {
                verdict.warnings.append("GlusterFS mount \(mountPoint) runs with kernel caches on (missing "
                                        + "\(missing.joined(separator: " "))): other nodes' renames show up to a second late "
                                        + "and a locked read can see old data")
            }
            if !client.cacheTranslators.isEmpty {
                verdict.warnings.append("GlusterFS volume of \(mountPoint) has client caches on (\(client.cacheTranslators.joined(separator: ", "))): "
                                        + "gluster volume set <volume> performance.<name> off for stat-prefetch, quick-read, "
                                        + "open-behind, write-behind, io-cache, read-ahead, readdir-ahead, nl-cache")
            }
        }
        return verdict
    }

    private static func unescape(_ field: Substring) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.first {
            utf8 = utf8.dropFirst()
            if byte == UInt8(ascii: "\\"), utf8.count >= 3,
               let value = UInt8(String(decoding: utf8.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                utf8 = utf8.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The GlusterFS FUSE client process serving a mount point: its arguments and the cache
/// translators in the last client graph it logged.
public struct GlusterClient: Equatable, Sendable {
    /// What a mount needs so that the kernel caches nothing across nodes.
    public static let strictArguments = ["--attribute-timeout=0", "--entry-timeout=0", "--negative-timeout=0",
                                         "--fopen-keep-cache=off"]
    /// Client translators that cache data or metadata across opens.
    static let cachingTranslators = ["md-cache", "quick-read", "open-behind", "write-behind", "io-cache", "read-ahead",
                                     "readdir-ahead", "nl-cache"]

    public let arguments: [String]
    public let cacheTranslators: [String]

    public init(arguments: [String], cacheTranslators: [String]) {
        self.arguments = arguments
        self.cacheTranslators = cacheTranslators
    }

    /// The performance translators named in the last "Final graph" of a client log.
    public static func cacheTranslators(inLog log: String) -> [String] {
        guard let start = log.ranges(of: "Final graph:").last else { return [] }
        var found: [String] = []
        for line in log[start.upperBound...].split(separator: "\n") {
            guard let type = line.firstRange(of: "type performance/") else { continue }
            let name = String(line[type.upperBound...].prefix { !$0.isWhitespace })
            if cachingTranslators.contains(name), !found.contains(name) { found.append(name) }
        }
        return found
    }

    /// The client process whose last argument is `mountPoint`, from /proc.
    public static func serving(_ mountPoint: String) -> GlusterClient? {
        guard let proc = opendir("/proc") else { return nil }
        defer { closedir(proc) }
        while let entry = readdir(proc) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            guard Int32(name) != nil, let raw = TextFile.read("/proc/\(name)/cmdline") else { continue }
            let arguments = raw.split(separator: "\0").map(String.init)
            guard let program = arguments.first, program.hasSuffix("glusterfs"), arguments.last == mountPoint else { continue }
            let logFile = arguments.first { $0.hasPrefix("--log-file=") }.map { String($0.dropFirst("--log-file=".count)) }
                ?? "/var/log/glusterfs/\(mountPoint.dropFirst().replacing("/", with: "-")).log"
            let log = TextFile.tail(logFile, bytes: 1 << 20) ?? ""
            return GlusterClient(arguments: arguments, cacheTranslators: cacheTranslators(inLog: log))
        }
        return nil
    }
}
