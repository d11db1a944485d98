/// A decorator of the manifest service and the blob statter that tells a `PullRecorder`
/// what the registry read and pushed: every manifest resolved (a pull by tag or digest,
/// GET or HEAD), every manifest pushed, and every blob found in a repository that
/// `recordsBlobs` says is mirrored (mirror eviction needs them; hosted blobs live and
/// die with their manifests). It changes no answer.
struct PullRecordingManifests: ManifestServiceDecorator {
    let inner: any ManifestService
    let recorder: PullRecorder

    func resolve(_ reference: Reference, in repository: RepositoryName) throws(StorageError) -> ResolvedManifest {
        let resolved = try inner.resolve(reference, in: repository)
        recorder.record(.pull, resolved.digest, in: repository)
        return resolved
    }

    func put(_ body: [UInt8], contentType: String?, reference: Reference, repository: RepositoryName,
             tags: [Tag]) throws(StorageError) -> PushedManifest {
        let pushed = try inner.put(body, contentType: contentType, reference: reference, repository: repository, tags: tags)
        recorder.record(.push, pushed.digest, in: repository)
        return pushed
    }
}

struct PullRecordingBlobs: BlobStatter {
    let inner: any BlobStatter
    let recorder: PullRecorder
    let recordsBlobs: @Sendable (RepositoryName) -> Bool

    func size(of digest: Digest, in repository: RepositoryName) -> UInt64? {
        let size = inner.size(of: digest, in: repository)
        if size != nil, recordsBlobs(repository) { recorder.record(.blob, digest, in: repository) }
        return size
    }
}

extension Capabilities {
    /// These capabilities with manifest pulls and pushes (and the blob reads of mirrored
    /// repositories) told to `recorder`. Wrap last, so only what the registry itself asks
    /// is recorded, not a decorator's own lookups.
    public func recordingPulls(into recorder: PullRecorder) -> Capabilities {
        var decorated = self
        decorated.manifests = PullRecordingManifests(inner: manifests, recorder: recorder)
        let pullThrough = self.pullThrough
        decorated.blobs = PullRecordingBlobs(inner: blobs, recorder: recorder) { repository in
            pullThrough?.isMirrored(repository) ?? false
        }
        return decorated
    }
}
