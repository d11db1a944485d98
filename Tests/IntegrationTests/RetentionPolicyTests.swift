import Foundation
import Testing
import IntegrationSupport

/// `berth retention` on a store of signed images, with real parts: skopeo pushes the
/// images, oras-py attaches signatures and SBOMs as referrers (untagged, as cosign
/// stores them), Berth behind nginx serves them, a webhook receiver takes the events.
@Suite(.serialized) struct RetentionPolicyTests {
    let oras = OrasTests()

    /// The `<repository>@<digest>` of each line starting with `verb`.
    func listed(_ output: String, _ verb: String) -> Set<String> {
        Set(output.split(separator: "\n").filter { $0.hasPrefix(verb + " ") }.compactMap { line in
            line.dropFirst(verb.count + 1).split(separator: " ").first.map(String.init)
        })
    }

    @Test func keptImagesKeepEverySignatureDeletedOnesTakeTheirReferrersAndTheDryRunListsTheSameSet() throws {
        try ClientTools.require("skopeo", debianPackage: "skopeo")
        let receiver = try WebhookReceiver()
        defer { receiver.stop() }
        let config = TemporaryDirectory(prefix: "berth-retention-config")
        defer { config.remove() }
        let configFile = "\(config.path)/berth.conf"
        let policyFile = "\(config.path)/retention"
        let auditFile = "\(config.path)/audit.jsonl"
        try """
            # release tags and the current v2 stay; everything else in team/ goes
            team/**   keep-tags=release-*,v2 untagged=1d

            """.write(toFile: policyFile, atomically: true, encoding: .utf8)
        try """
            retention = \(policyFile)
            audit_log = \(auditFile)
            webhook = \(receiver.url)
            gc_grace_period = 0

            """.write(toFile: configFile, atomically: true, encoding: .utf8)
        let server = try RegistryServer(workerArguments: ["--config", configFile])
        defer { server.stop() }
        let work = server.directory.path
        let environment = ["XDG_DATA_HOME": "\(work)/xdg", "_CONTAINERS_ROOTLESS_UID": "1000"]

        var images: [String: String] = [:]
        var referrers: [String: [String]] = [:]
        for (offset, tag) in ["v1", "v2", "release-1"].enumerated() {
            let source = try ImageBuilder.build(layout: "\(work)/source-\(tag)", tag: tag, layerSizes: [150_000], seed: 90 + UInt64(offset))
            let push = Shell.run("skopeo", ["copy", "--dest-cert-dir", server.certDirectory, "oci:\(source):\(tag)",
                                            "docker://\(server.host)/team/app:\(tag)"], environment: environment, timeout: 300)
            try #require(push.succeeded, "\(push.stderr)")
            let head = server.curl(["-I", "\(server.baseURL)/v2/team/app/manifests/\(tag)"])
            let digest = try #require(head.header("Docker-Content-Digest"))
            images[tag] = digest
            let subject: [String: Any] = ["mediaType": try #require(head.header("Content-Type")), "digest": digest,
                                          "size": Int(try #require(head.header("Content-Length"))) ?? 0]
            // A signature and an SBOM per image, pushed by oras-py, then untagged as cosign leaves them.
            for (kind, artifactType, payload) in [("sig", "application/vnd.dev.cosign.artifact.sig.v1+json", "signed \(tag)\n"),
                                                  ("sbom", "application/spdx+json", "{\"spdxVersion\":\"SPDX-2.3\",\"name\":\"\(tag)\"}")] {
                let configPath = try oras.file(server, "config.json", Data("{\"for\":\"\(kind)-\(tag)\"}".utf8))
                let result = try oras.oras(server, [
                    "op": "push", "target": "\(server.host)/team/app:\(kind)-\(tag)",
                    "files": ["\(try oras.file(server, "\(kind).json", Data(payload.utf8))):application/vnd.example.payload"],
                    "config": "\(configPath):\(artifactType)", "subject": subject,
                ])
                try #require(result.status == 201 && result.subject == digest)
                let referrer = try #require(result.digest)
                referrers[tag, default: []].append(referrer)
                let untag = server.curl(["-X", "DELETE", "\(server.baseURL)/v2/team/app/manifests/\(kind)-\(tag)"])
                try #require(untag.status == 202)
            }
        }
        let doomed = Set(([images["v1"]] + (referrers["v1"] ?? [])).compactMap { $0 }.map { "team/app@\($0)" })

        let dryRun = Shell.run(RegistryServer.binary, ["retention", "--config", configFile, "--store", server.store, "--dry-run"])
        try #require(dryRun.succeeded, "\(dryRun.stdout)\(dryRun.stderr)")
        #expect(listed(dryRun.stdout, "would delete") == doomed, "\(dryRun.stdout)")
        #expect(dryRun.stdout.contains("referrer of \(images["v1"] ?? ""), which goes"), "\(dryRun.stdout)")
        #expect(dryRun.stdout.contains("[line 2: team/** keep-tags=release-*,v2 untagged=1d]"), "\(dryRun.stdout)")
        #expect(server.curl(["-I", "\(server.baseURL)/v2/team/app/manifests/v1"]).status == 200, "a dry run changes nothing")

        let run = Shell.run(RegistryServer.binary, ["retention", "--config", configFile, "--store", server.store])
        try #require(run.succeeded, "\(run.stdout)\(run.stderr)")
        #expect(listed(run.stdout, "deleted") == doomed, "the run deletes what the dry run listed: \(run.stdout)")

        // The deleted image and its referrers are gone; kept images keep every signature and SBOM.
        #expect(server.curl(["-I", "\(server.baseURL)/v2/team/app/manifests/v1"]).status == 404)
        for digest in referrers["v1"] ?? [] {
            #expect(server.curl(["-I", "\(server.baseURL)/v2/team/app/manifests/\(digest)"]).status == 404)
        }
        let orphaned = server.curl(["\(server.baseURL)/v2/team/app/referrers/\(images["v1"] ?? "")"])
        #expect(orphaned.status == 200 && !orphaned.text.contains("sha256:"), "\(orphaned.text)")
        for tag in ["v2", "release-1"] {
            let listing = server.curl(["\(server.baseURL)/v2/team/app/referrers/\(images[tag] ?? "")"])
            for digest in referrers[tag] ?? [] { #expect(listing.text.contains(digest), "\(tag): \(listing.text)") }
            for digest in referrers[tag] ?? [] {
                let pull = try oras.oras(server, ["op": "pull", "target": "\(server.host)/team/app@\(digest)",
                                                  "outdir": "\(work)/pulled-\(digest.suffix(8))"])
                #expect(pull.files?.count == 1)
            }
        }
        // gc frees the bytes; kept images still pull whole through nginx, and scrub finds nothing wrong.
        let gc = Shell.run(RegistryServer.binary, ["gc", "--config", configFile, "--store", server.store])
        #expect(gc.succeeded && gc.stdout.contains("manifests_deleted=0"), "\(gc.stdout)\(gc.stderr)")
        for tag in ["v2", "release-1"] {
            let pull = Shell.run("skopeo", ["copy", "--src-cert-dir", server.certDirectory, "docker://\(server.host)/team/app:\(tag)",
                                            "oci:\(work)/pulled-\(tag):\(tag)"], environment: environment, timeout: 300)
            #expect(pull.succeeded, "\(tag): \(pull.stderr)")
        }
        let scrub = Shell.run(RegistryServer.binary, ["scrub", "--store", server.store])
        #expect(scrub.succeeded, "\(scrub.stdout)")

        // Each deletion is audited and becomes a manifest.deleted event, as a DELETE would.
        let audit = (try? String(contentsOfFile: auditFile, encoding: .utf8)) ?? ""
        for entry in doomed {
            let digest = String(entry.split(separator: "@").last ?? "")
            #expect(audit.split(separator: "\n").contains { $0.contains("\"action\":\"delete\"") && $0.contains(digest) && $0.contains("retention") },
                    "no audit line for \(digest)")
            let delivered = poll(seconds: 30) {
                receiver.accepted.contains { $0.contains("org.berth.manifest.deleted") && $0.contains(digest) }
            }
            #expect(delivered, "no manifest.deleted event for \(digest)")
        }
    }
}
