#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Registry
import Storage

// Small helpers the commands share: environment, files, the store root, the clock.

/// `max_upload_sessions` -> `max-upload-sessions`, as flags spell settings.
extension String {
    var replacingUnderscores: String { split(separator: "_").joined(separator: "-") }
}

enum Environment {
    /// The process environment as a dictionary.
    static var variables: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}

enum TextFile {
    /// The whole file as UTF-8 text; nil (errno set) when it cannot be read.
    static func read(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count == 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

enum PolicyFile {
    static func load(_ path: String) throws -> AccessPolicy {
        guard let text = TextFile.read(path) else {
            throw ValidationError("cannot read policy \(path): \(String(cString: strerror(errno)))")
        }
        do { return try AccessPolicy(text: text) } catch {
            throw ValidationError("\(path): \(error)")
        }
    }
}

/// Makes the storage root absolute and creates its bookkeeping folders.
enum StoreRoot {
    static func prepare(_ path: String) throws -> String {
        for directory in StoreLayout(root: path).requiredDirectories {
            if mkdir(directory, 0o755) != 0, errno != EEXIST {
                throw ValidationError("cannot create \(directory): \(String(cString: strerror(errno)))")
            }
        }
        guard let resolved = realpath(path, nil) else {
            throw ValidationError("cannot resolve \(path): \(String(cString: strerror(errno)))")
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

enum Clock {
    static func monotonicMicroseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
    }
}
