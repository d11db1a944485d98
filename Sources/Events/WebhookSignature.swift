import COpenSSL
import Storage

/// The signature header of a webhook request: `X-Berth-Signature-256: sha256=<hex>`, the
/// HMAC-SHA256 of the exact body under the shared secret (as GitHub's webhooks sign). A
/// receiver recomputes it over the body it got and compares in constant time.
public enum WebhookSignature {
    public static let headerName = "X-Berth-Signature-256"

    public static func header(body: [UInt8], secret: [UInt8]) -> String {
        "\(headerName): sha256=\(Hex.encode(hmacSHA256(key: secret, body)))"
    }

    static func hmacSHA256(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var mac = [UInt8](repeating: 0, count: 32)
        _ = key.withUnsafeBufferPointer { k in
            data.withUnsafeBufferPointer { d in
                mac.withUnsafeMutableBufferPointer { out in
                    berth_hmac_sha256(k.baseAddress, k.count, d.baseAddress, d.count, out.baseAddress)
                }
            }
        }
        return mac
    }
}
