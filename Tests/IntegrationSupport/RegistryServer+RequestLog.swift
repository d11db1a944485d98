import Foundation

extension RegistryServer {
    /// One request as the worker logged it.
    public struct LoggedRequest: Sendable, CustomStringConvertible {
        public let method: String
        public let uri: String
        public let status: Int

        public var description: String { "\(method) \(uri) -> \(status)" }
    }

    /// The requests the worker answered, in the order it finished them (the worker logs
    /// one JSON object per line; lines that are not requests are skipped). Reads of blobs
    /// and manifests appear too: the worker answers them before nginx sends the file.
    public var loggedRequests: [LoggedRequest] { LoggedRequest.parse(workerLog) }
}

extension RegistryServer.LoggedRequest {
    /// The requests in a worker log (one JSON object per line; other lines skipped).
    public static func parse(_ log: String) -> [RegistryServer.LoggedRequest] {
        log.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let method = object["method"] as? String, let uri = object["uri"] as? String
            else { return nil }
            let status: Int? = (object["status"] as? Int) ?? (object["status"] as? String).flatMap { Int($0) }
            return RegistryServer.LoggedRequest(method: method, uri: uri, status: status ?? -1)
        }
    }

}
