#if canImport(Glibc)
import Glibc
#endif

/// The startup check of the store's lock and rename path (`berth serve` runs it once):
/// everything Berth's correctness across processes and nodes rests on, tried on the
/// store's own filesystem in a few milliseconds. A filesystem that fails it would lose
/// tags or serve torn files under load, so the caller refuses to serve.
///
/// It proves what one node can see: an exclusive `flock` keeps a second open file
/// description out and is released on unlock; a file replaced by `rename` reads as the
/// new content through a new open; a hard link shows in the link count (gc counts links).
/// Whether other nodes honour the same locks depends on the mount (`StoreMount`).
public enum StoreSelfTest {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let check: String
        public let reason: String
        /// True when the check could not run (the store is full: no room for its few
        /// bytes), which says nothing about locks or renames: the caller serves anyway.
        public var inconclusive = false
        public var description: String { "store self-test \(inconclusive ? "could not run" : "failed") (\(check)): \(reason)" }

        init(check: String, reason: String) {
            self.check = check
            self.reason = reason
        }

        init(check: String, _ error: StorageError) {
            self.check = check
            reason = "\(error)"
            if case .io(_, _, let code) = error, code == ENOSPC || code == EDQUOT { inconclusive = true }
        }
    }

    /// Runs every check; throws the first that fails. Leaves no file behind.
    public static func run(layout: StoreLayout) throws(Failure) {
        do { try FileSystem.makeDirectories(layout.temporaryDirectory) } catch {
            throw Failure(check: "setup", error)
        }
        try checkLocks(layout.selfTestFile(.current, "lock"))
        try checkRename(layout.selfTestFile(.current, "rename"), temporaryDirectory: layout.temporaryDirectory)
        try checkLinks(layout.selfTestFile(.current, "link"), layout.selfTestFile(.current, "link2"))
    }

    static func checkLocks(_ path: String) throws(Failure) {
        defer { _ = unlink(path) }
        let first: Int32, second: Int32
        do {
            first = try FileSystem.open(path, O_RDWR | O_CREAT)
            second = try FileSystem.open(path, O_RDWR)
        } catch {
            throw Failure(check: "lock", error)
        }
        defer { close(first); close(second) }
        guard flock(first, LOCK_EX | LOCK_NB) == 0 else {
            throw Failure(check: "lock", reason: "flock on \(path) fails (\(String(cString: strerror(errno)))): "
                          + "the filesystem offers no locks (NFS: mount without nolock, with a lock service)")
        }
        if flock(second, LOCK_EX | LOCK_NB) == 0 {
            throw Failure(check: "lock", reason: "an exclusive flock on \(path) did not keep a second descriptor out: "
                          + "the filesystem ignores locks, so concurrent pushes would overwrite each other's tags")
        }
        let refused = errno
        guard refused == EWOULDBLOCK else {
            throw Failure(check: "lock", reason: "a contended flock on \(path) failed with \(String(cString: strerror(refused))) "
                          + "instead of waiting")
        }
        _ = flock(first, LOCK_UN)
        guard flock(second, LOCK_EX | LOCK_NB) == 0 else {
            throw Failure(check: "lock", reason: "a released flock on \(path) was not granted to the next holder "
                          + "(\(String(cString: strerror(errno))))")
        }
    }

    static func checkRename(_ path: String, temporaryDirectory: String) throws(Failure) {
        defer { _ = unlink(path) }
        for round in 0..<3 {
            let content = Array("round \(round) \(UploadID.random().value)\n".utf8)
            do {
                try FileSystem.writeAtomically(content, to: path, temporaryDirectory: temporaryDirectory)
                let read = try FileSystem.readFile(path, limit: 4096)
                guard read == content else {
                    throw Failure(check: "rename", reason: "\(path) replaced by rename reads "
                                  + (read == nil ? "as missing" : "as the old content") + " through a new open")
                }
            } catch let failure as Failure {
                throw failure
            } catch let error as StorageError {
                throw Failure(check: "rename", error)
            } catch {
                throw Failure(check: "rename", reason: "\(error)")
            }
        }
    }

    static func checkLinks(_ path: String, _ second: String) throws(Failure) {
        defer { _ = unlink(path); _ = unlink(second) }
        do {
            let fd = try FileSystem.open(path, O_WRONLY | O_CREAT | O_TRUNC)
            close(fd)
            _ = unlink(second)
            try FileSystem.link(path, second)
        } catch {
            throw Failure(check: "link", error)
        }
        guard let linked = FileSystem.status(path)?.linkCount, linked == 2 else {
            throw Failure(check: "link", reason: "a file with two names shows a link count of "
                          + "\(FileSystem.status(path).map { String($0.linkCount) } ?? "nothing"), not 2: gc would misjudge shared blobs")
        }
        _ = unlink(second)
        guard FileSystem.status(path)?.linkCount == 1 else {
            throw Failure(check: "link", reason: "a removed link still counts in the link count")
        }
    }
}
