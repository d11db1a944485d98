import Storage

/// What `berth serve` checks of its store once, before it serves: the mount's options
/// (`StoreMount`: refused when they make locks node-local, warned about when client
/// caches would let this node read what another has replaced) and the lock, rename and
/// link path on the store itself (`StoreSelfTest`). A refusal stops the command with the
/// reason; warnings are logged (`store_mount_warning`, and `store_self_test_skipped` when a
/// full store leaves no room for the test's files).
enum StoreStartupCheck {
    static func run(root: String, log: AccessLog) throws {
        var details = ["store": root]
        if let mount = StoreMount.of(root) {
            details["mount"] = mount.mountPoint
            details["filesystem"] = mount.type
            let client = mount.isGlusterFS ? GlusterClient.serving(mount.mountPoint) : nil
            let verdict = mount.verdict(client: client)
            for warning in verdict.warnings {
                log.event("store_mount_warning", ["mount": mount.mountPoint, "filesystem": mount.type, "warning": warning],
                          level: .warning)
            }
            if let refusal = verdict.refusals.first {
                throw ServiceError("refusing to serve \(root): \(refusal)")
            }
        }
        do throws(StoreSelfTest.Failure) {
            try StoreSelfTest.run(layout: StoreLayout(root: root))
        } catch where error.inconclusive {
            // A full store still serves pulls: say so, and serve.
            log.event("store_self_test_skipped", ["store": root, "reason": error.description], level: .warning)
            return
        } catch {
            throw ServiceError("refusing to serve \(root): \(error)")
        }
        log.event("store_checked", details)
    }
}
