/// Every default of Berth in one place: the settings, the command-line help, the store,
/// gc and the registry all read them from here. `systemd/berth.conf` documents the same
/// values (a test compares them).
public enum Defaults {
    /// Worker processes a supervising `berth serve` keeps running (0: one unsupervised process).
    public static let workers = 2
    /// Threads for uploads, pushes and deletes.
    public static let threads = 32
    /// Accept threads that answer pulls; 0: one per core (at least two).
    public static let pullThreads = 0
    /// Open upload sessions allowed per repository (then 429).
    public static let maximumUploadSessions = 1000
    /// Seconds an idle upload session is kept before gc removes it.
    public static let uploadAge = 86_400
    /// Seconds within which gc touches nothing that changed.
    public static let gcGracePeriod = 3600
    /// Permissions of a socket the worker creates.
    public static let socketMode: UInt32 = 0o660
    /// Seconds a lock is waited for before 429.
    public static let lockTimeoutSeconds = 30.0
    /// Times one open, stat or read is tried again after ESTALE (a file another node
    /// replaced by rename on a shared filesystem) before the request is answered 503.
    public static let staleHandleRetries = 5
    /// Seconds a token from the token endpoint is valid.
    public static let tokenTTL = 300
    /// Seconds a refresh token (`docker login`'s stored credential) is valid.
    public static let refreshTokenTTL = 90 * 86_400
    /// The token service name: the `service` of the challenge and the tokens' audience.
    public static let tokenService = "berth"
    /// Seconds a pull-through mirror serves a tag from the store before revalidating it upstream.
    public static let mirrorTagTTL = 300
    /// Threads (per worker, with mirrors configured) for pulls that wait on an upstream,
    /// and the most blob fetches from upstreams running at once per worker.
    public static let mirrorThreads = 16
    /// Failed deliveries of one event batch before it goes to the dead letters.
    public static let webhookMaximumAttempts = 10
    /// Seconds before the first retry of a failed delivery; it doubles each time, up to
    /// `webhookLongestBackoff`.
    public static let webhookFirstBackoff = 1
    public static let webhookLongestBackoff = 300
    /// Seconds between two flushes of a worker's pull records to `_berth/pulls/`.
    public static let pullRecordInterval = 60
    /// Seconds between two progress lines of gc, scrub and retention in the log (off a terminal).
    public static let progressInterval = 10
    /// Seconds one webhook request may take (connection included).
    public static let webhookTimeout = 10
}
