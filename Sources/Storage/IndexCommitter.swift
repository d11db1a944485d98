#if canImport(Glibc)
import Glibc
#endif

/// One change to a repository's index, applied under the repository lock.
struct IndexChange: Sendable {
    /// Checks and applies the change; throws before changing anything, and then only
    /// this change is refused.
    let apply: @Sendable (inout IndexSnapshot) throws(StorageError) -> Void
    /// Runs under the lock once the index containing the change is durable.
    let afterWrite: @Sendable () throws(StorageError) -> Void
}

/// Group commit of index changes within a process: changes to one repository that
/// arrive while a commit is running wait, and the next thread to commit takes them all,
/// under one repository lock, into one `index.json` write. A caller returns only after
/// the write containing its change is fsynced and renamed into place (or with the error
/// that kept it out). Across processes the repository's flock still orders commits.
final class IndexCommitter: @unchecked Sendable {
    // @unchecked: `queues` and every ticket's `result` are only touched with `mutex` held.
    private final class Ticket {
        let change: IndexChange
        var result: Result<Void, StorageError>?
        init(_ change: IndexChange) { self.change = change }
    }

    private struct Queue {
        var pending: [Ticket] = []
        var committing = false
    }

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var queues: [String: Queue] = [:]

    init() {
        mutex.initialize(to: pthread_mutex_t())
        condition.initialize(to: pthread_cond_t())
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Applies `change` to the repository at `key` through `commit`, which receives every
    /// change of one group and answers, per change, whether it went in.
    func submit(
        _ change: IndexChange, key: String,
        commit: ([IndexChange]) -> [Result<Void, StorageError>]
    ) throws(StorageError) {
        let ticket = Ticket(change)
        pthread_mutex_lock(mutex)
        queues[key, default: Queue()].pending.append(ticket)
        while ticket.result == nil {
            if queues[key]?.committing == true {
                pthread_cond_wait(condition, mutex)
                continue
            }
            let group = queues[key]?.pending ?? []
            queues[key] = Queue(pending: [], committing: true)
            pthread_mutex_unlock(mutex)
            let results = commit(group.map(\.change))
            pthread_mutex_lock(mutex)
            for (position, member) in group.enumerated() {
                member.result = position < results.count ? results[position] : .failure(.io(operation: "commit", path: key, errno: EIO))
            }
            if let queue = queues[key], queue.pending.isEmpty { queues[key] = nil } else { queues[key]?.committing = false }
            pthread_cond_broadcast(condition)
        }
        let result = ticket.result
        pthread_mutex_unlock(mutex)
        if case .failure(let error) = result { throw error }
    }
}
