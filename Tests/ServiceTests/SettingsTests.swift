#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
@testable import BerthService
import Storage
import Testing

/// Settings: defaults, the file, the environment and flags, in that order; every problem
/// names the key and where it came from.
@Suite struct SettingsTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    @Test func fileThenEnvironmentThenFlagsWin() throws {
        var settings = Settings()
        try settings.apply(fileText: "store = /srv/a\nthreads = 8 # comment\nlog_level = \"warning\"\n", name: "berth.conf")
        #expect(settings.store == "/srv/a" && settings.threads == 8 && settings.logLevel == .warning)
        try settings.set("threads", "16", source: "environment BERTH_THREADS")
        try settings.set("store", "/srv/b", source: "--store")
        #expect(settings.threads == 16 && settings.store == "/srv/b")
    }

    @Test func problemsNameTheKeyAndTheLine() {
        var settings = Settings()
        #expect(throws: Settings.Problem.self) { try settings.apply(fileText: "store = /x\nthread = 3\n", name: "b.conf") }
        do {
            try settings.apply(fileText: "\n\nthreads = many\n", name: "b.conf")
            Issue.record("a bad value was accepted")
        } catch {
            #expect(error.description.hasPrefix("b.conf:3: threads:"), "\(error.description)")
        }
        for (key, value) in [("threads", "0"), ("threads", "99999999999999999999"), ("workers", "-1"), ("socket_mode", "999"),
                             ("store", "relative"), ("log_level", "loud"), ("upload_age", "1e3"), ("automatic_cross_mount", "maybe")] {
            #expect(throws: Settings.Problem.self, "\(key) = \(value)") { try settings.set(key, value, source: "test") }
        }
    }

    @Test func everyKeyRendersAndParsesBackToTheSameSettings() throws {
        var settings = Settings()
        try settings.apply(fileText: "store = /srv/registry\nsocket = /run/b.sock\nworkers = 3\ngc_untagged_manifest_age = 60\n", name: "x")
        var again = Settings()
        try again.apply(fileText: settings.rendered, name: "rendered")
        #expect(again == settings)
        for key in Settings.keys { #expect(settings.rendered.contains("\(key) = "), "\(key) is rendered") }
    }

    /// The shipped config documents the defaults: every value it sets is the default, and
    /// every default it mentions comes from `Defaults`.
    @Test func shippedConfigSaysTheDefaults() throws {
        let text = try String(contentsOfFile: "\(Self.repositoryRoot)/systemd/berth.conf", encoding: .utf8)
        var shipped = Settings()
        try shipped.apply(fileText: text, name: "systemd/berth.conf")
        var expected = Settings()
        expected.store = shipped.store
        #expect(shipped == expected, "systemd/berth.conf sets something other than a default")
        #expect(expected.threads == Defaults.threads && expected.workers == Defaults.workers
                && expected.maxUploadSessions == Defaults.maximumUploadSessions && expected.uploadAge == Defaults.uploadAge
                && expected.gcGracePeriod == Defaults.gcGracePeriod && expected.socketMode == Defaults.socketMode)
    }

    @Test func environmentVariablesAreReadForEveryKey() throws {
        let settings = try Settings.load(file: nil, environment: ["BERTH_THREADS": "7", "BERTH_STORE": "/s", "BERTH_WORKERS": "0"])
        #expect(settings.threads == 7 && settings.store == "/s" && settings.workers == 0)
        #expect(throws: Settings.Problem.self) { try Settings.load(file: nil, environment: ["BERTH_THREADS": "x"]) }
    }

    @Test func immutableTagsRepeatRenderOneLineEachAndAnEmptyValueClearsThem() throws {
        var settings = Settings()
        try settings.apply(fileText: "store = /srv/r\nimmutable_tags = release/** v*\nimmutable_tags = base *\n", name: "berth.conf")
        #expect(settings.immutableTags.map(\.description) == ["release/** v*", "base *"])
        var again = Settings()
        try again.apply(fileText: settings.rendered, name: "rendered")
        #expect(again == settings)
        #expect(throws: Settings.Problem.self) { try settings.set("immutable_tags", "release/**", source: "t") }
        try settings.set("immutable_tags", "", source: "environment")
        #expect(settings.immutableTags.isEmpty)
    }

    @Test func quotasRepeatTheSamePatternReplacesItsSizeAndBadSizesAreRefused() throws {
        var settings = Settings()
        try settings.apply(fileText: "store = /srv/r\nquota = team/** 50GiB\nquota = ci/* 1.5TB\nquota = team/** 60GiB\n", name: "berth.conf")
        #expect(settings.quotas.map(\.description) == ["ci/* 1500GB", "team/** 60GiB"])
        var again = Settings()
        try again.apply(fileText: settings.rendered, name: "rendered")
        #expect(again == settings)
        for bad in ["team/**", "team/** 5 GiB", "team/** -1", "team/** 99999999999TiB", "team//x 1GiB"] {
            #expect(throws: Settings.Problem.self, "\(bad)") { try settings.set("quota", bad, source: "t") }
        }
        try settings.set("quota", "", source: "environment")
        #expect(settings.quotas.isEmpty)
        #expect(try Settings.load(file: nil, environment: ["BERTH_QUOTA": "app 1MiB"]).quotas.map(\.limit) == [1 << 20])
    }

    @Test func webhooksRepeatAndTheirKeysAreChecked() throws {
        var settings = Settings()
        try settings.apply(fileText: """
            store = /srv/r
            webhook = https://ci.example.com/hook?token=x
            webhook = http://127.0.0.1:9000/
            webhook_secret_file = /etc/berth/webhook-secret
            webhook_max_attempts = 3
            """, name: "berth.conf")
        #expect(settings.webhooks == ["https://ci.example.com/hook?token=x", "http://127.0.0.1:9000/"])
        #expect(settings.webhookSecretFile == "/etc/berth/webhook-secret" && settings.webhookMaxAttempts == 3)
        var again = Settings()
        try again.apply(fileText: settings.rendered, name: "rendered")
        #expect(again == settings)
        for (key, value) in [("webhook", "ftp://x/"), ("webhook", "not a url"), ("webhook_max_attempts", "0"),
                             ("webhook_secret_file", "relative")] {
            #expect(throws: Settings.Problem.self, "\(key) = \(value)") { try settings.set(key, value, source: "t") }
        }
    }

    @Test func issuerSectionsAndAuthKeysParse() throws {
        var settings = Settings()
        try settings.apply(fileText: """
            store = /srv/registry
            htpasswd = /etc/berth/htpasswd
            auth = basic
            issuer.k8s.issuer = https://kubernetes.default.svc
            issuer.k8s.audience = registry.example.com
            issuer.k8s.jwks_file = /etc/berth/k8s-jwks.json
            issuer.k8s.groups_claim = groups
            """, name: "berth.conf")
        #expect(settings.auth == .basic && settings.htpasswd == "/etc/berth/htpasswd")
        #expect(settings.issuers["k8s"]?.audience == "registry.example.com")
        #expect(settings.issuers["k8s"]?.problem == nil)
        var again = Settings()
        try again.apply(fileText: settings.rendered, name: "rendered")
        #expect(again == settings)
        var fetching = Settings()
        try fetching.apply(fileText: "store = /var/lib/berth\nissuer.oidc.jwks_url = https://idp.example.com/keys\nissuer.oidc.ca_file = /etc/ca.pem\n"
                           + "issuer.oidc.jwks_refresh = 60\nissuer.oidc.rootcertbundle = /etc/token.pem", name: "t")
        #expect(fetching.issuers["oidc"]?.jwksURL == "https://idp.example.com/keys" && fetching.issuers["oidc"]?.jwksRefresh == 60)
        #expect(fetching.issuers["oidc"]?.caFile == "/etc/ca.pem" && fetching.issuers["oidc"]?.rootCertBundle == "/etc/token.pem")
        var fetchedAgain = Settings()
        try fetchedAgain.apply(fileText: fetching.rendered, name: "rendered")
        #expect(fetchedAgain == fetching)
        for bad in ["issuer.k8s.colour = red", "issuer..issuer = x", "issuer.K8S.issuer = x", "issuer.k8s.jwks_url = http://x",
                    "issuer.k8s.jwks_refresh = 1", "issuer.k8s.ca_file = relative.pem",
                    "auth = kerberos", "token_ttl = 5", "service = a b"] {
            var probe = Settings()
            #expect(throws: Settings.Problem.self, "\(bad)") { try probe.apply(fileText: bad, name: "t") }
        }
    }

    @Test func evictionRetentionAndPullRecordKeysTakeSizesAndPeriods() throws {
        var settings = Settings()
        try settings.apply(fileText: """
            store = /srv/registry
            mirror.hub.upstream = https://registry-1.docker.io
            mirror.hub.max_age = 30d
            mirror.hub.max_bytes = 200GiB
            mirror.small.upstream = https://127.0.0.1:5000
            mirror.small.max_bytes = 1500000
            mirror.small.keep_missing_tags = no
            record_pulls = off
            pull_record_interval = 5
            retention = /etc/berth/retention
            progress_interval = 0
            """, name: "berth.conf")
        #expect(settings.mirrors["hub"]?.maxAge == 30 * 86_400 && settings.mirrors["hub"]?.maxBytes == 200 << 30)
        #expect(settings.mirrors["small"]?.maxBytes == 1_500_000 && settings.mirrors["small"]?.maxAge == nil)
        #expect(settings.mirrors["hub"]?.keepMissingTags == true && settings.mirrors["small"]?.keepMissingTags == false)
        #expect(!settings.recordPulls && settings.pullRecordInterval == 5 && settings.progressInterval == 0)
        #expect(settings.retention == "/etc/berth/retention")
        var again = Settings()
        try again.apply(fileText: settings.rendered, name: "rendered")
        #expect(again == settings)
        for bad in ["mirror.hub.max_bytes = 5 GiB", "mirror.hub.max_bytes = -1", "mirror.hub.max_bytes = 99999999999TiB",
                    "mirror.hub.max_age = 3y", "mirror.hub.keep_missing_tags = sometimes", "pull_record_interval = 0", "record_pulls = maybe", "retention = relative"] {
            var probe = Settings()
            #expect(throws: Settings.Problem.self, "\(bad)") { try probe.apply(fileText: bad, name: "t") }
        }
        #expect(Quantities.bytes("1KB") == 1000 && Quantities.bytes("2K") == 2048 && Quantities.bytes("") == nil)
        #expect(Quantities.seconds("2w") == 14 * 86_400 && Quantities.seconds("90") == 90 && Quantities.seconds("1.5h") == nil)
        #expect(Quantities.describe(seconds: 7 * 86_400) == "1w" && Quantities.describe(seconds: 90) == "90s")
    }

    @Test func mirrorSectionsParseRenderAndAreChecked() throws {
        let text = """
            store = /srv/registry
            mirror.docker.io.upstream = https://registry-1.docker.io
            mirror.docker.io.username = berth
            mirror.docker.io.password_file = /etc/berth/hub-password
            mirror.docker.io.tag_ttl = 120
            mirror.local.upstream = https://127.0.0.1:5000
            mirror.local.ca_file = /etc/berth/local-ca.pem
            mirror_default = docker.io
            mirror_threads = 4
            """
        var settings = Settings()
        try settings.apply(fileText: text, name: "berth.conf")
        let hub = try #require(settings.mirrors["docker.io"])
        #expect(hub.upstream == "https://registry-1.docker.io" && hub.username == "berth" && hub.tagTTL == 120)
        #expect(hub.passwordFile == "/etc/berth/hub-password" && hub.upstreamHost == "registry-1.docker.io")
        #expect(settings.mirrors["local"]?.tagTTL == Defaults.mirrorTagTTL && settings.mirrors["local"]?.caFile == "/etc/berth/local-ca.pem")
        #expect(settings.mirrorDefault == "docker.io" && settings.mirrorThreads == 4)
        try settings.checkMirrors(source: "berth.conf")
        var again = Settings()
        try again.apply(fileText: settings.rendered, name: "rendered")
        #expect(again == settings)
        #expect(!settings.rendered.contains("hub-password\n") || settings.rendered.contains("password_file = /etc/berth/hub-password"))

        for bad in ["mirror.hub.colour = red", "mirror.hub.upstream = registry-1.docker.io", "mirror.hub.upstream = https://x/v2",
                    "mirror.Hub.upstream = https://x", "mirror..upstream = https://x", "mirror.hub.password_file = relative",
                    "mirror.hub.tag_ttl = soon", "mirror_default = a/b", "mirror_threads = 0"] {
            var probe = Settings()
            #expect(throws: Settings.Problem.self, "\(bad)") { try probe.apply(fileText: bad, name: "t") }
        }
        var noUpstream = Settings()
        try noUpstream.apply(fileText: "mirror.hub.username = x", name: "t")
        #expect(throws: Settings.Problem.self) { try noUpstream.checkMirrors(source: "t") }
        var unknownDefault = Settings()
        try unknownDefault.apply(fileText: "mirror.hub.upstream = https://x\nmirror_default = other", name: "t")
        #expect(throws: Settings.Problem.self) { try unknownDefault.checkMirrors(source: "t") }
    }
}
