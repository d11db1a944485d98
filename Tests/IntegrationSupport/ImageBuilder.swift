import Foundation

/// Builds real OCI images on disk with umoci: each layer a gzipped tar holding one file
/// of seeded random (incompressible) bytes.
public enum ImageBuilder {
    /// Creates `layout:tag` with one layer per entry of `layerSizes`. Returns the layout path.
    @discardableResult
    public static func build(layout: String, tag: String, layerSizes: [Int], seed: UInt64) throws -> String {
        let scratch = layout + ".files"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        if !FileManager.default.fileExists(atPath: layout) {
            try check(Shell.run("umoci", ["init", "--layout", layout]))
        }
        try check(Shell.run("umoci", ["new", "--image", "\(layout):\(tag)"]))
        var random = SeededBytes(seed: seed)
        for (position, size) in layerSizes.enumerated() {
            try? FileManager.default.removeItem(atPath: scratch)
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: "\(scratch)/layer-\(position).bin", contents: Data(random.next(size)))
            try check(Shell.run("umoci", ["insert", "--image", "\(layout):\(tag)", scratch, "/data/\(position)"]))
        }
        try check(Shell.run("umoci", ["gc", "--layout", layout]))
        return layout
    }

    private static func check(_ result: Shell.Result) throws {
        guard result.succeeded else { throw ImageBuilderError.failed(result.stderr + result.stdout) }
    }

    public enum ImageBuilderError: Error { case failed(String) }
}
