import Foundation

/// Finds the real registry clients the integration tests drive, and fails (never skips)
/// with what to install when one is missing.
public enum ClientTools {
    /// Throws, naming the Debian package, unless `command` is an executable on PATH.
    public static func require(_ command: String, debianPackage: String) throws {
        guard Shell.run("sh", ["-c", "command -v \"$0\"", command]).succeeded else {
            throw MissingTool(what: "`\(command)` is not installed: apt-get install \(debianPackage) (scripts/deps does)")
        }
    }

    /// The Python virtual environment holding the PyPI clients: `BERTH_PYENV`, or
    /// `.build-pyenv` in the repository (made by scripts/deps).
    public static var pythonEnvironment: String {
        if let path = ProcessInfo.processInfo.environment["BERTH_PYENV"], !path.isEmpty { return path }
        return "\(RegistryServer.repositoryRoot)/.build-pyenv"
    }

    /// What creates the environment on a clean machine (needs Debian's python3-venv).
    public static var pythonEnvironmentRecipe: String {
        "/usr/bin/python3 -m venv \(pythonEnvironment) && \(pythonEnvironment)/bin/pip install 'oras==0.2.*' 'python-dxf==12.*'"
    }

    /// The environment's python, after checking that it imports `module` (e.g. `oras`,
    /// `dxf`).
    public static func python(importing module: String) throws -> String {
        let python = "\(pythonEnvironment)/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw MissingTool(what: "no Python environment at \(pythonEnvironment): run scripts/deps, or \(pythonEnvironmentRecipe)")
        }
        let check = Shell.run(python, ["-c", "import \(module)"])
        guard check.succeeded else {
            throw MissingTool(what: "\(python) cannot import \(module): run scripts/deps, or \(pythonEnvironmentRecipe)\n\(check.stderr)")
        }
        return python
    }

    /// One request line of the worker's log: what a client sent and what Berth answered.
    public struct WorkerRequest: Sendable, CustomStringConvertible {
        public let method: String
        public let uri: String
        public let status: Int
        public var description: String { "\(method) \(uri) -> \(status)" }
    }

    /// The requests the worker of `server` answered so far, in order (blob and manifest
    /// reads included: the worker answers them before nginx sends the file).
    public static func workerRequests(_ server: RegistryServer) -> [WorkerRequest] {
        server.workerLog.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  object["event"] as? String == "request",
                  let method = object["method"] as? String, let uri = object["uri"] as? String
            else { return nil }
            let status = (object["status"] as? String).flatMap { Int($0) } ?? (object["status"] as? Int) ?? -1
            return WorkerRequest(method: method, uri: uri, status: status)
        }
    }

    public struct MissingTool: Error, CustomStringConvertible {
        public let what: String
        public var description: String { what }
    }
}
