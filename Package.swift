// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "berth",
    products: [
        .executable(name: "berth", targets: ["berth"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
    ],
    targets: [
        // C shims: libfcgi (Debian libfcgi-dev) and OpenSSL's libcrypto (exportable SHA-2 state).
        .systemLibrary(name: "CFastCGI", pkgConfig: "fcgi", providers: [.apt(["libfcgi-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // libxcrypt (Debian libcrypt-dev): crypt_rn for the bcrypt hashes of htpasswd files.
        .systemLibrary(name: "CCrypt", pkgConfig: "libxcrypt", providers: [.apt(["libcrypt-dev"])]),
        // libcurl (Debian libcurl4-openssl-dev): HTTP requests out of the worker (mirror upstreams,
        // issuers' JWKS, webhooks).
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // glibc's Linux-only file calls (O_DIRECT, sync_file_range), which need _GNU_SOURCE.
        .systemLibrary(name: "CLinux"),

        // The locks for state shared by threads (POSIX, so ThreadSanitizer sees them).
        .target(name: "Locks"),
        // The OCI image layout store: paths, blobs, uploads, manifests, tags, locks. No HTTP.
        .target(name: "Storage", dependencies: ["Locks", "COpenSSL", "CLinux"]),
        // The Distribution API as request -> response logic over Storage. No sockets.
        .target(name: "Registry", dependencies: ["Storage"]),
        // Credentials: htpasswd (bcrypt), robot tokens, the token endpoint's Ed25519 JWTs.
        // Implements Registry's Authenticator and TokenIssuer.
        .target(name: "Auth", dependencies: ["Locks", "Registry", "Storage", "Curl", "COpenSSL", "CCrypt"]),
        // An HTTP client over libcurl (GET, HEAD, POST; TLS verified; bodies streamed): the
        // mirror's upstreams, issuers' JWKS, webhooks.
        .target(name: "Curl", dependencies: ["Storage", "CCurl"]),
        // The pull-through mirror: upstream registries, their token flow, and a decorator of
        // the store's capabilities that fills mirrored repositories on demand.
        .target(name: "Mirror", dependencies: ["Locks", "Storage", "Curl"]),
        // Delivery of the store's queued events to webhooks (libcurl, HMAC signatures),
        // one deliverer per store. The outbox itself is Storage's, written in the commit.
        .target(name: "Events", dependencies: ["Locks", "Storage", "Curl", "COpenSSL"]),
        // A thin libfcgi server: accept loop on threads, params, body stream, response writer.
        .target(name: "FastCGI", dependencies: ["CFastCGI"]),
        // The service around the registry: settings, the supervisor and its workers, the
        // access log, metrics rendering, background work. Everything the commands run.
        .target(
            name: "BerthService",
            dependencies: ["Locks", "Storage", "Registry", "Auth", "Mirror", "Events", "FastCGI", .product(name: "Logging", package: "swift-log")]
        ),
        // The command line (serve, gc, scrub, config check): parsing and wiring only.
        .executableTarget(
            name: "berth",
            dependencies: [
                "BerthService", "Storage", "Auth",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Plain helpers (temporary directories, processes, seeded bytes): no Berth module.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        // Real nginx, the real worker and real clients, for the integration tests.
        .target(name: "IntegrationSupport", dependencies: ["TestSupport", "FastCGI"], path: "Tests/IntegrationSupport"),
        .testTarget(name: "StorageTests", dependencies: ["Locks", "Storage", "Mirror", "TestSupport"]),
        .testTarget(name: "MirrorTests", dependencies: ["Mirror", "Curl", "Storage", "TestSupport"]),
        .testTarget(name: "RegistryTests", dependencies: ["Registry", "Storage", "TestSupport"]),
        .testTarget(name: "AuthTests", dependencies: ["Locks", "Auth", "Registry", "Storage", "TestSupport"]),
        .testTarget(name: "ServiceTests", dependencies: ["BerthService", "FastCGI", "Locks", "Storage", "TestSupport"]),
        .testTarget(name: "EventsTests", dependencies: ["Events", "Storage", "TestSupport"]),
        .testTarget(name: "IntegrationTests", dependencies: ["IntegrationSupport"]),
    ]
)
