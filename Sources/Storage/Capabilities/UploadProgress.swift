/// How far an upload session has come.
public struct UploadProgress: Sendable, Equatable {
    public let id: UploadID
    public let size: UInt64

    public init(id: UploadID, size: UInt64) {
        self.id = id
        self.size = size
    }
}
