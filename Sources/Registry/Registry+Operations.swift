import Storage

extension Registry {
    /// The operation table: every route and method Berth answers, with the permission
    /// each needs and the handler that answers it. `allowedMethods(of:)` and the
    /// authorization check are derived from it; nothing else dispatches a request.
    func operation(_ route: Route, _ method: RequestMethod, _ request: RegistryRequest) -> Operation? {
        switch (route, method) {
        case (.base, .get):
            .authenticated { () throws(RegistryError) in RegistryResponse(status: 200, headers: [("Content-Type", "application/json")], body: Array("{}".utf8)) }
        case (.catalog, .get):
            .open { () throws(RegistryError) in try catalog(request) }
        case (.metrics, .get):
            .open { () throws(RegistryError) in try metricsExposition() }
        case (.token, .get), (.token, .post):
            .open { () throws(RegistryError) in try token(request) }

        case (.tags(let name), .get):
            Operation(.read, on: name) { () throws(RegistryError) in try tags(of: name, request) }
        case (.referrers(let name, let subject), .get):
            Operation(.read, on: name) { () throws(RegistryError) in try referrers(of: subject, in: name, request) }

        case (.manifest(let name, let reference), .get):
            Operation(.read, on: name) { () throws(RegistryError) in try getManifest(reference, in: name, request) }
        case (.manifest(let name, let reference), .put):
            Operation(.write, on: name) { () throws(RegistryError) in try putManifest(reference, in: name, request) }
        case (.manifest(let name, let reference), .delete):
            Operation(.delete, on: name) { () throws(RegistryError) in try deleteManifest(reference, in: name) }
        case (.invalidTag(let name, let text), .get):
            Operation(.read, on: name) { () throws(RegistryError) in throw Registry.noSuchManifest(text) }
        case (.invalidTag(let name, let text), .delete):
            Operation(.delete, on: name) { () throws(RegistryError) in throw Registry.noSuchManifest(text) }
        case (.invalidTag(let name, let text), .put):
            Operation(.write, on: name) { () throws(RegistryError) in
                throw RegistryError(.manifestInvalid, "\"\(text)\" is not a valid tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127})")
            }

        case (.blob(let name, let digest), .get):
            Operation(.read, on: name) { () throws(RegistryError) in try getBlob(digest, in: name, request) }
        case (.blob(let name, let digest), .delete):
            Operation(.delete, on: name) { () throws(RegistryError) in try deleteBlob(digest, in: name) }

        case (.uploadStart(let name), .post):
            Operation(.write, on: name) { () throws(RegistryError) in try startUpload(in: name, request) }
        case (.upload(let name, let id), .get):
            Operation(.write, on: name) { () throws(RegistryError) in try uploadStatus(id, in: name) }
        case (.upload(let name, let id), .patch):
            Operation(.write, on: name) { () throws(RegistryError) in try appendChunk(id, in: name, request) }
        case (.upload(let name, let id), .put):
            Operation(.write, on: name) { () throws(RegistryError) in try completeUpload(id, in: name, request) }
        case (.upload(let name, let id), .delete):
            Operation(.write, on: name) { () throws(RegistryError) in try cancelUpload(id, in: name) }

        default:
            nil
        }
    }

    /// The methods `route` answers (HEAD wherever GET is), as the `Allow` header lists them.
    public func allowedMethods(of route: Route) -> [String] {
        let probe = RegistryRequest(method: "GET", uri: route.path)
        var methods: [String] = []
        for method in RequestMethod.allCases where operation(route, method, probe) != nil {
            methods.append(method.rawValue)
            if method == .get { methods.append("HEAD") }
        }
        return methods
    }

    private static func noSuchManifest(_ text: String) -> RegistryError {
        RegistryError(.manifestUnknown, "no manifest can be named \"\(text)\": it is neither a tag nor a digest")
    }

    private func metricsExposition() throws(RegistryError) -> RegistryResponse {
        guard let exposition = options.metricsExposition else {
            throw RegistryError(.endpointUnknown, "no such endpoint in the OCI distribution API")
        }
        return RegistryResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4")], body: exposition())
    }
}
