import Auth
import Foundation
import Registry
import Storage
import Testing
import TestSupport

/// Tokens of an external issuer (keys made in the test with Python's cryptography, a
/// JWKS file): accepted as Bearer and as a Basic password when genuine, refused otherwise.
@Suite struct ExternalIssuerTests {
    static let script = #"""
    import base64, hashlib, hmac, json, sys
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

    out, now = sys.argv[1], int(sys.argv[2])
    def b64(data): return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    def num(value, length): return b64(value.to_bytes(length, "big"))
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = rsa_key.public_key().public_numbers()
    ecpub = ec_key.public_key().public_numbers()
    jwks = {"keys": [
        {"kty": "RSA", "kid": "r1", "alg": "RS256", "use": "sig", "n": num(pub.n, 256), "e": num(pub.e, 3)},
        {"kty": "EC", "kid": "e1", "crv": "P-256", "x": num(ecpub.x, 32), "y": num(ecpub.y, 32)},
    ]}
    def token(header, claims, sign):
        signing_input = (b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())).encode()
        return signing_input.decode() + "." + b64(sign(signing_input))
    def rs(key): return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    def es(data):
        r, s = utils.decode_dss_signature(ec_key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    good = {"iss": "https://idp.test", "aud": ["registry.test"], "sub": "system:serviceaccount:ci:builder",
            "exp": now + 600, "iat": now, "nbf": now, "groups": ["builders"]}
    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    tokens = {
        "rs256": token({"alg": "RS256", "kid": "r1"}, good, rs(rsa_key)),
        "es256": token({"alg": "ES256", "kid": "e1"}, dict(good, sub="gha", groups=[]), es),
        "wrongAudience": token({"alg": "RS256", "kid": "r1"}, dict(good, aud="elsewhere"), rs(rsa_key)),
        "expired": token({"alg": "RS256", "kid": "r1"}, dict(good, exp=now - 120), rs(rsa_key)),
        "noExpiry": token({"alg": "RS256", "kid": "r1"}, {k: v for k, v in good.items() if k != "exp"}, rs(rsa_key)),
        "wrongKey": token({"alg": "RS256", "kid": "r1"}, good, rs(other)),
        "wrongIssuerKey": token({"alg": "RS256", "kid": "r1"}, dict(good, iss="https://evil.test"), rs(rsa_key)),
        "algNone": token({"alg": "none", "kid": "r1"}, good, lambda data: b""),
        "hs256WithPublicKey": token({"alg": "HS256", "kid": "r1"}, good, lambda data: hmac.new(pem, data, hashlib.sha256).digest()),
        "esAsRs": token({"alg": "RS256", "kid": "e1"}, good, es),
    }
    json.dump({"jwks": jwks, "tokens": tokens}, open(out, "w"))
    """#

    @Test func genuineTokensAuthenticateAndForgedOnesAreRefused() throws {
        let fixture = AuthFixture()
        let script = fixture.directory.path + "/issuer.py", output = fixture.directory.path + "/issuer.json"
        try Self.script.write(toFile: script, atomically: true, encoding: .utf8)
        let run = Shell.run("/usr/bin/python3", [script, output, String(fixture.clock.now())])
        try #require(run.succeeded, "python3-cryptography: \(run.stderr)")
        let made = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output))) as? [String: Any])
        let tokens = try #require(made["tokens"] as? [String: String])
        let jwksFile = fixture.directory.path + "/jwks.json"
        try JSONSerialization.data(withJSONObject: try #require(made["jwks"])).write(to: URL(fileURLWithPath: jwksFile))

        var issuer = IssuerConfiguration(name: "k8s")
        issuer.issuer = "https://idp.test"
        issuer.audience = "registry.test"
        issuer.jwksFile = jwksFile
        issuer.groupsClaim = "groups"
        let h = try TokenFlowTests.Harness(policy: """
            @builders       team/**  read,write
            k8s:gha         team/**  read
            """, fixture: fixture) { $0.issuers = [issuer] }

        let rs = try #require(tokens["rs256"])
        let identity = h.auth.authenticate(.bearer(rs), client: nil).identity
        #expect(identity?.user == "k8s:system:serviceaccount:ci:builder")
        #expect(identity?.groups == ["builders"])
        #expect(h.send("POST", "/v2/team/app/blobs/uploads/", authorization: "Bearer \(rs)").status == 202, "a group rule")
        let es = try #require(tokens["es256"])
        #expect(h.send("GET", "/v2/team/app/tags/list", authorization: "Bearer \(es)").status == 404)
        #expect(h.send("POST", "/v2/team/app/blobs/uploads/", authorization: "Bearer \(es)").status == 403)
        // As the password of a Basic login, and exchanged at the token endpoint.
        #expect(h.send("GET", "/v2/team/app/tags/list", authorization: TokenFlowTests.basic("anything", rs)).status == 404)
        let exchanged = try #require(h.token("oauth2", rs, scope: "repository:team/app:pull,push"))
        #expect(TokenFlowTests.claims(exchanged)["sub"] as? String == "k8s:system:serviceaccount:ci:builder")
        // The group travels in Berth's token, so its push works with it; no refresh token
        // outlives the issuer's own token.
        #expect(h.send("POST", "/v2/team/app/blobs/uploads/", authorization: "Bearer \(exchanged)").status == 202)
        let offline = h.send("GET", "/token?offline_token=true&scope=repository:team/app:pull", authorization: TokenFlowTests.basic("oauth2", rs))
        #expect(offline.status == 200 && h.json(offline)["refresh_token"] == nil)

        for (index, name) in ["wrongAudience", "expired", "noExpiry", "wrongKey", "wrongIssuerKey", "algNone", "hs256WithPublicKey", "esAsRs"].enumerated() {
            let token = try #require(tokens[name])
            #expect(h.send("GET", "/v2/team/app/tags/list", authorization: "Bearer \(token)").status == 401, "\(name)")
            #expect(h.send("GET", "/v2/team/app/tags/list", authorization: TokenFlowTests.basic("u\(index)", token),
                           client: "10.9.0.\(index)").status == 401, "\(name) as password")
        }
        // Past its exp (and the skew) the genuine token stops, cached or not.
        fixture.advance(600 + 61)
        #expect(h.send("GET", "/v2/team/app/tags/list", authorization: "Bearer \(es)").status == 401)
    }
    /// A distribution-compatible token server: its tokens name their signer by an `x5c`
    /// chain to a certificate of the bundle, or by the libtrust `kid` of a bundle key,
    /// and carry distribution's `access` claim, which the request is held to.
    static let tokenServerScript = #"""
    import base64, datetime, hashlib, json, sys
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

    out, now = sys.argv[1], int(sys.argv[2])
    def b64(data): return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    def cert(subject_key, subject, issuer_key, issuer, ca):
        start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=30))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        return builder.sign(issuer_key, hashes.SHA256())
    def der(c): return base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
    def libtrust(key):
        spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        text = base64.b32encode(hashlib.sha256(spki).digest()[:30]).decode()
        return ":".join(text[i:i + 4] for i in range(0, len(text), 4))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert(ca_key, "token ca", ca_key, "token ca", True)
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = cert(leaf_key, "token signer", ca_key, "token ca", False)
    direct_key = ec.generate_private_key(ec.SECP256R1())
    direct = cert(direct_key, "direct signer", direct_key, "direct signer", False)
    rogue_ca_key = ec.generate_private_key(ec.SECP256R1())
    rogue_leaf = cert(leaf_key, "token signer", rogue_ca_key, "token ca", False)
    bundle = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in (ca, direct))
    def rs(key): return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    def es(key):
        def sign(data):
            r, s = utils.decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return sign
    def token(header, claims, sign):
        signing_input = (b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())).encode()
        return signing_input.decode() + "." + b64(sign(signing_input))
    access = [{"type": "repository", "name": "team/app", "actions": ["pull"]},
              {"type": "repository", "name": "team/*", "actions": ["push"]}]
    claims = {"iss": "token-server", "aud": "registry.test", "sub": "carol", "exp": now + 600, "iat": now, "access": access}
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tokens = {
        "chain": token({"alg": "RS256", "x5c": [der(leaf), der(ca)]}, claims, rs(leaf_key)),
        "leafOnly": token({"alg": "RS256", "x5c": [der(leaf)]}, dict(claims, sub="dave"), rs(leaf_key)),
        "kid": token({"alg": "ES256", "kid": libtrust(direct_key)}, dict(claims, sub="erin", access=[]), es(direct_key)),
        "rogueChain": token({"alg": "RS256", "x5c": [der(rogue_leaf)]}, claims, rs(leaf_key)),
        "wrongSigner": token({"alg": "RS256", "x5c": [der(leaf), der(ca)]}, claims, rs(other)),
        "unknownKid": token({"alg": "ES256", "kid": libtrust(rogue_ca_key)}, claims, es(rogue_ca_key)),
        "caKeyAsLeaf": token({"alg": "ES256", "x5c": [der(leaf)]}, claims, es(ca_key)),
        "badAccess": token({"alg": "RS256", "x5c": [der(leaf)]}, dict(claims, access="everything"), rs(leaf_key)),
    }
    json.dump({"bundle": bundle, "tokens": tokens}, open(out, "w"))
    """#

    @Test func aTokenServersCertificateBundleVerifiesItsTokensAndTheirAccessClaimLimitsThem() throws {
        let fixture = AuthFixture()
        let script = fixture.directory.path + "/server.py", output = fixture.directory.path + "/server.json"
        try Self.tokenServerScript.write(toFile: script, atomically: true, encoding: .utf8)
        let run = Shell.run("/usr/bin/python3", [script, output, String(fixture.clock.now())])
        try #require(run.succeeded, "python3-cryptography: \(run.stderr)")
        let made = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output))) as? [String: Any])
        let tokens = try #require(made["tokens"] as? [String: String])
        let bundleFile = fixture.directory.path + "/bundle.pem"
        try #require(made["bundle"] as? String).write(toFile: bundleFile, atomically: true, encoding: .utf8)

        var issuer = IssuerConfiguration(name: "dist")
        issuer.issuer = "token-server"
        issuer.audience = "registry.test"
        issuer.rootCertBundle = bundleFile
        #expect(issuer.problem == nil)
        let h = try TokenFlowTests.Harness(policy: "dist:carol  team/**  read,write\ndist:dave  team/**  read,write\n"
                                           + "dist:erin  team/**  read,write\n", fixture: fixture) { $0.issuers = [issuer] }

        let chain = try #require(tokens["chain"])
        #expect(h.auth.authenticate(.bearer(chain), client: nil).identity?.user == "dist:carol")
        #expect(h.send("GET", "/v2/team/app/tags/list", authorization: "Bearer \(chain)").status == 404, "pull on team/app is granted")
        #expect(h.send("POST", "/v2/team/app/blobs/uploads/", authorization: "Bearer \(chain)").status == 403,
                "the policy allows the push, the token's access claim does not")
        #expect(h.send("GET", "/v2/team/other/tags/list", authorization: "Bearer \(chain)").status == 403,
                "a pattern in the access claim grants nothing")
        let leafOnly = try #require(tokens["leafOnly"])
        #expect(h.send("GET", "/v2/team/app/tags/list", authorization: "Bearer \(leafOnly)").status == 404,
                "the intermediate is not needed when the leaf's issuer is in the bundle")
        let kid = try #require(tokens["kid"])
        #expect(h.auth.authenticate(.bearer(kid), client: nil).identity?.user == "dist:erin")
        #expect(h.send("GET", "/v2/team/app/tags/list", authorization: "Bearer \(kid)").status == 403, "an empty access claim grants nothing")

        for name in ["rogueChain", "wrongSigner", "unknownKid", "caKeyAsLeaf", "badAccess"] {
            let token = try #require(tokens[name])
            #expect(h.send("GET", "/v2/team/app/tags/list", authorization: "Bearer \(token)").status == 401, "\(name)")
        }
    }
}
