#ifndef BERTH_COPENSSL_SHIM_H
#define BERTH_COPENSSL_SHIM_H
// The low-level SHA-2 API is deprecated in OpenSSL 3 but it is the only one whose
// context is a plain struct that can be saved and restored across processes.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/rsa.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/bn.h>
#include <openssl/obj_mac.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

// Ed25519 (RFC 8032) for token signatures, over EVP. Every function returns 1 on
// success and 0 on any failure, and frees what it allocated.

/// The 32-byte public key of a 32-byte private key (seed).
static inline int berth_ed25519_public_key(const unsigned char *seed, unsigned char *public_key) {
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    if (key == NULL) return 0;
    size_t length = 32;
    int ok = EVP_PKEY_get_raw_public_key(key, public_key, &length) == 1 && length == 32;
    EVP_PKEY_free(key);
    return ok;
}

/// The 64-byte signature of `message` under the private key `seed`.
static inline int berth_ed25519_sign(const unsigned char *seed, const unsigned char *message, size_t length,
                                     unsigned char *signature) {
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    if (key == NULL) return 0;
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    size_t signature_length = 64;
    int ok = context != NULL && EVP_DigestSignInit(context, NULL, NULL, NULL, key) == 1
        && EVP_DigestSign(context, signature, &signature_length, message, length) == 1 && signature_length == 64;
    EVP_MD_CTX_free(context);
    EVP_PKEY_free(key);
    return ok;
}

/// 1 when `signature` (64 bytes) is the signature of `message` under `public_key` (32 bytes).
static inline int berth_ed25519_verify(const unsigned char *public_key, const unsigned char *message, size_t length,
                                       const unsigned char *signature) {
    EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, public_key, 32);
    if (key == NULL) return 0;
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    int ok = context != NULL && EVP_DigestVerifyInit(context, NULL, NULL, NULL, key) == 1
        && EVP_DigestVerify(context, signature, 64, message, length) == 1;
    EVP_MD_CTX_free(context);
    EVP_PKEY_free(key);
    return ok;
}

/// The 32-byte seed of an Ed25519 private key in PEM (`openssl genpkey -algorithm ed25519`).
static inline int berth_ed25519_seed_from_pem(const char *pem, size_t length, unsigned char *seed) {
    BIO *bio = BIO_new_mem_buf(pem, (int)length);
    if (bio == NULL) return 0;
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (key == NULL) return 0;
    size_t seed_length = 32;
    int ok = EVP_PKEY_get_id(key) == EVP_PKEY_ED25519
        && EVP_PKEY_get_raw_private_key(key, seed, &seed_length) == 1 && seed_length == 32;
    EVP_PKEY_free(key);
    return ok;
}

/// HMAC-SHA256 of `data` under `key` into `out` (32 bytes).
static inline int berth_hmac_sha256(const unsigned char *key, size_t key_length, const unsigned char *data, size_t length,
                                    unsigned char *out) {
    unsigned int out_length = 32;
    return HMAC(EVP_sha256(), key, (int)key_length, data, length, out, &out_length) != NULL && out_length == 32;
}

// JWS verification for external issuers' keys (JWKS): RS256 (RSA PKCS#1 v1.5, SHA-256)
// and ES256 (ECDSA P-256, SHA-256, signature as r||s). Return 1 only for a valid signature.

static inline int berth_verify_with(EVP_PKEY *key, const unsigned char *message, size_t length,
                                    const unsigned char *signature, size_t signature_length) {
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    int ok = context != NULL && EVP_DigestVerifyInit(context, NULL, EVP_sha256(), NULL, key) == 1
        && EVP_DigestVerify(context, signature, signature_length, message, length) == 1;
    EVP_MD_CTX_free(context);
    return ok;
}

/// RS256 with the RSA public key (n, e: big-endian bytes, as a JWK has them).
static inline int berth_rs256_verify(const unsigned char *n, size_t n_length, const unsigned char *e, size_t e_length,
                                     const unsigned char *message, size_t length,
                                     const unsigned char *signature, size_t signature_length) {
    if (n_length < 256 || n_length > 1024 || e_length == 0 || e_length > 8) return 0;  // at least 2048-bit keys
    RSA *rsa = RSA_new();
    BIGNUM *bn_n = BN_bin2bn(n, (int)n_length, NULL), *bn_e = BN_bin2bn(e, (int)e_length, NULL);
    if (rsa == NULL || bn_n == NULL || bn_e == NULL || RSA_set0_key(rsa, bn_n, bn_e, NULL) != 1) {
        BN_free(bn_n); BN_free(bn_e); RSA_free(rsa);
        return 0;
    }
    EVP_PKEY *key = EVP_PKEY_new();
    int ok = key != NULL && EVP_PKEY_assign_RSA(key, rsa) == 1;
    if (!ok) { RSA_free(rsa); EVP_PKEY_free(key); return 0; }
    ok = berth_verify_with(key, message, length, signature, signature_length);
    EVP_PKEY_free(key);
    return ok;
}

/// ES256 under `key` (an EC P-256 key); `signature` is r||s (64 bytes), as JWS has it.
static inline int berth_es256_verify_with(EVP_PKEY *key, const unsigned char *message, size_t length,
                                          const unsigned char *signature) {
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(signature, 32, NULL), *s = BN_bin2bn(signature + 32, 32, NULL);
    unsigned char *der = NULL;
    int der_length = 0;
    if (sig != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(sig, r, s) == 1) {
        r = NULL; s = NULL;
        der_length = i2d_ECDSA_SIG(sig, &der);
    }
    BN_free(r); BN_free(s);
    int ok = der_length > 0 && berth_verify_with(key, message, length, der, (size_t)der_length);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    return ok;
}

/// ES256 with the P-256 public key (x, y: 32 bytes each); `signature` is r||s (64 bytes).
static inline int berth_es256_verify(const unsigned char *x, const unsigned char *y,
                                     const unsigned char *message, size_t length, const unsigned char *signature) {
    EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
    BIGNUM *bx = BN_bin2bn(x, 32, NULL), *by = BN_bin2bn(y, 32, NULL);
    int ok = ec != NULL && bx != NULL && by != NULL && EC_KEY_set_public_key_affine_coordinates(ec, bx, by) == 1;
    BN_free(bx); BN_free(by);
    if (!ok) { EC_KEY_free(ec); return 0; }
    EVP_PKEY *key = EVP_PKEY_new();
    if (key == NULL || EVP_PKEY_assign_EC_KEY(key, ec) != 1) { EC_KEY_free(ec); EVP_PKEY_free(key); return 0; }
    ok = berth_es256_verify_with(key, message, length, signature);
    EVP_PKEY_free(key);
    return ok;
}

// Certificates of a distribution-compatible token server (its `rootcertbundle`): a PEM
// bundle of trusted certificates; a token names its signer by an `x5c` chain that must
// lead to one of them, or by the `kid` of one of their keys.

/// The JWS signature (`es256`: 1 for ES256 with r||s, 0 for RS256) checked with `key`,
/// whose type must match the algorithm (RSA of at least 2048 bits, or EC P-256).
static inline int berth_jws_verify_with(EVP_PKEY *key, int es256, const unsigned char *message, size_t length,
                                        const unsigned char *signature, size_t signature_length) {
    if (es256) {
        if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC || EVP_PKEY_get_bits(key) != 256 || signature_length != 64) return 0;
        return berth_es256_verify_with(key, message, length, signature);
    }
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA || EVP_PKEY_get_bits(key) < 2048) return 0;
    return berth_verify_with(key, message, length, signature, signature_length);
}

/// The certificates of a PEM bundle, or NULL (none, or unreadable).
static inline STACK_OF(X509) *berth_read_bundle(const char *pem, size_t length) {
    BIO *bio = BIO_new_mem_buf(pem, (int)length);
    if (bio == NULL) return NULL;
    STACK_OF(X509) *certificates = sk_X509_new_null();
    X509 *certificate = NULL;
    while (certificates != NULL && (certificate = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (sk_X509_push(certificates, certificate) == 0) { X509_free(certificate); break; }
    }
    BIO_free(bio);
    if (certificates != NULL && sk_X509_num(certificates) == 0) { sk_X509_free(certificates); return NULL; }
    return certificates;
}

/// 1 when the DER chain (`count` certificates, the signer's first) verifies up to a
/// certificate of the bundle (validity dates included) and the signer's key checks the
/// signature.
static inline int berth_x5c_verify(const char *bundle, size_t bundle_length,
                                   const unsigned char *const *ders, const size_t *der_lengths, size_t count, int es256,
                                   const unsigned char *message, size_t length,
                                   const unsigned char *signature, size_t signature_length) {
    if (count == 0 || count > 8) return 0;
    STACK_OF(X509) *trusted = berth_read_bundle(bundle, bundle_length);
    if (trusted == NULL) return 0;
    X509_STORE *store = X509_STORE_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509 *leaf = NULL;
    int ok = store != NULL && untrusted != NULL;
    for (int index = 0; ok && index < sk_X509_num(trusted); index++) {
        ok = X509_STORE_add_cert(store, sk_X509_value(trusted, index)) == 1;
    }
    for (size_t index = 0; ok && index < count; index++) {
        const unsigned char *cursor = ders[index];
        X509 *certificate = d2i_X509(NULL, &cursor, (long)der_lengths[index]);
        if (certificate == NULL || cursor != ders[index] + der_lengths[index]) { X509_free(certificate); ok = 0; break; }
        if (index == 0) leaf = certificate;
        else if (sk_X509_push(untrusted, certificate) == 0) { X509_free(certificate); ok = 0; }
    }
    X509_STORE_CTX *context = ok ? X509_STORE_CTX_new() : NULL;
    ok = context != NULL && X509_STORE_CTX_init(context, store, leaf, untrusted) == 1 && X509_verify_cert(context) == 1;
    X509_STORE_CTX_free(context);
    EVP_PKEY *key = ok ? X509_get0_pubkey(leaf) : NULL;
    ok = key != NULL && berth_jws_verify_with(key, es256, message, length, signature, signature_length);
    X509_free(leaf);
    sk_X509_pop_free(untrusted, X509_free);
    X509_STORE_free(store);
    sk_X509_pop_free(trusted, X509_free);
    return ok;
}

/// The DER SubjectPublicKeyInfo of the bundle's certificate `index` into `out`
/// (`capacity` bytes), its length in `out_length`: 1, or 0 when there is no such
/// certificate or it does not fit.
static inline int berth_bundle_public_key(const char *bundle, size_t bundle_length, size_t index,
                                          unsigned char *out, size_t capacity, size_t *out_length) {
    STACK_OF(X509) *trusted = berth_read_bundle(bundle, bundle_length);
    if (trusted == NULL) return 0;
    int ok = 0;
    if (index < (size_t)sk_X509_num(trusted)) {
        EVP_PKEY *key = X509_get0_pubkey(sk_X509_value(trusted, (int)index));
        int needed = key != NULL ? i2d_PUBKEY(key, NULL) : -1;
        if (needed > 0 && (size_t)needed <= capacity) {
            unsigned char *cursor = out;
            ok = i2d_PUBKEY(key, &cursor) == needed;
            *out_length = (size_t)needed;
        }
    }
    sk_X509_pop_free(trusted, X509_free);
    return ok;
}

/// 1 when the key of the bundle's certificate `index` checks the signature.
static inline int berth_bundle_verify(const char *bundle, size_t bundle_length, size_t index, int es256,
                                      const unsigned char *message, size_t length,
                                      const unsigned char *signature, size_t signature_length) {
    STACK_OF(X509) *trusted = berth_read_bundle(bundle, bundle_length);
    if (trusted == NULL) return 0;
    int ok = 0;
    if (index < (size_t)sk_X509_num(trusted)) {
        EVP_PKEY *key = X509_get0_pubkey(sk_X509_value(trusted, (int)index));
        ok = key != NULL && berth_jws_verify_with(key, es256, message, length, signature, signature_length);
    }
    sk_X509_pop_free(trusted, X509_free);
    return ok;
}
#endif
