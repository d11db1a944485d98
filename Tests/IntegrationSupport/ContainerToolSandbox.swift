import Foundation

/// podman and buildah kept inside one folder: vfs storage (`--root`, `--runroot`), their
/// own registries.conf, storage.conf, containers.conf (events to a file), auth file,
/// blob-info cache and temp files. Nothing is written under /var/lib/containers, /etc
/// or the real home, and no container is ever run (so no daemon or pause process stays).
public struct ContainerToolSandbox: Sendable {
    public let path: String

    /// Creates the folder and its config files.
    public init(path: String) throws {
        self.path = path
        for folder in ["root", "run", "tmp", "home", "xdg-runtime"] {
            try FileManager.default.createDirectory(atPath: "\(path)/\(folder)", withIntermediateDirectories: true)
        }
        let files = [
            // Only fully qualified names: nothing may be looked up on another registry.
            "registries.conf": "unqualified-search-registries = []\nshort-name-mode = \"disabled\"\n",
            "storage.conf": "[storage]\ndriver = \"vfs\"\ngraphroot = \"\(path)/root\"\nrunroot = \"\(path)/run\"\n",
            "containers.conf": "[engine]\nevents_logger = \"file\"\nevents_logfile_path = \"\(path)/events.log\"\n",
            "auth.json": "{\"auths\":{}}\n",
        ]
        for (name, text) in files {
            try text.write(toFile: "\(path)/\(name)", atomically: true, encoding: .utf8)
        }
    }

    /// The environment both tools run with. `_CONTAINERS_ROOTLESS_UID` only moves the
    /// blob-info cache under `XDG_DATA_HOME` (as root it would be the machine-wide
    /// /var/lib/containers/cache, whose memory of earlier runs turns uploads into mounts);
    /// storage stays the root storage given by the flags.
    public var environment: [String: String] {
        [
            "CONTAINERS_REGISTRIES_CONF": "\(path)/registries.conf",
            "CONTAINERS_STORAGE_CONF": "\(path)/storage.conf",
            "CONTAINERS_CONF": "\(path)/containers.conf",
            "REGISTRY_AUTH_FILE": "\(path)/auth.json",
            "HOME": "\(path)/home",
            "XDG_CONFIG_HOME": "\(path)/home/.config",
            "XDG_DATA_HOME": "\(path)/home/.local/share",
            "XDG_RUNTIME_DIR": "\(path)/xdg-runtime",
            "TMPDIR": "\(path)/tmp",
            "_CONTAINERS_ROOTLESS_UID": "1000",
        ]
    }

    /// `podman` with the sandbox's storage flags before `arguments`.
    public func podman(_ arguments: [String], timeout: TimeInterval = 300) -> Shell.Result {
        Shell.run("podman", ["--root", "\(path)/root", "--runroot", "\(path)/run", "--tmpdir", "\(path)/tmp",
                             "--storage-driver", "vfs"] + arguments, environment: environment, timeout: timeout)
    }

    /// `buildah` with the sandbox's storage flags before `arguments` (buildah has no
    /// `--tmpdir`; it takes TMPDIR from the environment).
    public func buildah(_ arguments: [String], input: String? = nil, timeout: TimeInterval = 300) -> Shell.Result {
        Shell.run("buildah", ["--root", "\(path)/root", "--runroot", "\(path)/run", "--storage-driver", "vfs"] + arguments,
                  environment: environment, input: input.map { Data($0.utf8) }, timeout: timeout)
    }
}
