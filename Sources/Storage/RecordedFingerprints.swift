import Synchronization

/// Which pull records were already taken since the last flush, remembered without a lock:
/// a fixed table of 64-bit fingerprints (one slot each, by the fingerprint's low bits),
/// read and written with relaxed atomics. `PullRecorder` asks it first, so a manifest
/// pulled again and again costs a fingerprint and one load per pull, not a hash-set
/// insert under a lock shared by every pull thread.
///
/// It may forget (another key took the slot: the recorder then inserts again, and its set
/// keeps one copy), and a 64-bit collision of two keys pulled in the same interval would
/// leave the second out of that one segment; both are fine for what the records are for
/// (coarse last-pulled times). `forgetAll` starts a new epoch: every slot written before
/// it misses from then on, without touching the table.
///
/// @unchecked Sendable: the table is only ever touched through its atomics, and it is
/// allocated in `init` and freed in `deinit`, when no other reference exists.
final class RecordedFingerprints: @unchecked Sendable {
    static let slotCount = 4096
    private let slots: UnsafeMutablePointer<Atomic<UInt64>>
    private let epoch = Atomic<UInt64>(1)

    init() {
        slots = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: Self.slotCount)
        for index in 0..<Self.slotCount { (slots + index).initialize(to: Atomic(0)) }
    }

    deinit {
        slots.deinitialize(count: Self.slotCount)
        slots.deallocate()
    }

    /// True when `fingerprint` was noted since the last `forgetAll`.
    func contains(_ fingerprint: UInt64) -> Bool {
        slots[slot(fingerprint)].load(ordering: .relaxed) == stamped(fingerprint)
    }

    func note(_ fingerprint: UInt64) {
        slots[slot(fingerprint)].store(stamped(fingerprint), ordering: .relaxed)
    }

    func forgetAll() {
        epoch.add(1, ordering: .relaxed)
    }

    private func slot(_ fingerprint: UInt64) -> Int { Int(truncatingIfNeeded: fingerprint & UInt64(Self.slotCount - 1)) }

    /// The fingerprint as stored in this epoch (0 never matches an empty slot of epoch 1:
    /// the multiplier is odd, so epoch × it is never 0).
    private func stamped(_ fingerprint: UInt64) -> UInt64 {
        fingerprint ^ (epoch.load(ordering: .relaxed) &* 0x9E37_79B9_7F4A_7C15)
    }

    /// FNV-1a over the kind, the repository name and the digest's first 16 hex characters
    /// (already uniformly random), with a final mix so the low bits spread.
    static func fingerprint(kind: UInt8, repository: String, digest: Digest) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        func take(_ byte: UInt8) { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        take(kind)
        take(digest.algorithm == .sha256 ? 1 : 2)
        for byte in repository.utf8 { take(byte) }
        take(0)
        for byte in digest.hex.utf8.prefix(16) { take(byte) }
        hash ^= hash >> 33
        hash = hash &* 0xFF51_AFD7_ED55_8CCD
        hash ^= hash >> 33
        return hash
    }
}
