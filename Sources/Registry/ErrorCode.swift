/// Every error answer Berth can give, each an OCI error code with the HTTP status it is
/// sent with: the one table of both. A code with two statuses (UNSUPPORTED for an
/// unknown endpoint and for a wrong method) has two entries. nginx's own error bodies
/// (`nginx/berth-site.conf.in`) use only codes listed here, which a test checks.
public struct ErrorCode: Sendable, Hashable, CustomStringConvertible {
    /// The `code` field of the OCI error body.
    public let wireCode: String
    public let status: Int

    private init(_ wireCode: String, _ status: Int) {
        self.wireCode = wireCode
        self.status = status
    }

    public var description: String { "\(wireCode) (\(status))" }

    public static let blobUnknown = ErrorCode("BLOB_UNKNOWN", 404)
    public static let blobUploadInvalid = ErrorCode("BLOB_UPLOAD_INVALID", 400)
    /// A chunk that does not start where the upload ends: the spec's 416, with `Range`.
    public static let uploadRangeMismatch = ErrorCode("BLOB_UPLOAD_INVALID", 416)
    public static let blobUploadUnknown = ErrorCode("BLOB_UPLOAD_UNKNOWN", 404)
    public static let digestInvalid = ErrorCode("DIGEST_INVALID", 400)
    public static let manifestBlobUnknown = ErrorCode("MANIFEST_BLOB_UNKNOWN", 400)
    public static let manifestInvalid = ErrorCode("MANIFEST_INVALID", 400)
    public static let manifestTooLarge = ErrorCode("MANIFEST_INVALID", 413)
    public static let manifestUnknown = ErrorCode("MANIFEST_UNKNOWN", 404)
    public static let nameInvalid = ErrorCode("NAME_INVALID", 400)
    public static let nameUnknown = ErrorCode("NAME_UNKNOWN", 404)
    public static let sizeInvalid = ErrorCode("SIZE_INVALID", 400)
    public static let unauthorized = ErrorCode("UNAUTHORIZED", 401)
    public static let denied = ErrorCode("DENIED", 403)
    public static let unsupported = ErrorCode("UNSUPPORTED", 400)
    /// A path that is no endpoint of the API.
    public static let endpointUnknown = ErrorCode("UNSUPPORTED", 404)
    /// An endpoint asked with a method it does not answer (with `Allow`).
    public static let methodNotAllowed = ErrorCode("UNSUPPORTED", 405)
    /// More `?tag=` parameters on one manifest push than Berth applies at once.
    public static let tooManyTags = ErrorCode("UNSUPPORTED", 414)
    public static let tooManyRequests = ErrorCode("TOOMANYREQUESTS", 429)
    /// A failure of the registry itself (storage, corruption).
    public static let unknown = ErrorCode("UNKNOWN", 500)
    /// The store's disk or quota is full.
    public static let storageFull = ErrorCode("UNKNOWN", 507)
    /// The worker is down or did not answer in time (sent by nginx).
    public static let unavailable = ErrorCode("UNAVAILABLE", 503)

    /// Every entry above.
    public static let all: [ErrorCode] = [
        blobUnknown, blobUploadInvalid, uploadRangeMismatch, blobUploadUnknown, digestInvalid, manifestBlobUnknown,
        manifestInvalid, manifestTooLarge, manifestUnknown, nameInvalid, nameUnknown, sizeInvalid, unauthorized, denied,
        unsupported, endpointUnknown, methodNotAllowed, tooManyTags, tooManyRequests, unknown, storageFull, unavailable,
    ]
}
