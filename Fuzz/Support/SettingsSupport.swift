// What Sources/BerthService/Settings.swift needs from the rest of its module, which the
// fuzz build does not compile (it needs FastCGI and swift-log). The config target never
// reads a file.
enum TextFile {
    static func read(_ path: String) -> String? { nil }
}
