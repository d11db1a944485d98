import CFastCGI

public enum FastCGIError: Error, Sendable {
    case bodyInterrupted
    case socket(operation: String, path: String, errno: Int32)
}
