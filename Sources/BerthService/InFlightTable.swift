#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The request each worker thread is answering, in memory the supervisor shares with its
/// workers, so that when a worker dies the supervisor can say which requests died with it.
///
/// The supervisor creates it (a memfd) before it starts any worker and hands it to each
/// as fd 3. One page-aligned region per worker slot, one record per server thread:
/// ```
/// region:  0  records (UInt64, written by the supervisor)      64  record 0, record 1, …
/// record:  0  state   0 idle, 1 being written, 2 in flight
///          8  started CLOCK_MONOTONIC microseconds
///         16  lengths of method, request id, path (UInt8, UInt8, UInt16)
///         24  method (8 bytes)   32  request id (64 bytes)   96  path before any '?' (416 bytes)
/// ```
/// Never a header, a query or a body: nothing a log must not show. A thread writes only its
/// own record, with plain stores and no system call; the state word is stored last with
/// release ordering, so a record marked in flight is complete. The supervisor reads a
/// region only after its worker is gone, and clears it before starting the next one.
enum InFlightTable {
    static let recordSize = 512
    static let headerSize = 64
    static let methodCapacity = 8
    static let idCapacity = 64
    static let pathCapacity = recordSize - 96
    /// The descriptor a supervised worker finds the table on.
    static let workerDescriptor: Int32 = 3

    /// Bytes of one worker's region for `records` threads, rounded up to whole pages.
    static func regionSize(records: Int) -> Int {
        let page = max(4096, Int(sysconf(Int32(_SC_PAGESIZE))))
        let bytes = headerSize + records * recordSize
        return (bytes + page - 1) / page * page
    }

    /// A request as a dead worker's record showed it.
    struct Entry: Equatable {
        var method: String
        var requestID: String
        var path: String
        /// The record was being written when the worker died: the fields may be partial.
        var incomplete: Bool
        var startedMicroseconds: Int64
    }
}

/// The supervisor's side: every worker's region.
final class InFlightMemory {
    let descriptor: Int32
    let workers: Int
    let records: Int
    let regionSize: Int
    private let base: UnsafeMutableRawPointer

    /// Creates and maps the table for `workers` regions of `records` records each, in
    /// shared memory (`/dev/shm`), or in an unlinked file in `fallbackDirectory`.
    init(workers: Int, records: Int, fallbackDirectory: String) throws(ServiceError) {
        self.workers = workers
        self.records = records
        regionSize = InFlightTable.regionSize(records: records)
        let created = Self.anonymousFile(fallbackDirectory: fallbackDirectory)
        guard created >= 0 else { throw ServiceError("cannot create the in-flight table: \(String(cString: strerror(errno)))") }
        // Above the descriptors workers get (0 and 3), so that dup2 always makes a copy.
        let fd = fcntl(created, F_DUPFD_CLOEXEC, 10)
        close(created)
        guard fd >= 0 else { throw ServiceError("cannot move the in-flight table: \(String(cString: strerror(errno)))") }
        guard ftruncate(fd, off_t(workers * regionSize)) == 0,
              let mapped = mmap(nil, workers * regionSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
              mapped != MAP_FAILED else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw ServiceError("cannot map the in-flight table: \(reason)")
        }
        descriptor = fd
        base = mapped
        for worker in 0..<workers { clear(worker) }
    }

    /// A new file no other process can open by name (unlinked at once); -1 and errno on failure.
    private static func anonymousFile(fallbackDirectory: String) -> Int32 {
        var random = SystemRandomNumberGenerator()
        let name = "/berth-in-flight-\(getpid())-\(String(random.next() as UInt64, radix: 16))"
        let fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd >= 0 {
            shm_unlink(name)
            return fd
        }
        var template = Array("\(fallbackDirectory)/in-flight-XXXXXX".utf8CString)
        let file = mkstemp(&template)
        if file >= 0 {
            _ = fcntl(file, F_SETFD, FD_CLOEXEC)
            unlink(String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return file
    }

    /// Zeroes worker `index`'s records and writes the record count its worker reads.
    func clear(_ index: Int) {
        let region = base + index * regionSize
        memset(region, 0, regionSize)
        region.storeBytes(of: UInt64(records), as: UInt64.self)
    }

    /// The records of worker `index` that were not idle: what it was answering when it died.
    func entries(_ index: Int) -> [InFlightTable.Entry] {
        let region = UnsafeRawPointer(base + index * regionSize)
        var entries: [InFlightTable.Entry] = []
        for record in 0..<records {
            let at = region + InFlightTable.headerSize + record * InFlightTable.recordSize
            let state = at.loadUnaligned(as: UInt64.self)
            guard state != 0 else { continue }
            func text(_ offset: Int, _ length: Int, _ capacity: Int) -> String {
                String(decoding: UnsafeRawBufferPointer(start: at + offset, count: min(length, capacity)), as: UTF8.self)
            }
            entries.append(InFlightTable.Entry(
                method: text(24, Int(at.load(fromByteOffset: 16, as: UInt8.self)), InFlightTable.methodCapacity),
                requestID: text(32, Int(at.load(fromByteOffset: 17, as: UInt8.self)), InFlightTable.idCapacity),
                path: text(96, Int(at.loadUnaligned(fromByteOffset: 18, as: UInt16.self)), InFlightTable.pathCapacity),
                incomplete: state != 2,
                startedMicroseconds: at.loadUnaligned(fromByteOffset: 8, as: Int64.self)))
        }
        return entries
    }
}

/// A worker's side: its own region, one record per server thread.
final class InFlightRecords: @unchecked Sendable {
    // @unchecked: thread `i` alone writes record `i` (FastCGIExchange.threadIndex).
    private let base: UnsafeMutableRawPointer
    private let records: Int

    /// Maps region `index` of the table on `descriptor`; nil when there is none (the
    /// worker then serves without publishing).
    init?(descriptor: Int32, index: Int) {
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_size >= InFlightTable.headerSize,
              let header = mmap(nil, InFlightTable.headerSize, PROT_READ, MAP_SHARED, descriptor, 0), header != MAP_FAILED
        else { return nil }
        // Every region starts with the record count; all regions are the same size.
        let records = Int(truncatingIfNeeded: header.load(as: UInt64.self))
        munmap(header, InFlightTable.headerSize)
        let size = InFlightTable.regionSize(records: records)
        guard records > 0, records < 1 << 16, (index + 1) * size <= Int(status.st_size),
              let region = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, off_t(index * size)),
              region != MAP_FAILED
        else { return nil }
        close(descriptor)
        base = region
        self.records = records
    }

    private func state(_ record: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt64>> {
        record.assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// Records that `thread` starts answering a request.
    func begin(thread: Int, method: String, requestID: String?, uri: String) {
        guard thread < records else { return }
        let record = base + InFlightTable.headerSize + thread * InFlightTable.recordSize
        state(record).pointee.store(1, ordering: .relaxed)
        record.storeBytes(of: Clock.monotonicMicroseconds(), toByteOffset: 8, as: Int64.self)
        let methodLength = Self.copy(method, to: record + 24, capacity: InFlightTable.methodCapacity)
        let idLength = Self.copy(requestID ?? "", to: record + 32, capacity: InFlightTable.idCapacity)
        let pathLength = Self.copy(uri, upTo: UInt8(ascii: "?"), to: record + 96, capacity: InFlightTable.pathCapacity)
        record.storeBytes(of: UInt8(methodLength), toByteOffset: 16, as: UInt8.self)
        record.storeBytes(of: UInt8(idLength), toByteOffset: 17, as: UInt8.self)
        record.storeBytes(of: UInt16(pathLength), toByteOffset: 18, as: UInt16.self)
        state(record).pointee.store(2, ordering: .releasing)
    }

    /// Records that `thread` has answered its request.
    func end(thread: Int) {
        guard thread < records else { return }
        state(base + InFlightTable.headerSize + thread * InFlightTable.recordSize).pointee.store(0, ordering: .releasing)
    }

    /// Copies `text`'s UTF-8 (up to the first `stop` byte, at most `capacity` bytes) with
    /// one memcpy; returns the bytes copied.
    private static func copy(_ text: String, upTo stop: UInt8? = nil, to destination: UnsafeMutableRawPointer, capacity: Int) -> Int {
        var text = text
        return text.withUTF8 { bytes in
            var count = bytes.count
            if let stop, let index = bytes.firstIndex(of: stop) { count = index }
            count = min(count, capacity)
            if count > 0, let source = bytes.baseAddress { memcpy(destination, source, count) }
            return count
        }
    }
}
