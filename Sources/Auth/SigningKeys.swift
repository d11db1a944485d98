import Storage
import Locks

/// The token signing keys: every key in the store's `_berth/auth/keys/` (and the
/// operator's `token_key` PEM file, if configured) verifies; the operator's key, or else
/// the newest store key, signs. A rotation adds a newer key and leaves the older ones
/// verifying until they are removed, so tokens in flight stay valid. The folder is looked
/// at again at most once per check interval.
final class SigningKeys: Sendable {
    private struct State {
        var watch: FileWatch
        var keys: [String: SigningKey] = [:]
        var current: SigningKey?
        var lastForcedReload: Int64 = 0
    }
    private let files: AuthFiles
    private let configured: SigningKey?
    private let state: Locked<State>

    init(files: AuthFiles, configured: SigningKey?, checkIntervalMilliseconds: Int64) {
        self.files = files
        self.configured = configured
        state = Locked(State(watch: FileWatch(intervalMilliseconds: checkIntervalMilliseconds, fileClock: { [clock = files.clock] in clock.now() })))
    }

    /// The key that signs now, and every public key that verifies, by kid. With
    /// `missing` naming a kid this process does not know (a key another worker just
    /// made), the folder is read again at once (at most every 100 ms).
    func snapshot(missing kid: String? = nil) -> (current: SigningKey?, publicKeys: [String: [UInt8]]) {
        state.withLock { state in
            let now = Secrets.monotonicMilliseconds()
            if let kid, state.keys[kid] == nil, now - state.lastForcedReload >= 100 {
                state.lastForcedReload = now
                state.watch.invalidate()
            }
            if state.current == nil, configured == nil { state.watch.invalidate() }
            if state.watch.needsReload({ FileIdentity(of: files.layout.signingKeysDirectory) }) {
                var keys: [String: SigningKey] = [:]
                for (id, bytes) in (try? files.signingKeys()) ?? [] {
                    if let key = SigningKey(id: id, fileBytes: bytes) { keys[id.value] = key }
                }
                if let configured { keys[configured.id.value] = configured }
                state.keys = keys
                state.current = configured ?? keys.values.max { $0.id < $1.id }
            }
            return (state.current, state.keys.mapValues(\.publicKey))
        }
    }

    /// Adds a new signing key to the store; it signs from the next check on.
    @discardableResult
    static func create(in files: AuthFiles, now: Int) throws -> SigningKey {
        guard let key = SigningKey.generate(now: now) else { throw AuthError("cannot generate a signing key") }
        try files.saveSigningKey(key.id, key.fileBytes)
        return key
    }
}

/// A failure of the auth module's own setup (never a client's mistake).
public struct AuthError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
