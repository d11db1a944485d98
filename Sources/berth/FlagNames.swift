/// `max_upload_sessions` -> `max-upload-sessions`, as flags spell settings.
extension String {
    var replacingUnderscores: String { split(separator: "_").joined(separator: "-") }
}
