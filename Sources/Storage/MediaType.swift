/// The media types Berth recognises.
public enum MediaType {
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json"
    public static let dockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    public static let ociLayoutVersion = "1.0.0"

    /// Manifests that name a config and layers.
    public static let imageManifests: Set<String> = [ociManifest, dockerManifest]
    /// Manifests that list other manifests.
    public static let indexes: Set<String> = [ociIndex, dockerManifestList]
    public static let schema1: Set<String> = [dockerSchema1, dockerSchema1Signed]
    public static let manifests: Set<String> = imageManifests.union(indexes)

    /// Layers that registries do not have to hold (their bytes live elsewhere).
    public static func isNonDistributable(_ mediaType: String) -> Bool {
        mediaType.contains(".nondistributable.") || mediaType.contains(".foreign.")
    }
}
