#if canImport(Glibc)
import Glibc
#endif
import Events
import Locks
import Storage

/// The event delivery of a worker process: with webhooks configured, a thread of its own
/// tries each second to hold the store's delivery claim and, while it does, runs one
/// `EventDeliverer` pass. One process per store delivers (the claim is an flock); when it
/// dies, the next worker to try takes over. Never on a request thread.
enum EventDelivery {
    /// The webhook secret (`webhook_secret_file`, trailing newline dropped), or nil when
    /// none is set. Its content is never logged.
    static func secret(_ settings: Settings) throws -> [UInt8]? {
        guard let file = settings.webhookSecretFile else { return nil }
        guard let text = TextFile.read(file) else {
            throw ServiceError("cannot read webhook_secret_file \(file): \(String(cString: strerror(errno)))")
        }
        var bytes = Array(text.utf8)
        while let last = bytes.last, last == 10 || last == 13 { bytes.removeLast() }
        guard !bytes.isEmpty else { throw ServiceError("webhook_secret_file \(file) is empty") }
        return bytes
    }

    static func options(_ settings: Settings, secret: [UInt8]?) -> EventDeliverer.Options {
        var options = EventDeliverer.Options(webhooks: settings.webhooks.compactMap(Webhook.init), secret: secret)
        options.maximumAttempts = settings.webhookMaxAttempts
        return options
    }

    /// Starts the delivery thread (nothing without webhooks).
    static func start(store: Store, settings: Settings, secret: [UInt8]?, log: AccessLog) {
        guard !settings.webhooks.isEmpty else { return }
        let deliverer = EventDeliverer(outbox: store.events, options: options(settings, secret: secret),
                                       poster: WebhookSender(timeoutSeconds: Defaults.webhookTimeout))
        let claim = Locked<DeliveryClaim?>(nil)
        // A store problem that repeats every second is logged once, until it changes or clears.
        let lastProblems = Locked<[String]>([])
        BackgroundLoop.start(every: 1) {
            let holding = claim.withLock { held -> Bool in
                if held == nil { held = store.events.claimDelivery() }
                return held != nil
            }
            guard holding else { return }
            let report = deliverer.deliverDue(now: Int(time(nil)))
            if report.delivered > 0 {
                log.event("events_delivered", ["events": String(report.delivered)], level: .debug)
            }
            for failure in report.failures { log.event("event_delivery_failed", ["error": failure], level: .warning) }
            if report.buried > 0 {
                log.event("events_dead", ["batches": String(report.buried), "hint": "berth events; berth events replay"],
                          level: .error)
            }
            let known = lastProblems.withLock { last in defer { last = report.problems }; return Set(last) }
            for problem in report.problems where !known.contains(problem) {
                log.event("event_outbox_failed", ["error": problem], level: .error)
            }
        }
    }
}
