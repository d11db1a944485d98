import ArgumentParser
import BerthService
import Storage

/// `berth events`: the store's event outbox (what waits for delivery to the webhooks, and
/// what was given up on), and `berth events replay` to try the dead letters again.
struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the events waiting for delivery to webhooks and the dead ones; replay dead ones.",
        subcommands: [List.self, Replay.self], defaultSubcommand: List.self)

    /// The store's outbox and the one repository `--repository` names (nil: all).
    static func target(_ common: SettingsOptions, repository text: String?) throws -> (EventOutbox, RepositoryName?) {
        let outbox = try common.load().openStore().events
        guard let text else { return (outbox, nil) }
        guard let name = RepositoryName(text) else { throw ValidationError("\"\(text)\" is not a repository name") }
        return (outbox, name)
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print each pending and dead batch of events (one per commit), oldest first, and totals.")
        @OptionGroup var common: SettingsOptions
        @Option(help: "Only this repository.") var repository: String?

        func run() throws {
            let (outbox, only) = try Events.target(common, repository: repository)
            var totals = (pending: 0, pendingEvents: 0, dead: 0, deadEvents: 0)
            do {
                for dead in [false, true] {
                    let names = try only.map({ [$0] }) ?? outbox.repositories(dead: dead)
                    for name in names {
                        if !dead, outbox.hasPrepared(name) {
                            print("unsettled \(name) (a commit cut off by a crash: the deliverer settles it)")
                        }
                        for queued in try outbox.queued(name, dead: dead) {
                            let batch = queued.batch
                            var line = "\(dead ? "dead" : "pending") \(name) \(queued.name.generation) events=\(batch.events.count)"
                                + " attempts=\(batch.attempts)"
                            if !dead, batch.notBefore > 0 { line += " next_attempt=\(batch.notBefore)" }
                            if let error = batch.lastError { line += " last_error=\"\(error)\"" }
                            print(line)
                            for event in batch.events {
                                print("  \(event.id) \(event.type) \(event.subject ?? "") \(event.data.digest)")
                            }
                            if dead { totals.dead += 1; totals.deadEvents += batch.events.count } else {
                                totals.pending += 1
                                totals.pendingEvents += batch.events.count
                            }
                        }
                    }
                }
            } catch {
                throw CommandFailure("events: \(error)")
            }
            print("events: pending_batches=\(totals.pending) pending_events=\(totals.pendingEvents)"
                  + " dead_batches=\(totals.dead) dead_events=\(totals.deadEvents)")
        }
    }

    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move dead batches back to their queues with their attempts reset (webhooks that took them are skipped).")
        @OptionGroup var common: SettingsOptions
        @Option(help: "Only this repository.") var repository: String?

        func run() throws {
            let (outbox, only) = try Events.target(common, repository: repository)
            do {
                print("events replay: batches=\(try outbox.replay(only))")
            } catch {
                throw CommandFailure("events replay: \(error)")
            }
        }
    }
}
