import Storage

extension Settings {
    /// The store's options these settings choose: the one place `serve` and the
    /// maintenance commands (`gc`, `scrub`, `quota`) take them from.
    public var storeOptions: Store.Options {
        var options = Store.Options()
        options.maximumUploadSessions = maxUploadSessions
        options.immutableTags = immutableTags
        options.recordsEvents = !webhooks.isEmpty
        options.quotas = quotas
        // Mirrored repositories fill on pulls: no quota meters them.
        options.unmeteredNamespaces = mirrors.keys.sorted()
        return options
    }

    /// The store these settings name (`store`, else the working directory), prepared as
    /// `StoreRoot.prepare` does, with `storeOptions`: what each maintenance command opens.
    public func openStore() throws -> Store {
        Store(layout: StoreLayout(root: try StoreRoot.prepare(store ?? ".")), options: storeOptions)
    }
}
