// What Sources/berth/Settings.swift needs from the rest of the executable (Support.swift
// imports ArgumentParser, which the fuzz build does not have). The config target never
// reads a file.
enum TextFile {
    static func read(_ path: String) -> String? { nil }
}
