import Foundation
import Testing
import IntegrationSupport

/// What an operator runs: the systemd units, and gc and scrub on a live store.
@Suite(.serialized) struct OperationsTests {
    static let installedBinary = "/usr/local/bin/berth"

    /// The units as shipped, with the binary path pointing at the build under test.
    func renderedUnits(into directory: String) throws -> [String] {
        let source = "\(RegistryServer.repositoryRoot)/systemd"
        var names: [String] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: source).sorted()
        where [".service", ".socket", ".timer"].contains(where: { name.hasSuffix($0) }) {
            let text = try String(contentsOfFile: "\(source)/\(name)", encoding: .utf8)
            try text.replacingOccurrences(of: Self.installedBinary, with: RegistryServer.binary)
                .write(toFile: "\(directory)/\(name)", atomically: true, encoding: .utf8)
            names.append(name)
        }
        return names
    }

    @Test func systemdUnitsVerify() throws {
        let directory = TemporaryDirectory(prefix: "berth-units")
        defer { directory.remove() }
        let names = try renderedUnits(into: directory.path)
        #expect(Set(names) == ["berth.socket", "berth.service", "berth-gc.service", "berth-gc.timer",
                               "berth-scrub.service", "berth-scrub.timer"])
        let verify = Shell.run("systemd-analyze", ["verify"] + names.map { "\(directory.path)/\($0)" })
        #expect(verify.succeeded, "\(verify.stderr)")
        #expect(verify.stderr.isEmpty, "\(verify.stderr)")
    }

    /// `scripts/install --root` lays out what a server gets; a second run upgrades in place
    /// and leaves the operator's files alone.
    @Test func installStagesTheServerLayoutAndIsSafeToRunAgain() throws {
        let root = TemporaryDirectory(prefix: "berth-install")
        defer { root.remove() }
        let install = { Shell.run("\(RegistryServer.repositoryRoot)/scripts/install", ["--root", root.path],
                                  environment: ["BERTH_INSTALL_BINARY": RegistryServer.binary]) }
        let first = install()
        #expect(first.succeeded, "\(first.stderr)")
        for path in ["usr/local/bin/berth", "etc/berth/berth.conf", "etc/berth/nginx-auth.conf", "etc/berth/tls/cert.pem",
                     "etc/berth/tls/key.pem", "etc/nginx/sites-available/berth", "etc/nginx/sites-enabled/berth",
                     "etc/systemd/system/berth.socket", "etc/systemd/system/berth.service", "etc/systemd/system/berth-gc.timer",
                     "etc/systemd/system/berth-scrub.timer", "var/lib/berth"] {
            #expect(FileManager.default.fileExists(atPath: "\(root.path)/\(path)"), "\(path)")
        }
        let staged = "\(root.path)/usr/local/bin/berth"
        let check = Shell.run(staged, ["config", "check", "--config", "\(root.path)/etc/berth/berth.conf"])
        #expect(check.succeeded && check.stdout.contains("store = /var/lib/berth"), "\(check.stderr)")

        try "store = /srv/registry\n".write(toFile: "\(root.path)/etc/berth/berth.conf", atomically: true, encoding: .utf8)
        let key = try Data(contentsOf: URL(fileURLWithPath: "\(root.path)/etc/berth/tls/key.pem"))
        let second = install()
        #expect(second.succeeded, "\(second.stderr)")
        #expect(try String(contentsOfFile: "\(root.path)/etc/berth/berth.conf", encoding: .utf8) == "store = /srv/registry\n")
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(root.path)/etc/berth/tls/key.pem")) == key)
    }

    @Test func configCheckNamesTheBadKeyAndWhereItCameFrom() throws {
        let scratch = TemporaryDirectory(prefix: "berth-conf")
        defer { scratch.remove() }
        let file = "\(scratch.path)/berth.conf"
        func check(_ text: String, _ environment: [String: String] = [:]) -> Shell.Result {
            _ = FileManager.default.createFile(atPath: file, contents: Data(text.utf8))
            return Shell.run(RegistryServer.binary, ["config", "check", "--config", file], environment: environment)
        }
        let good = check("store = /srv/berth\nthreads = 8 # comment\n")
        #expect(good.succeeded && good.stdout.contains("threads = 8") && good.stdout.contains("store = /srv/berth"))
        let overridden = check("store = /srv/berth\nthreads = 8\n", ["BERTH_THREADS": "16"])
        #expect(overridden.stdout.contains("threads = 16"))
        let unknown = check("store = /srv/berth\nthread = 8\n")
        #expect(!unknown.succeeded && unknown.stderr.contains("berth.conf:2: thread: unknown key"), "\(unknown.stderr)")
        let badValue = check("store = /srv/berth\nthreads = lots\n")
        #expect(!badValue.succeeded && badValue.stderr.contains("threads: \"lots\" is not a whole number"), "\(badValue.stderr)")
        // Fuzz/regressions/config/crlf-lines: "\r\n" is one Character, so the file was one line
        // and a comment on the first line swallowed every key after it.
        let crlf = check("store = /srv/berth # where\r\nthreads = 8\r\nlog_level = debug\r\n")
        #expect(crlf.succeeded && crlf.stdout.contains("threads = 8") && crlf.stdout.contains("log_level = debug"), "\(crlf.stderr)")
        let crlfBad = check("store = /srv/berth\r\nthreads = lots\r\n")
        #expect(!crlfBad.succeeded && crlfBad.stderr.contains("berth.conf:2: threads"), "\(crlfBad.stderr)")
        // Fuzz/regressions/config/quoted-path-with-trailing-space: what config check prints reads back the same.
        let spaced = check("store = \"/srv/berth \"\n")
        #expect(spaced.succeeded && spaced.stdout.contains("store = \"/srv/berth \"\n"), "\(spaced.stdout)")
        let badEnvironment = check("store = /srv/berth\n", ["BERTH_LOG_LEVEL": "loud"])
        #expect(!badEnvironment.succeeded && badEnvironment.stderr.contains("BERTH_LOG_LEVEL"), "\(badEnvironment.stderr)")
    }

    /// The committed production site is what the template renders (it cannot drift).
    @Test func productionNginxSiteIsRenderedFromTheTemplate() throws {
        let directory = TemporaryDirectory(prefix: "berth-site")
        defer { directory.remove() }
        let root = RegistryServer.repositoryRoot
        let render = Shell.run("\(root)/scripts/nginx-conf", [
            directory.path, "--listen", "443", "--server-name", "_", "--store", "/var/lib/berth",
            "--socket", "/run/berth/berth.sock", "--cert", "/etc/berth/tls/cert.pem", "--key", "/etc/berth/tls/key.pem",
            "--auth-include", "/etc/berth/nginx-auth.conf", "--access-log", "/var/log/nginx/berth-access.log",
        ])
        #expect(render.succeeded, "\(render.stderr)")
        let rendered = try String(contentsOfFile: "\(directory.path)/berth-site.conf", encoding: .utf8)
        let committed = try String(contentsOfFile: "\(root)/nginx/berth.conf", encoding: .utf8)
        // The committed file has two lines of its own on top.
        #expect(committed.split(separator: "\n", omittingEmptySubsequences: false).dropFirst(2).joined(separator: "\n") == rendered)
    }

    /// The service's ExecStart, run as systemd runs it: the socket on fd 0, no --socket.
    @Test func serviceCommandLineServesOnTheInheritedSocket() throws {
        let unit = try String(contentsOfFile: "\(RegistryServer.repositoryRoot)/systemd/berth.service", encoding: .utf8)
        let execStart = unit.split(separator: "\n").first { $0.hasPrefix("ExecStart=") }.map { String($0.dropFirst("ExecStart=".count)) }
        #expect(execStart == "\(Self.installedBinary) serve --config /etc/berth/berth.conf")
        #expect(unit.contains("StandardInput=socket"))

        // The shipped config, with the store moved into the test's directory.
        let shipped = try String(contentsOfFile: "\(RegistryServer.repositoryRoot)/systemd/berth.conf", encoding: .utf8)
        let scratch = TemporaryDirectory(prefix: "berth-conf")
        defer { scratch.remove() }
        let configFile = "\(scratch.path)/berth.conf"
        try shipped.replacingOccurrences(of: "store = /var/lib/berth", with: "store = \(scratch.path)/unused")
            .write(toFile: configFile, atomically: true, encoding: .utf8)
        let check = Shell.run(RegistryServer.binary, ["config", "check", "--config", configFile])
        #expect(check.succeeded, "\(check.stderr)")
        #expect(check.stdout.contains("threads = 32"))

        let server = try RegistryServer(workerArguments: ["--config", configFile], listening: .inheritedOnStandardInput)
        defer { server.stop() }
        let source = try ImageBuilder.build(layout: "\(server.directory.path)/source", tag: "v1", layerSizes: [100_000], seed: 21)
        let push = Shell.run("skopeo", ["copy", "--dest-cert-dir", server.certDirectory, "oci:\(source):v1",
                                        "docker://\(server.host)/ops/app:v1"],
                             environment: ["XDG_DATA_HOME": "\(server.directory.path)/xdg", "_CONTAINERS_ROOTLESS_UID": "1000"])
        #expect(push.succeeded, "\(push.stderr)")

        // gc and scrub on the live store: nothing young is removed, nothing is wrong.
        let gc = Shell.run(RegistryServer.binary, ["gc", "--store", server.store])
        #expect(gc.succeeded, "\(gc.stderr)")
        #expect(gc.stdout.contains("blobs=0 shared-blobs=0"), "\(gc.stdout)")
        let scrub = Shell.run(RegistryServer.binary, ["scrub", "--store", server.store])
        #expect(scrub.succeeded, "\(scrub.stdout)\(scrub.stderr)")
        #expect(scrub.stdout.contains("problems=0"), "\(scrub.stdout)")
        #expect(server.curl(["\(server.baseURL)/v2/ops/app/manifests/v1"]).status == 200)
    }
}
