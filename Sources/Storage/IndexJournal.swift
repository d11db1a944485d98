#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One change an index commit made, in a form another process can replay on its own
/// copy of the index it was made to.
enum IndexOperation: Sendable, Equatable {
    case setTag(Tag, Descriptor)
    case addUntagged(Descriptor)
    case removeTag(Tag)
    case removeManifest(Digest)

    /// The JSON form: `{"op":"set"|"untagged"|"untag"|"remove", ...}`.
    private struct Wire: Codable {
        let op: String
        var tag: String?
        var descriptor: Descriptor?
        var digest: String?
    }

    private var wire: Wire {
        switch self {
        case .setTag(let tag, let descriptor): Wire(op: "set", tag: tag.value, descriptor: descriptor)
        case .addUntagged(let descriptor): Wire(op: "untagged", descriptor: descriptor)
        case .removeTag(let tag): Wire(op: "untag", tag: tag.value)
        case .removeManifest(let digest): Wire(op: "remove", digest: digest.description)
        }
    }

    static func encode(_ operations: [IndexOperation]) -> [UInt8] { JSONText.encode(operations.map(\.wire)) }

    /// nil when any operation is malformed.
    static func decode(_ bytes: [UInt8]) -> [IndexOperation]? {
        guard let wires = try? JSONDecoder().decode([Wire].self, from: Data(bytes)) else { return nil }
        var operations: [IndexOperation] = []
        for wire in wires {
            switch (wire.op, wire.tag.flatMap(Tag.init), wire.descriptor, wire.digest.flatMap(Digest.init)) {
            case ("set", let tag?, let descriptor?, nil): operations.append(.setTag(tag, descriptor))
            case ("untagged", nil, let descriptor?, nil): operations.append(.addUntagged(descriptor))
            case ("untag", let tag?, nil, nil): operations.append(.removeTag(tag))
            case ("remove", nil, nil, let digest?): operations.append(.removeManifest(digest))
            default: return nil
            }
        }
        return operations
    }
}

/// The last commits of one repository's `index.json`, each as the generation it started
/// from, the generation and size it wrote, and its operations: a process whose cached
/// index is a few commits behind replays them (the same `IndexSnapshot` methods, so the
/// same entries in the same order) instead of parsing megabytes again. At 20,000 tags a
/// parse is ~200 ms; two worker processes taking turns at pushes parsed on every push.
///
/// Only a hint, checked on every use: an entry is used only on the exact chain from the
/// cached generation to the file's (generations are unique: a counter and 64 random
/// bits), each line carries the SHA-256 of its operations, and the replayed index must
/// come out at the file's size. Anything else, and the reader parses the file as before.
/// So the journal is replaced by rename without fsync: lost or torn by a power cut, it
/// only costs the next reader a parse. Written under the repository lock, before the
/// index it describes is renamed into place.
enum IndexJournal {
    static let header = "berth-index-journal 1"
    static let keptCommits = 64
    static let maximumSize = 1 << 20

    struct Entry: Equatable {
        let from: String
        let to: String
        let size: Int64
        let operations: [IndexOperation]
    }

    /// Adds the commit `from` -> `to` (which wrote `size` bytes) to the journal at `path`,
    /// keeping the last `keptCommits` within `maximumSize`. Failures are ignored: readers
    /// without the entry parse the file.
    static func append(from: String, to: String, size: Int64, operations: [IndexOperation],
                       path: String, temporaryDirectory: String) {
        let encoded = IndexOperation.encode(operations)
        let line = Array("\(from) \(to) \(size) \(ContentHasher.digest(of: encoded).hex) ".utf8) + encoded
        guard line.count + header.utf8.count + 2 <= maximumSize else { return }
        var kept = lines(path)
        kept.append(line)
        var total = kept.reduce(0) { $0 + $1.count + 1 }
        while kept.count > keptCommits || total + header.utf8.count + 1 > maximumSize {
            total -= kept.removeFirst().count + 1
        }
        var out = Array(header.utf8) + [UInt8(ascii: "\n")]
        for each in kept { out += each + [UInt8(ascii: "\n")] }
        do throws(StorageError) {
            try FileSystem.makeDirectories(FileSystem.parent(of: path))
            try FileSystem.writeAtomically(pieces: [out[...]], to: path, temporaryDirectory: temporaryDirectory, durable: false)
        } catch {
            return
        }
    }

    /// The commits leading from generation `from` to `to`, oldest first; nil when the
    /// journal does not hold every one of them intact.
    static func chain(from: String, to: String, path: String) -> [Entry]? {
        var byStart: [String: ArraySlice<UInt8>] = [:]
        for line in lines(path) {
            guard let space = line.firstIndex(of: UInt8(ascii: " ")) else { continue }
            byStart[String(decoding: line[..<space], as: UTF8.self)] = line[...]
        }
        var chain: [Entry] = []
        var current = from
        while current != to {
            guard chain.count < keptCommits, let line = byStart[current], let entry = parse(line) else { return nil }
            chain.append(entry)
            current = entry.to
        }
        return chain
    }

    /// The entry lines of the journal at `path` (none for a missing or foreign file).
    private static func lines(_ path: String) -> [[UInt8]] {
        guard let bytes = try? FileSystem.readFile(path, limit: maximumSize) else { return [] }
        let split = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
        guard let first = split.first, first.elementsEqual(header.utf8) else { return [] }
        return split.dropFirst().map(Array.init)
    }

    private static func parse(_ line: ArraySlice<UInt8>) -> Entry? {
        let fields = line.split(separator: UInt8(ascii: " "), maxSplits: 4, omittingEmptySubsequences: false)
        guard fields.count == 5, let size = Int64(String(decoding: fields[2], as: UTF8.self)) else { return nil }
        let encoded = Array(fields[4])
        guard ContentHasher.digest(of: encoded).hex == String(decoding: fields[3], as: UTF8.self),
              let operations = IndexOperation.decode(encoded) else { return nil }
        return Entry(from: String(decoding: fields[0], as: UTF8.self), to: String(decoding: fields[1], as: UTF8.self),
                     size: size, operations: operations)
    }
}
