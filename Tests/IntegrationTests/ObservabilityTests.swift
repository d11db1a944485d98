import Foundation
import Testing
import IntegrationSupport

/// Metrics through nginx's localhost-only location, and matching JSON logs.
@Suite(.serialized) struct ObservabilityTests {
    @Test func metricsSumAllWorkersAndLogsShareTheRequestID() throws {
        let server = try RegistryServer(listening: .inheritedOnStandardInput, workerCount: 2)
        defer { server.stop() }
        let file = "\(server.directory.path)/blob"
        for index in 0..<6 {
            let bytes = Data("blob number \(index)".utf8)
            _ = FileManager.default.createFile(atPath: file, contents: bytes)
            let posted = server.curl(["-X", "POST", "--data-binary", "@\(file)",
                                      "\(server.baseURL)/v2/obs/app/blobs/uploads/?digest=\(sha256(bytes))"])
            #expect(posted.status == 201)
        }
        #expect(server.curl(["\(server.baseURL)/v2/obs/app/manifests/missing"]).status == 404)
        let gc = Shell.run(RegistryServer.binary, ["gc", "--store", server.store])
        #expect(gc.succeeded)

        // Each worker saves its counters within a second of a change; the answering
        // worker sums every saved file, so the totals settle within a few seconds.
        var metrics = server.curl(["\(server.baseURL)/metrics"])
        var samples = try PrometheusSamples(metrics.text)
        for _ in 0..<50 where samples.value("berth_requests_total", ["route": "manifest", "status": "404"]) != 1
            || samples.value("berth_requests_total", ["route": "upload_start", "status": "201"]) != 6 {
            usleep(200_000)
            metrics = server.curl(["\(server.baseURL)/metrics"])
            samples = try PrometheusSamples(metrics.text)
        }
        #expect(metrics.status == 200)
        #expect(metrics.header("Content-Type")?.hasPrefix("text/plain") == true)
        #expect(samples.value("berth_requests_total", ["route": "upload_start", "status": "201"]) == 6)
        #expect(samples.value("berth_requests_total", ["route": "manifest", "status": "404"]) == 1)
        #expect(samples.value("berth_blobs", [:]) == 6)
        #expect(samples.value("berth_repositories", [:]) == 1)
        #expect((samples.value("berth_received_bytes_total", [:]) ?? 0) >= 6 * 13)
        #expect(samples.value("berth_request_duration_seconds_count", ["route": "upload_start"]) == 6)
        #expect(samples.value("berth_request_duration_seconds_bucket", ["route": "upload_start", "le": "+Inf"]) == 6)
        #expect(samples.value("berth_gc_last_removed", ["kind": "blob"]) == 0)
        #expect(samples.value("berth_gc_last_run_timestamp_seconds", [:]).map { $0 > 1_700_000_000 } == true)

        // One request id in nginx's JSON access line and in the worker's line.
        let accessLog = try String(contentsOfFile: "\(server.directory.path)/nginx/logs/berth-access.log", encoding: .utf8)
        let missing = try #require(accessLog.split(separator: "\n").last { $0.contains("/manifests/missing") })
        let entry = try JSONSerialization.jsonObject(with: Data(missing.utf8)) as? [String: Any]
        let requestID = try #require(entry?["request_id"] as? String)
        #expect(entry?["status"] as? Int == 404)
        let workerLine = server.workerLog.split(separator: "\n").first { $0.contains(requestID) }
        #expect(workerLine?.contains("/manifests/missing") == true, "no worker log line with request id \(requestID)")
        #expect(workerLine?.contains("\"repository\":\"obs/app\"") == true)
        #expect(workerLine?.contains("\"route\":\"manifest\"") == true)
        for line in server.workerLog.split(separator: "\n") {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "not JSON: \(line)")
        }
    }
}

/// A strict reader of the Prometheus text format: every line is a comment (# HELP/# TYPE)
/// or `name{label="value",…} number`.
struct PrometheusSamples {
    private var samples: [(name: String, labels: [String: String], value: Double)] = []

    struct FormatError: Error { let line: String }

    init(_ text: String) throws {
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") { continue }
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                throw FormatError(line: String(line))
            }
            let series = line[..<space]
            var name = String(series)
            var labels: [String: String] = [:]
            if let brace = series.firstIndex(of: "{") {
                guard series.hasSuffix("}") else { throw FormatError(line: String(line)) }
                name = String(series[..<brace])
                for pair in series[series.index(after: brace)..<series.index(before: series.endIndex)].split(separator: ",") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2, parts[1].hasPrefix("\""), parts[1].hasSuffix("\"") else { throw FormatError(line: String(line)) }
                    labels[String(parts[0])] = String(parts[1].dropFirst().dropLast())
                }
            }
            guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }) else { throw FormatError(line: String(line)) }
            samples.append((name, labels, value))
        }
    }

    func value(_ name: String, _ labels: [String: String]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }
}
