import ArgumentParser

@main
struct Berth: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A private OCI container registry behind nginx.",
        subcommands: [Serve.self, GC.self, Scrub.self, Config.self, Token.self, Events.self, Quota.self])
}
