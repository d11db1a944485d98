import Storage
import Locks

/// An htpasswd file (`user:hash` per line, as `htpasswd -B` writes it), kept in memory and
/// read again when it changes (its identity is looked at most once per check interval).
/// A line whose hash is of an unsupported kind is skipped, so that user cannot log in.
/// A missing or unreadable file holds no users.
final class HtpasswdFile: Sendable {
    let path: String
    private struct State {
        var watch: FileWatch
        var users: [String: String] = [:]
        var generation = 0
    }
    private let state: Locked<State>

    init(path: String, checkIntervalMilliseconds: Int64) {
        self.path = path
        state = Locked(State(watch: FileWatch(intervalMilliseconds: checkIntervalMilliseconds)))
    }

    /// The stored hash of `user`, and the file's generation (bumped by every content change).
    func hash(of user: String) -> (hash: String?, generation: Int) {
        state.withLock { state in
            refresh(&state)
            return (state.users[user], state.generation)
        }
    }

    /// The current generation, reading the file again if it changed.
    var generation: Int { state.withLock { state in refresh(&state); return state.generation } }

    private func refresh(_ state: inout State) {
        guard state.watch.needsReload({ FileIdentity(of: path) }) else { return }
        let users = Self.parse(TextFile.read(path) ?? "")
        if users != state.users {
            state.users = users
            state.generation &+= 1
        }
    }

    static func parse(_ text: String) -> [String: String] {
        var users: [String: String] = [:]
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            guard !line.hasPrefix("#"), let colon = line.firstIndex(of: ":") else { continue }
            let user = String(line[..<colon])
            // htpasswd -B writes user:hash; some tools append :comment fields.
            let hash = String(line[line.index(after: colon)...].prefix { $0 != ":" })
            guard !user.isEmpty, PasswordHash.isSupported(hash) else { continue }
            users[user] = hash
        }
        return users
    }
}

/// Small file reads of the auth module (htpasswd, PEM keys).
enum TextFile {
    static func read(_ path: String, limit: Int = 16 << 20) -> String? {
        guard let bytes = try? AuthFiles.readFile(path, limit: limit) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}
