import CCrypt

/// crypt(3) password hashes as htpasswd files hold them, verified by libxcrypt: bcrypt
/// (`$2y$`, `$2b$`, `$2a$`), SHA-crypt (`$5$`, `$6$`) and yescrypt (`$y$`). Anything
/// else (DES crypt, `{SHA}`, plain text, apr1) never verifies.
public enum PasswordHash {
    static let acceptedPrefixes = ["$2y$", "$2b$", "$2a$", "$5$", "$6$", "$y$"]
    /// Passwords longer than this never verify (bcrypt reads 72 bytes; this bounds the work).
    static let maximumPasswordBytes = 1024

    public static func isSupported(_ hash: String) -> Bool {
        hash.utf8.count <= 512 && acceptedPrefixes.contains { hash.hasPrefix($0) }
    }

    /// True when `password` hashes to `hash`; the comparison is constant-time.
    public static func verify(_ password: String, against hash: String) -> Bool {
        guard isSupported(hash), password.utf8.count <= maximumPasswordBytes, !password.utf8.contains(0) else { return false }
        guard let computed = crypt(password, setting: hash) else { return false }
        return Secrets.constantTimeEqual(Array(computed.utf8), Array(hash.utf8))
    }

    /// A new bcrypt hash of `password` at `cost` (tests and tools).
    public static func bcrypt(_ password: String, cost: Int = 10) -> String? {
        var setting = [CChar](repeating: 0, count: 256)
        guard berth_bcrypt_setting(UInt(cost), &setting, setting.count) == 0 else { return nil }
        let settingText = String(decoding: setting.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return crypt(password, setting: settingText)
    }

    private static func crypt(_ password: String, setting: String) -> String? {
        var out = [CChar](repeating: 0, count: 512)
        guard berth_crypt(password, setting, &out, out.count) == 0 else { return nil }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
