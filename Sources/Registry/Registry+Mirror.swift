import Storage

extension Registry {
    /// Where a request goes once pull-through mirrors are taken into account, and the
    /// namespace to name in `OCI-Namespace` when `?ns=` chose it:
    /// - `?ns=<mirror>` (or the upstream's host, as containerd sends it): the mirror's
    ///   repository `<mirror>/<name>`;
    /// - a name `<mirror>/…`: that mirror, as it is;
    /// - with `mirror_default`, a read of a name no hosted repository has (or one the
    ///   caller may not read, so that an answer never tells whether it exists):
    ///   `<default>/<name>`.
    /// Everything else is hosted, as without mirrors. The access policy then sees the
    /// routed name, the one the content is stored under (`authorize`).
    func mirrorRoute(_ route: Route, _ request: RegistryRequest) throws(RegistryError) -> (route: Route, namespace: String?) {
        guard let pullThrough = capabilities.pullThrough, let name = route.repository else { return (route, nil) }
        if let value = request.query["ns"], let namespace = pullThrough.namespace(named: value) {
            return (try route.renamed(Self.prefixed(name, by: namespace)), namespace)
        }
        if RequestMethod(http: request.method) == .get, let routed = try defaultMirrorName(of: name, identity: request.identity) {
            return (route.renamed(routed), nil)
        }
        return (route, nil)
    }

    /// Where a read of `name` goes by `mirror_default`: `<default>/<name>` unless `name` is
    /// mirrored itself or a hosted repository the identity may read; nil without a default.
    func defaultMirrorName(of name: RepositoryName, identity: Identity?) throws(RegistryError) -> RepositoryName? {
        guard let pullThrough = capabilities.pullThrough, let fallback = pullThrough.defaultNamespace,
              !pullThrough.isMirrored(name) else { return nil }
        if mayRead(name, identity: identity), repositories.exists(name) { return nil }
        return try Self.prefixed(name, by: fallback)
    }

    /// Pushes, mounts, uploads and deletes in a mirrored namespace are refused (after
    /// authorization, so nobody learns more than they may).
    func refuseWritesToMirrors(_ operation: Operation) throws(RegistryError) {
        guard let permission = operation.permission, permission != .read, let repository = operation.repository,
              let pullThrough = capabilities.pullThrough, pullThrough.isMirrored(repository) else { return }
        throw RegistryError(StorageError.mirrored(repository))
    }

    private static func prefixed(_ name: RepositoryName, by namespace: String) throws(RegistryError) -> RepositoryName {
        guard let prefixed = RepositoryName("\(namespace)/\(name.value)") else {
            throw RegistryError(.nameInvalid, "\(namespace)/\(name.value) is not a valid repository name (at most \(RepositoryName.maximumLength) characters)")
        }
        return prefixed
    }

    /// A blob a mirrored repository does not hold: on a thread that may wait, HEAD asks
    /// the upstream for its size, GET streams it from the upstream while it is stored.
    func pullThroughBlob(_ digest: Digest, in name: RepositoryName, from pullThrough: any PullThrough,
                         _ request: RegistryRequest) throws(RegistryError) -> RegistryResponse {
        guard request.mayWait else { return .moveToWaitingThread }
        var headers: [(name: String, value: String)] = [
            ("Content-Type", "application/octet-stream"),
            ("Docker-Content-Digest", digest.description),
        ]
        if request.method == "HEAD" {
            let size = try storage { () throws(StorageError) in try pullThrough.upstreamSize(of: digest, in: name) }
            if let size { headers.append(("Content-Length", String(size))) }
            return RegistryResponse(status: 200, headers: headers)
        }
        guard let incoming = try storage({ () throws(StorageError) in try pullThrough.fetch(digest, in: name) }) else {
            pullThrough.servedFromStore(digest, in: name)
            return accelRedirect(digest, in: name, contentType: "application/octet-stream")
        }
        if let size = incoming.size { headers.append(("Content-Length", String(size))) }
        // nginx passes the bytes on as they come instead of spooling the answer.
        headers.append(("X-Accel-Buffering", "no"))
        var response = RegistryResponse(status: 200, headers: headers)
        response.stream = { sink in
            do throws(StorageError) {
                try incoming.deliver(to: sink)
                return nil
            } catch {
                return "\(error)"
            }
        }
        return response
    }
}

extension Route {
    /// The same endpoint of another repository.
    func renamed(_ name: RepositoryName) -> Route {
        switch self {
        case .base, .catalog, .metrics, .token: self
        case .tags: .tags(name)
        case .manifest(_, let reference): .manifest(name, reference)
        case .invalidTag(_, let text): .invalidTag(name, text)
        case .blob(_, let digest): .blob(name, digest)
        case .uploadStart: .uploadStart(name)
        case .upload(_, let id): .upload(name, id)
        case .referrers(_, let digest): .referrers(name, digest)
        }
    }
}
