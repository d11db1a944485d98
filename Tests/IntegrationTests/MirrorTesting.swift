import Foundation
import IntegrationSupport
import Testing

/// What the mirror suites share: skopeo in a sandbox, a Berth mirroring what a config
/// file says, an image pushed to a docker-registry upstream.
protocol MirrorTesting {}

extension MirrorTesting {
    func skopeo(_ directory: String, _ arguments: [String]) -> Shell.Result {
        Shell.run("skopeo", arguments, environment: [
            "XDG_DATA_HOME": "\(directory)/xdg", "_CONTAINERS_ROOTLESS_UID": "1000", "HOME": directory,
            "REGISTRY_AUTH_FILE": "\(directory)/auth.json",
        ], timeout: 180)
    }

    /// A Berth whose config file holds `lines` (`mirror.<name>.<field> = value` and others).
    func mirror(_ lines: [String]) throws -> (RegistryServer, TemporaryDirectory) {
        let config = TemporaryDirectory(prefix: "berth-mirror-config")
        try (lines.joined(separator: "\n") + "\n").write(toFile: "\(config.path)/berth.conf", atomically: true, encoding: .utf8)
        let server = try RegistryServer(workerArguments: ["--config", "\(config.path)/berth.conf"])
        return (server, config)
    }

    func manifest(_ text: String) throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(text.utf8))
    }

    /// Pushes a built layout's tag to `repository` of the upstream (with its credentials)
    /// and returns the manifest's text.
    @discardableResult
    func push(_ layout: String, tag: String, to upstream: DockerRegistryUpstream, as repository: String) throws -> String {
        let work = upstream.directory.path
        let push = skopeo(work, ["copy", "--dest-cert-dir", upstream.certDirectory,
                                 "--dest-creds", "\(upstream.username):\(upstream.password)",
                                 "oci:\(layout):\(tag)", "docker://\(upstream.host)/\(repository):\(tag)"])
        try #require(push.succeeded, "\(push.stderr)")
        return skopeo(work, ["inspect", "--raw", "oci:\(layout):\(tag)"]).stdout
    }

    /// The config lines of mirror `name` of a docker-registry upstream (htpasswd credentials
    /// in a password file next to it) or of another URL in front of it (a relay).
    func mirrorLines(_ name: String, of upstream: DockerRegistryUpstream, url: String? = nil) throws -> [String] {
        let passwordFile = "\(upstream.directory.path)/password"
        try upstream.password.write(toFile: passwordFile, atomically: true, encoding: .utf8)
        return [
            "mirror.\(name).upstream = \(url ?? upstream.baseURL)", "mirror.\(name).username = \(upstream.username)",
            "mirror.\(name).password_file = \(passwordFile)", "mirror.\(name).ca_file = \(upstream.certificate)",
        ]
    }

    /// Successful upstream GETs of `path` in docker-registry's log.
    func upstreamGets(_ upstream: DockerRegistryUpstream, _ path: String) -> Int {
        upstream.log.split(separator: "\n").filter { $0.contains("\"GET \(path) HTTP/") && $0.contains("\" 200 ") }.count
    }

    /// The size of a file (0 when it is not there).
    func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }

    /// A mirror's counter in a `/metrics` text (0 when absent).
    func mirrorCounter(_ metrics: String, _ event: String, mirror: String = "up") -> Int {
        let prefix = event == "fetched_bytes" ? "berth_mirror_fetched_bytes_total{mirror=\"\(mirror)\"} "
            : "berth_mirror_events_total{event=\"\(event)\",mirror=\"\(mirror)\"} "
        guard let line = metrics.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return 0 }
        return Int(line.dropFirst(prefix.count)) ?? -1
    }

    /// The manifest `reference` of `repository` through the mirror, as an OCI client asks for it.
    func manifestThrough(_ server: RegistryServer, _ repository: String, _ reference: String) -> RegistryServer.Response {
        server.curl(["-H", "Accept: application/vnd.oci.image.manifest.v1+json",
                     "\(server.baseURL)/v2/\(repository)/manifests/\(reference)"])
    }
}
