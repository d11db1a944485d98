// Fuzz target: the config-file parser (Settings in Sources/BerthService, compiled into this
// binary as it is) and the BERTH_<KEY> environment path.
// Findings: a trap; an error without the line it came from; settings that `config
// check` renders but that do not read back as the same settings.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let environmentKey = input.choose(Settings.keys)
    let text = String(decoding: input.rest(), as: UTF8.self)

    var settings = Settings()
    do {
        try settings.apply(fileText: text, name: "berth.conf")
    } catch {
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).count
        guard error.source.hasPrefix("berth.conf:"), let line = Int(error.source.dropFirst("berth.conf:".count)),
              (1...lines).contains(line) else {
            Finding.report("\(error) does not name one of the \(lines) lines")
        }
        return 0
    }
    var crlf = Settings()
    do { try crlf.apply(fileText: withCRLF(text), name: "berth.conf") } catch { Finding.report("parses, but not with CRLF lines: \(error)") }
    if crlf != settings { Finding.report("CRLF lines read differently") }
    // What `berth config check` prints, minus empty values (an unset key), must read back.
    let rendered = settings.rendered.split(separator: "\n").filter { !$0.hasSuffix("= ") }.joined(separator: "\n")
    var again = Settings()
    do { try again.apply(fileText: rendered, name: "rendered") } catch {
        Finding.report("rendered settings do not parse: \(error)\n\(rendered)")
    }
    if again != settings { Finding.report("rendered settings read back differently:\n\(rendered)") }

    // The same text as one environment variable's value.
    let value = text.split(separator: "\n").first.map(String.init) ?? ""
    _ = try? Settings.load(file: nil, environment: ["BERTH_" + environmentKey.uppercased(): value])
    return 0
}
