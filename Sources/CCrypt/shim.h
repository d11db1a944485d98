#ifndef BERTH_CCRYPT_SHIM_H
#define BERTH_CCRYPT_SHIM_H
// libxcrypt (Debian libcrypt-dev): bcrypt ($2y$, $2b$) and the other crypt(3) hashes
// of htpasswd files. crypt_rn never returns a "*0" magic string as success: it returns
// NULL on failure, so a bad setting cannot match anything.
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

/// The hash of `phrase` under `setting` (a stored hash) into `out` (at most `size` bytes,
/// NUL-terminated); 0 on success, -1 on any failure. The work area lives on the heap.
static inline int berth_crypt(const char *phrase, const char *setting, char *out, size_t size) {
    struct crypt_data *data = calloc(1, sizeof(struct crypt_data));
    if (data == NULL) return -1;
    const char *hash = crypt_rn(phrase, setting, data, (int)sizeof(struct crypt_data));
    int result = -1;
    if (hash != NULL && hash[0] != '*') {
        size_t length = strlen(hash);
        if (length < size) { memcpy(out, hash, length + 1); result = 0; }
    }
    explicit_bzero(data, sizeof(struct crypt_data));
    free(data);
    return result;
}

/// A bcrypt setting ($2b$, cost `cost`) from libxcrypt's own salt generator; 0 on success.
static inline int berth_bcrypt_setting(unsigned long cost, char *out, size_t size) {
    if (size < CRYPT_GENSALT_OUTPUT_SIZE) return -1;
    return crypt_gensalt_rn("$2b$", cost, NULL, 0, out, (int)size) == NULL ? -1 : 0;
}
#endif
