/// A failure of the service a person must act on (a socket that cannot be opened, a
/// policy file that does not parse), said in one line. The commands print it and exit 1.
public struct ServiceError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) { self.description = description }
}
