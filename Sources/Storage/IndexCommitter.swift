#if canImport(Glibc)
import Glibc
#endif

/// One change to a repository's index, applied under the repository lock.
struct IndexChange: Sendable {
    /// Checks and applies the change; throws before changing anything, and then only
    /// this change is refused. Returns the events of the change (see `EventOutbox`).
    let apply: @Sendable (inout IndexSnapshot) throws(StorageError) -> [IndexEvent]
    /// Runs under the lock once the index containing the change is durable.
    let afterWrite: @Sendable () throws(StorageError) -> Void
}

/// Group commit of index changes within a process: changes to one repository that
/// arrive while a commit is running wait, and the next thread to commit takes them all,
/// under one repository lock, into one `index.json` write. A caller returns only after
/// the write containing its change is fsynced and renamed into place (or with the error
/// that kept it out). Across processes the repository's flock still orders commits.
final class IndexCommitter: @unchecked Sendable {
    // @unchecked: `queues` and every ticket's `result` are only touched with `gate` held.
    private final class Ticket {
        let change: IndexChange
        var result: Result<Void, StorageError>?
        init(_ change: IndexChange) { self.change = change }
    }

    private struct Queue {
        var pending: [Ticket] = []
        var committing = false
    }

    private let gate = ConditionLock()
    private var queues: [String: Queue] = [:]

    /// Applies `change` to the repository at `key` through `commit`, which receives every
    /// change of one group and answers, per change, whether it went in.
    func submit(
        _ change: IndexChange, key: String,
        commit: ([IndexChange]) -> [Result<Void, StorageError>]
    ) throws(StorageError) {
        let ticket = Ticket(change)
        gate.lock()
        queues[key, default: Queue()].pending.append(ticket)
        while ticket.result == nil {
            if queues[key]?.committing == true {
                gate.wait()
                continue
            }
            let group = queues[key]?.pending ?? []
            queues[key] = Queue(pending: [], committing: true)
            gate.unlock()
            let results = commit(group.map(\.change))
            gate.lock()
            for (position, member) in group.enumerated() {
                member.result = position < results.count ? results[position] : .failure(.io(operation: "commit", path: key, errno: EIO))
            }
            if let queue = queues[key], queue.pending.isEmpty { queues[key] = nil } else { queues[key]?.committing = false }
            gate.broadcast()
        }
        let result = ticket.result
        gate.unlock()
        if case .failure(let error) = result { throw error }
    }
}
