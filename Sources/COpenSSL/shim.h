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
#endif
