#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Locks
import Testing

/// `Locked` is the one mutex of the code base: it excludes, it passes errors through, and
/// no source file falls back to `Synchronization.Mutex` (which ThreadSanitizer cannot
/// see on Linux, so `scripts/tsan` would report its every use as a race).
@Suite struct LockedTests {
    @Test func concurrentIncrementsAreAllCounted() async {
        let counter = Locked(0)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { for _ in 0..<2_000 { counter.withLock { $0 += 1 } } }
            }
        }
        #expect(counter.withLock { $0 } == 16_000)
    }

    struct Refused: Error, Equatable {}

    @Test func anErrorThrownInsidePassesThroughAndReleasesTheLock() {
        let value = Locked([1])
        var caught: Refused?
        do {
            try value.withLock { (list: inout [Int]) throws(Refused) in
                list.append(2)
                throw Refused()
            }
        } catch {
            caught = error
        }
        #expect(caught == Refused(), "the typed error came out as it was thrown")
        #expect(value.withLock { $0 } == [1, 2], "the change made before the throw stays, and the lock is free again")
    }

    @Test func noSourceFileUsesTheStandardLibraryMutex() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Sources").path
        let files = try #require(FileManager.default.enumerator(atPath: sources)).compactMap { $0 as? String }
            .filter { $0.hasSuffix(".swift") }
        #expect(files.count > 20, "the sources were found")
        for file in files {
            let text = try String(contentsOfFile: "\(sources)/\(file)", encoding: .utf8)
            #expect(!text.contains("Mutex<") && !text.contains("Mutex("), "\(file) uses Synchronization.Mutex; use Locks.Locked")
        }
    }
}
