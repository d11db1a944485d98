#ifndef BERTH_COPENSSL_SHIM_H
#define BERTH_COPENSSL_SHIM_H
// The low-level SHA-2 API is deprecated in OpenSSL 3 but it is the only one whose
// context is a plain struct that can be saved and restored across processes.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
#include <openssl/crypto.h>
#endif
