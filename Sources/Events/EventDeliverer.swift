import Storage

/// Delivers the store's queued events (`EventOutbox`) to every webhook: at least once,
/// in commit order per repository, each event POSTed alone as a CloudEvent in structured
/// mode (`Content-Type: application/cloudevents+json`), signed when a secret is set.
///
/// A batch goes when every webhook answered 2xx to each of its events; a webhook that
/// took it is recorded in the batch and not sent it again. A failure counts one attempt
/// and holds back that repository's later batches until the next try, `firstBackoff`
/// seconds later, doubling to `longestBackoff`; after `maximumAttempts` the batch moves
/// to the dead letters and the queue goes on. Only the holder of the store's delivery
/// claim may run it (`EventOutbox.claimDelivery`): one deliverer per store.
public struct EventDeliverer: Sendable {
    public struct Options: Sendable {
        public var webhooks: [Webhook]
        /// The HMAC key of `X-Berth-Signature-256`; nil: requests are not signed.
        public var secret: [UInt8]?
        public var maximumAttempts = Defaults.webhookMaximumAttempts
        public var firstBackoff = Defaults.webhookFirstBackoff
        public var longestBackoff = Defaults.webhookLongestBackoff
        /// A prepared batch this old is a commit cut off by a crash: settle it.
        public var settleAfter = 5

        public init(webhooks: [Webhook], secret: [UInt8]? = nil) {
            self.webhooks = webhooks
            self.secret = secret
        }
    }

    /// What one pass did.
    public struct Report: Sendable, Equatable {
        /// Events of batches that every webhook took.
        public var delivered = 0
        /// Failed attempts, each with the repository, the webhook id and the reason.
        public var failures: [String] = []
        /// Batches moved to the dead letters.
        public var buried = 0
        /// Store errors (an unreadable queue), per repository.
        public var problems: [String] = []

        public init() {}
    }

    public let outbox: EventOutbox
    public let options: Options
    private let poster: any EventPoster

    public init(outbox: EventOutbox, options: Options, poster: any EventPoster) {
        self.outbox = outbox
        self.options = options
        self.poster = poster
    }

    /// The wait after `attempts` failed attempts.
    public func backoff(afterAttempts attempts: Int) -> Int {
        let shift = min(max(attempts - 1, 0), 30)
        return min(options.longestBackoff, options.firstBackoff << shift)
    }

    /// One pass over every queue at unix time `now`: what is due is tried once.
    public func deliverDue(now: Int) -> Report {
        var report = Report()
        do {
            try outbox.settleInterrupted(olderThan: options.settleAfter)
        } catch {
            report.problems.append("settling an interrupted commit: \(error)")
        }
        do {
            for repository in try outbox.repositories(dead: false) {
                do throws(StorageError) {
                    try deliver(repository, now: now, report: &report)
                } catch {
                    report.problems.append("\(repository): \(error)")
                }
            }
        } catch {
            report.problems.append("outbox: \(error)")
        }
        do {
            try outbox.pruneEmpty()
        } catch {
            report.problems.append("pruning the outbox: \(error)")
        }
        return report
    }

    /// The repository's batches in order, until one is not due or fails.
    private func deliver(_ repository: RepositoryName, now: Int, report: inout Report) throws(StorageError) {
        for var queued in try outbox.queued(repository) {
            guard queued.batch.notBefore <= now else { return }
            var failure: String?
            for webhook in options.webhooks where !queued.batch.delivered.contains(webhook.id) {
                if let reason = send(queued.batch.events, to: webhook) {
                    report.failures.append("\(repository) webhook \(webhook.id): \(reason)")
                    failure = failure.map { "\($0); \(webhook.id): \(reason)" } ?? "\(webhook.id): \(reason)"
                } else {
                    queued.batch.delivered.append(webhook.id)
                }
            }
            guard let failure else {
                try outbox.remove(queued)
                report.delivered += queued.batch.events.count
                continue
            }
            queued.batch.attempts += 1
            queued.batch.lastError = failure
            if queued.batch.attempts >= options.maximumAttempts {
                try outbox.bury(queued)
                report.buried += 1
                continue
            }
            queued.batch.notBefore = now + backoff(afterAttempts: queued.batch.attempts)
            try outbox.update(queued)
            return
        }
    }

    /// Posts each event in order; the first failure's reason, or nil when all were taken.
    private func send(_ events: [RegistryEvent], to webhook: Webhook) -> String? {
        for event in events {
            let body = event.encoded
            var headers = ["Content-Type: \(RegistryEvent.mediaType)", "User-Agent: berth", "Expect:"]
            if let secret = options.secret { headers.append(WebhookSignature.header(body: body, secret: secret)) }
            if case .failed(let reason) = poster.post(body, to: webhook.url, headers: headers) { return reason }
        }
        return nil
    }
}
