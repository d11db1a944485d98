#if canImport(Glibc)
import Glibc
#endif

/// The authentication bookkeeping of a store (`_berth/auth/`): token signing keys and
/// robot-token records, shared by every worker process and node like the rest of the
/// store. Every file is written crash-safely (temp file, fsync, rename, directory fsync)
/// with mode 600; readers never lock.
public struct AuthFiles: Sendable {
    public let layout: StoreLayout
    /// The store's clock, which the age of these files is judged on.
    public let clock: StoreClock

    public init(layout: StoreLayout, clock: StoreClock? = nil) {
        self.layout = layout
        self.clock = clock ?? StoreClock(layout: layout)
    }

    /// Every signing key file, by key id (unordered). An unreadable or foreign entry is skipped.
    public func signingKeys() throws(StorageError) -> [(id: AuthName, bytes: [UInt8])] {
        var keys: [(id: AuthName, bytes: [UInt8])] = []
        for entry in try FileSystem.listDirectory(layout.signingKeysDirectory) where !entry.isDirectory {
            guard let id = StoreLayout.signingKey(fromFileName: entry.name),
                  let bytes = try FileSystem.readFile(layout.signingKeyFile(id), limit: 4096) else { continue }
            keys.append((id, bytes))
        }
        return keys
    }

    /// Stores a signing key under `id` (replacing one of the same id).
    public func saveSigningKey(_ id: AuthName, _ bytes: [UInt8]) throws(StorageError) {
        try FileSystem.makeDirectories(layout.signingKeysDirectory)
        try FileSystem.writeAtomically(bytes, to: layout.signingKeyFile(id), temporaryDirectory: layout.temporaryDirectory, mode: 0o600)
    }

    /// Removes the signing key `id`; false when there was none.
    public func removeSigningKey(_ id: AuthName) throws(StorageError) -> Bool {
        guard FileSystem.exists(layout.signingKeyFile(id)) else { return false }
        try FileSystem.remove(layout.signingKeyFile(id))
        try FileSystem.fsyncDirectory(layout.signingKeysDirectory)
        return true
    }

    /// Which robots folder is there now: it changes with every robot created or removed.
    public var robotsIdentity: FileIdentity? { FileIdentity(of: layout.robotsDirectory) }

    /// Every robot record, by name (unordered).
    public func robots() throws(StorageError) -> [(name: AuthName, bytes: [UInt8])] {
        var robots: [(name: AuthName, bytes: [UInt8])] = []
        for entry in try FileSystem.listDirectory(layout.robotsDirectory) where !entry.isDirectory {
            guard let name = StoreLayout.robot(fromFileName: entry.name),
                  let bytes = try FileSystem.readFile(layout.robotFile(name), limit: 64 << 10) else { continue }
            robots.append((name, bytes))
        }
        return robots
    }

    /// Stores the record of robot `name`; with `replacing` false, fails with `nameCollision`-like
    /// `unsupported` when one exists.
    public func saveRobot(_ name: AuthName, _ bytes: [UInt8], replacing: Bool = false) throws(StorageError) {
        try FileSystem.makeDirectories(layout.robotsDirectory)
        if !replacing, FileSystem.exists(layout.robotFile(name)) {
            throw .unsupported("a robot token named \(name) exists already")
        }
        try FileSystem.writeAtomically(bytes, to: layout.robotFile(name), temporaryDirectory: layout.temporaryDirectory, mode: 0o600)
    }

    /// Removes robot `name`; false when there was none.
    public func removeRobot(_ name: AuthName) throws(StorageError) -> Bool {
        guard FileSystem.exists(layout.robotFile(name)) else { return false }
        try FileSystem.remove(layout.robotFile(name))
        try FileSystem.fsyncDirectory(layout.robotsDirectory)
        return true
    }
}

extension AuthFiles {
    /// The bytes of a configuration file (an htpasswd file, a PEM key) outside the store;
    /// nil when it does not exist.
    public static func readFile(_ path: String, limit: Int) throws(StorageError) -> [UInt8]? {
        try FileSystem.readFile(path, limit: limit)
    }
}
