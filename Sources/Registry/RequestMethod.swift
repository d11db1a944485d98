/// The HTTP methods of the Distribution API. HEAD is answered as GET: the answer's
/// headers are the same and nginx sends no body.
public enum RequestMethod: String, Sendable, CaseIterable {
    case get = "GET"
    case put = "PUT"
    case post = "POST"
    case patch = "PATCH"
    case delete = "DELETE"

    /// nil for a method the API does not use (OPTIONS, TRACE, anything else).
    public init?(http method: String) {
        if method == "HEAD" { self = .get } else { self.init(rawValue: method) }
    }
}
