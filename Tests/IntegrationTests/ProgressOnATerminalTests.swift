import Foundation
import Testing
import IntegrationSupport
import TestSupport

/// On a terminal, `gc`, `scrub`, `retention` and `quota --reconcile` show one progress
/// line rewritten in place (carriage return, erase to the end of the line), ending with
/// "done in"; util-linux `script` gives each run a real pseudo-terminal. (Off a terminal
/// they log JSON lines: GarbageCollectionTests.)
@Suite struct ProgressOnATerminalTests {
    @Test func maintenanceCommandsShowARewrittenLineOnATerminal() throws {
        try ClientTools.require("script", debianPackage: "bsdutils")
        let quota = "team/** 1GiB"
        let server = try RegistryServer(workerEnvironment: ["BERTH_QUOTA": quota])
        defer { server.stop() }
        for index in 0..<3 {
            #expect(EventDeliveryTests.push(server, "team/app", "v\(index)", seed: "progress-\(index)") != nil)
        }
        let policy = "\(server.directory.path)/retention.policy"
        try "team/** keep-last=1\n".write(toFile: policy, atomically: true, encoding: .utf8)
        let commands: [(task: String, arguments: [String])] = [
            ("gc", ["gc"]), ("scrub", ["scrub"]), ("retention", ["retention", "--dry-run", "--policy", policy]),
            ("quota", ["quota", "--reconcile"]),
        ]
        for command in commands {
            let line = ([RegistryServer.binary] + command.arguments + ["--store", server.store]).joined(separator: " ")
            let run = Shell.run("script", ["--quiet", "--return", "--command", line, "/dev/null"],
                                environment: ["BERTH_QUOTA": quota], timeout: 120)
            #expect(run.succeeded, "\(command.task): \(run.stdout) \(run.stderr)")
            #expect(run.stdout.contains("\r\u{1B}[K\(command.task): "), "\(command.task) on a terminal: \(run.stdout.debugDescription)")
            #expect(run.stdout.contains(" done in "), "\(command.task) on a terminal: \(run.stdout.debugDescription)")
            #expect(!run.stdout.contains("\"event\":\"progress\""), "no JSON progress lines on a terminal")
        }
    }
}
