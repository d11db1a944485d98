import Foundation
@testable import BerthService
import Logging
import Testing

/// The two text formats the service writes: Prometheus exposition and JSON log lines.
@Suite struct RenderingTests {
    @Test func prometheusLabelsAreEscapedAndNumbersWhole() {
        var text = PrometheusText()
        text.family("berth_x_total", "counter", "A test.")
        text.sample("berth_x_total", ["route": "a\"b\\c\nd", "status": "200"], 3)
        text.sample("berth_y", [:], 0.25)
        #expect(text.text == "# HELP berth_x_total A test.\n# TYPE berth_x_total counter\n"
                + "berth_x_total{route=\"a\\\"b\\\\c\\nd\",status=\"200\"} 3\nberth_y 0.25\n")
        #expect(PrometheusText.number(1e20) == "1e+20")
    }

    @Test func logLinesAreOneJSONObjectEachWithNestedValues() throws {
        let fields: Logger.Metadata = [
            "uri": "/v2/a?\"x\"\n", "in_flight": .array([.dictionary(["route": "blob", "id": "r1"])]), "status": "200",
        ]
        let line = JSONLogHandler.line(level: .warning, message: "request", fields: fields, milliseconds: 1_700_000_000_007)
        #expect(line.last == UInt8(ascii: "\n"))
        #expect(line.dropLast().contains(UInt8(ascii: "\n")) == false, "one line")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.dropLast())) as? [String: Any])
        #expect(object["level"] as? String == "warning")
        #expect(object["event"] as? String == "request")
        #expect(object["uri"] as? String == "/v2/a?\"x\"\n")
        #expect((object["time"] as? Double).map { abs($0 - 1_700_000_000.007) < 0.0005 } == true)
        let inFlight = try #require(object["in_flight"] as? [[String: String]])
        #expect(inFlight == [["route": "blob", "id": "r1"]])
    }
}
