/// Every path Berth uses on disk, and the only place that builds one.
///
/// ```
/// <root>/
///   <repository>/                   one OCI image layout per repository
///     oci-layout                    {"imageLayoutVersion":"1.0.0"}
///     index.json                    one descriptor per tag, one per untagged manifest,
///                                   annotated with the generation of the commit that wrote it
///     blobs/<algorithm>/<hex>       hard links to the shared copy in _berth/blobs
///     <child>/...                   a nested repository (team/ and team/app/)
///   _berth/                         bookkeeping ('_' cannot start a repository name)
///     blobs/<algorithm>/<hex>       one copy of every blob; repositories link to it
///     uploads/<uuid>/data           bytes received so far
///     uploads/<uuid>/state          repository, offset and hash state, replaced whole
///     sessions/<repository>/_open/<uuid>
///                                   empty marker per open session, to count them per repository
///     referrers/<repository>/_subject/<alg>/<hex>/<alg>-<hex>.json
///                                   descriptor of one manifest whose subject is <alg>:<hex>
///     referrers/<repository>/_subject/<alg>/<hex>/_stamp
///                                   replaced on every change of that folder: an epoch and
///                                   the last changes (ReferrersStamp)
///     journals/<repository>/_index  the last commits of that repository's index.json as
///                                   operations, so other processes replay them (IndexJournal)
///     locks/<repository>/_lock      flock target of one repository (never in a layout)
///     locks/_create                 held while a repository layout is created
///     locks/_fetch/<repository>/_<alg>-<hex>
///                                   held while a mirror fetches the blob into the repository;
///                                   names its upload session and length, for others to read along
///     locks/_events                 held by the one process delivering events
///     locks/_quota/<key>            held while a change is checked against, and recorded in,
///                                   the quota account <key> (see `QuotaLedger`)
///     quota/<key>/ledger            the distinct blobs one quota pattern's repositories hold:
///                                   a header naming the file, then appended `+ digest size` and
///                                   `- digest` lines; compacted by replacing it whole
///     events/outbox/<repository>/_prepared.json
///                                   the events of the commit under way (or cut off by a crash),
///                                   with the generation its index.json will carry (see `EventOutbox`)
///     events/outbox/<repository>/_queue/<counter>-<random>.json
///                                   the events of one commit, waiting for delivery, named by the
///                                   generation of the commit (counter first: in commit order)
///     events/dead/<repository>/_queue/<counter>-<random>.json
///                                   events given up on after the last attempt (`berth events replay`)
///     catalog-stamp                 replaced after each repository is created, naming the last
///                                   creations (cached catalogs take them in from it)
///     tmp/                          temp files, renamed into place when complete (and the
///                                   clock probe and startup self-test files of each process)
///     trash/<uuid>                  files and sessions no longer needed, freed in the background
///     quarantine/<alg>-<hex>        corrupt blobs moved aside by `berth scrub --repair`
///     metrics/worker-<instance>.json      counters of one worker process, summed by /metrics
///     metrics/supervisor-<instance>.json  worker restarts counted by one supervising `berth serve`
///     metrics/<gc|scrub>.json       the last run's result
///     auth/keys/<kid>.key           token signing keys (hex Ed25519 seed, mode 600): the newest signs, all verify
///     auth/robots/<name>.json       one robot token: name, SHA-256 of its secret, scopes, expiry (mode 600)
/// ```
/// Inputs are validated value types, so no path can leave the root. Where a walk of the
/// tree meets a file name, the inverse parses here turn it back into those types
/// (`referrer(fromFileName:)`, `blob(_:fromFileName:)`, …) before any path is built again.
public struct StoreLayout: Sendable {
    /// The storage root, absolute, without a trailing slash.
    public let root: String

    public init(root: String) {
        var trimmed = root
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.root = trimmed
    }

    // MARK: Repositories

    public static let layoutFileName = "oci-layout"
    public static let indexFileName = "index.json"
    public static let blobsDirectoryName = "blobs"
    /// Names a repository directory uses for itself: a nested repository may not be called so.
    public static let reservedEntryNames: Set<String> = [layoutFileName, indexFileName, blobsDirectoryName]

    public func repositoryDirectory(_ name: RepositoryName) -> String { "\(root)/\(name.value)" }
    public func layoutFile(_ name: RepositoryName) -> String { "\(repositoryDirectory(name))/\(Self.layoutFileName)" }
    public func indexFile(_ name: RepositoryName) -> String { "\(repositoryDirectory(name))/\(Self.indexFileName)" }
    public func blobsDirectory(_ name: RepositoryName, _ algorithm: Digest.Algorithm) -> String {
        "\(repositoryDirectory(name))/\(Self.blobsDirectoryName)/\(algorithm.rawValue)"
    }
    public func blobFile(_ name: RepositoryName, _ digest: Digest) -> String {
        "\(blobsDirectory(name, digest.algorithm))/\(digest.hex)"
    }
    /// The blob's path relative to the root, as nginx's store location sees it.
    public func relativeBlobPath(_ name: RepositoryName, _ digest: Digest) -> String {
        "\(name.value)/\(Self.blobsDirectoryName)/\(digest.algorithm.rawValue)/\(digest.hex)"
    }

    // MARK: Bookkeeping

    /// The bookkeeping folder's name: `_` cannot start a repository name.
    public static let bookkeepingDirectoryName = "_berth"
    public var bookkeepingDirectory: String { "\(root)/\(Self.bookkeepingDirectoryName)" }
    /// The folders a store needs before its first request.
    public var requiredDirectories: [String] { [root, bookkeepingDirectory, temporaryDirectory, uploadsDirectory, locksDirectory] }
    public func sharedBlobsDirectory(_ algorithm: Digest.Algorithm) -> String {
        "\(bookkeepingDirectory)/blobs/\(algorithm.rawValue)"
    }
    public func sharedBlobFile(_ digest: Digest) -> String { "\(sharedBlobsDirectory(digest.algorithm))/\(digest.hex)" }

    public var uploadsDirectory: String { "\(bookkeepingDirectory)/uploads" }
    public func uploadDirectory(_ id: UploadID) -> String { "\(uploadsDirectory)/\(id.value)" }
    public func uploadDataFile(_ id: UploadID) -> String { "\(uploadDirectory(id))/data" }
    public func uploadStateFile(_ id: UploadID) -> String { "\(uploadDirectory(id))/state" }

    /// `_subject` cannot be a repository component, so nested names never collide.
    public func referrerSubjectsDirectory(_ name: RepositoryName, _ algorithm: Digest.Algorithm) -> String {
        "\(bookkeepingDirectory)/referrers/\(name.value)/_subject/\(algorithm.rawValue)"
    }
    public func referrersDirectory(_ name: RepositoryName, subject: Digest) -> String {
        "\(referrerSubjectsDirectory(name, subject.algorithm))/\(subject.hex)"
    }
    public func referrerFile(_ name: RepositoryName, subject: Digest, referrer: Digest) -> String {
        "\(referrersDirectory(name, subject: subject))/\(referrer.algorithm.rawValue)-\(referrer.hex).json"
    }
    /// Replaced after every change to the subject's folder; cached lists check it.
    /// (No `.json` suffix: never taken for a referrer.)
    public func referrersStampFile(_ name: RepositoryName, subject: Digest) -> String {
        "\(referrersDirectory(name, subject: subject))/_stamp"
    }
    /// The referrer a file in a `referrersDirectory` stands for (inverse of `referrerFile`).
    public static func referrer(fromFileName name: String) -> Digest? {
        guard name.hasSuffix(".json") else { return nil }
        let stem = name.dropLast(".json".count)
        guard let dash = stem.firstIndex(of: "-") else { return nil }
        return Digest("\(stem[..<dash]):\(stem[stem.index(after: dash)...])")
    }
    /// The blob a file in a blobs folder of `algorithm` stands for (inverse of `blobFile`
    /// and `sharedBlobFile`).
    public static func blob(_ algorithm: Digest.Algorithm, fromFileName name: String) -> Digest? {
        Digest(algorithm: algorithm, hex: name)
    }

    /// Holds one folder per repository name with open sessions.
    public var sessionsDirectory: String { "\(bookkeepingDirectory)/sessions" }
    /// The last component of every `openSessionsDirectory`.
    public static let openSessionsDirectoryName = "_open"
    /// `_open` cannot be a repository component, so nested names never collide.
    public func openSessionsDirectory(_ name: RepositoryName) -> String {
        "\(sessionsDirectory)/\(name.value)/\(Self.openSessionsDirectoryName)"
    }
    public func openSessionMarker(_ name: RepositoryName, _ id: UploadID) -> String {
        "\(openSessionsDirectory(name))/\(id.value)"
    }

    public var locksDirectory: String { "\(bookkeepingDirectory)/locks" }
    /// `_lock` cannot be a repository component, so it never collides with a nested name.
    public func repositoryLockFile(_ name: RepositoryName) -> String { "\(locksDirectory)/\(name.value)/_lock" }
    public var creationLockFile: String { "\(locksDirectory)/_create" }
    /// `_index` cannot be a repository component, so it never collides with a nested name.
    public func indexJournalFile(_ name: RepositoryName) -> String { "\(bookkeepingDirectory)/journals/\(name.value)/_index" }
    public func fetchLocksDirectory(_ name: RepositoryName) -> String { "\(locksDirectory)/_fetch/\(name.value)" }
    /// `_` cannot start a repository component, so it never collides with a nested name.
    public func fetchLockFile(_ name: RepositoryName, _ digest: Digest) -> String {
        "\(fetchLocksDirectory(name))/_\(digest.algorithm.rawValue)-\(digest.hex)"
    }
    var catalogStampFile: String { "\(bookkeepingDirectory)/catalog-stamp" }

    public var temporaryDirectory: String { "\(bookkeepingDirectory)/tmp" }
    /// An entry met while listing `temporaryDirectory` (a name, never request data).
    public func temporaryFile(named name: String) -> String { "\(temporaryDirectory)/\(name)" }
    /// Created and removed at once by `StoreClock` to read the filesystem's clock.
    public func clockProbeFile(_ process: ProcessInstance) -> String { "\(temporaryDirectory)/clock-\(process.name).tmp" }
    /// The files `berth serve`'s startup self-test (`StoreSelfTest`) makes and removes.
    public func selfTestFile(_ process: ProcessInstance, _ part: StaticString) -> String {
        "\(temporaryDirectory)/selftest-\(process.name)-\(part)"
    }
    public var metricsDirectory: String { "\(bookkeepingDirectory)/metrics" }
    public func workerMetricsFile(_ process: ProcessInstance) -> String { "\(metricsDirectory)/worker-\(process.name).json" }
    public func supervisorMetricsFile(_ process: ProcessInstance) -> String { "\(metricsDirectory)/supervisor-\(process.name).json" }
    /// True for the name of a file `workerMetricsFile` makes.
    public static func isWorkerMetricsFile(_ name: String) -> Bool { name.hasPrefix("worker-") && name.hasSuffix(".json") }
    /// True for the name of a file `supervisorMetricsFile` makes.
    public static func isSupervisorMetricsFile(_ name: String) -> Bool { name.hasPrefix("supervisor-") && name.hasSuffix(".json") }
    /// An entry met while listing `metricsDirectory`.
    public func metricsFile(named name: String) -> String { "\(metricsDirectory)/\(name)" }
    /// `name` is a fixed word chosen by the caller (`gc`, `scrub`), never request data.
    public func maintenanceReportFile(_ name: StaticString) -> String { "\(metricsDirectory)/\(name).json" }

    public var authDirectory: String { "\(bookkeepingDirectory)/auth" }
    public var signingKeysDirectory: String { "\(authDirectory)/keys" }
    public func signingKeyFile(_ id: AuthName) -> String { "\(signingKeysDirectory)/\(id.value).key" }
    /// The key id a file in `signingKeysDirectory` stands for (inverse of `signingKeyFile`).
    public static func signingKey(fromFileName name: String) -> AuthName? {
        guard name.hasSuffix(".key") else { return nil }
        return AuthName(String(name.dropLast(4)))
    }
    public var robotsDirectory: String { "\(authDirectory)/robots" }
    public func robotFile(_ name: AuthName) -> String { "\(robotsDirectory)/\(name.value).json" }
    /// The robot a file in `robotsDirectory` stands for (inverse of `robotFile`).
    public static func robot(fromFileName name: String) -> AuthName? {
        guard name.hasSuffix(".json") else { return nil }
        return AuthName(String(name.dropLast(5)))
    }

    // MARK: Events

    public var eventsDirectory: String { "\(bookkeepingDirectory)/events" }
    /// Where queued events live, one folder per repository (nested names nest).
    public var outboxDirectory: String { "\(eventsDirectory)/outbox" }
    public var deadEventsDirectory: String { "\(eventsDirectory)/dead" }
    /// The file names inside an outbox folder; `_` cannot start a repository component.
    public static let preparedEventsFileName = "_prepared.json"
    public static let eventQueueDirectoryName = "_queue"
    public func preparedEventsFile(_ name: RepositoryName) -> String {
        "\(outboxDirectory)/\(name.value)/\(Self.preparedEventsFileName)"
    }
    public func eventQueueDirectory(_ name: RepositoryName, dead: Bool = false) -> String {
        "\(dead ? deadEventsDirectory : outboxDirectory)/\(name.value)/\(Self.eventQueueDirectoryName)"
    }
    public func queuedEventsFile(_ name: RepositoryName, _ batch: EventBatchName, dead: Bool = false) -> String {
        "\(eventQueueDirectory(name, dead: dead))/\(batch.fileName)"
    }
    public var eventDeliveryLockFile: String { "\(locksDirectory)/_events" }

    // MARK: Quotas

    /// `key` is a `QuotaAccount` key (32 hex characters), never request data.
    public func quotaLedgerFile(_ account: QuotaAccount) -> String { "\(bookkeepingDirectory)/quota/\(account.key)/ledger" }
    public func quotaLockFile(_ account: QuotaAccount) -> String { "\(locksDirectory)/_quota/\(account.key)" }

    public var trashDirectory: String { "\(bookkeepingDirectory)/trash" }
    /// An entry of the trash (a fresh UUID, or a name met while listing it).
    public func trashEntry(_ name: String) -> String { "\(trashDirectory)/\(name)" }
    public var quarantineDirectory: String { "\(bookkeepingDirectory)/quarantine" }
    public func quarantineFile(_ digest: Digest) -> String {
        "\(quarantineDirectory)/\(digest.algorithm.rawValue)-\(digest.hex)"
    }
}
