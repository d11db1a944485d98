import Registry
import Locks

/// Successful credential checks, so that a bcrypt (or a signature check) runs once per
/// credential and TTL rather than once per request. Keyed by HMAC-SHA256 of the
/// credential under a key drawn at random for this process, so the table holds no
/// password or token and its keys are useless outside it. Bounded: when full, expired
/// entries go, then everything. An entry counts only for the generation of the credential
/// files it was checked against. Failures are never stored.
final class CredentialCache: Sendable {
    struct Key: Hashable, Sendable {
        let a: UInt64, b: UInt64, c: UInt64, d: UInt64
    }
    struct Entry: Sendable {
        let identity: Identity
        let expires: Int
        let generation: Int
    }

    private let secret = Secrets.randomBytes(32)
    private let table = Locked<[Key: Entry]>([:])
    let capacity: Int
    let ttl: Int

    init(capacity: Int, ttl: Int) {
        self.capacity = capacity
        self.ttl = ttl
    }

    /// The cache key of a credential: HMAC over its parts, each prefixed with its length.
    func key(_ parts: [String]) -> Key {
        var data: [UInt8] = []
        for part in parts {
            let bytes = Array(part.utf8)
            let count = UInt32(truncatingIfNeeded: bytes.count)
            data.append(contentsOf: [UInt8(count >> 24), UInt8(count >> 16 & 255), UInt8(count >> 8 & 255), UInt8(count & 255)])
            data.append(contentsOf: bytes)
        }
        let mac = Secrets.hmacSHA256(key: secret, data)
        func word(_ offset: Int) -> UInt64 { mac[offset..<(offset + 8)].reduce(0) { $0 << 8 | UInt64($1) } }
        return Key(a: word(0), b: word(8), c: word(16), d: word(24))
    }

    func lookup(_ key: Key, generation: Int, now: Int) -> Identity? {
        table.withLock { table in
            guard let entry = table[key] else { return nil }
            guard entry.expires > now, entry.generation == generation else {
                table[key] = nil
                return nil
            }
            return entry.identity
        }
    }

    /// Stores a success until `min(now + ttl, expires)`.
    func store(_ key: Key, _ identity: Identity, generation: Int, now: Int, expires: Int? = nil) {
        let until = min(now + ttl, expires ?? Int.max)
        guard until > now else { return }
        table.withLock { table in
            if table.count >= capacity, table[key] == nil {
                table = table.filter { $0.value.expires > now && $0.value.generation == generation }
                if table.count >= capacity { table.removeAll(keepingCapacity: true) }
            }
            table[key] = Entry(identity: identity, expires: until, generation: generation)
        }
    }

    var count: Int { table.withLock { $0.count } }
}
