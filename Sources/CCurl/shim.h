#ifndef BERTH_CCURL_SHIM_H
#define BERTH_CCURL_SHIM_H
#include <curl/curl.h>

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: one
// typed wrapper per argument type.

static inline CURLcode berth_curl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode berth_curl_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode berth_curl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

typedef size_t (*berth_curl_data_callback)(char *data, size_t size, size_t count, void *context);

static inline CURLcode berth_curl_easy_setopt_callback(CURL *handle, CURLoption option, berth_curl_data_callback value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode berth_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode berth_curl_easy_getinfo_offset(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}
// A share handle for connections, TLS sessions and DNS answers, locked for use from
// several threads (one mutex per kind of shared data); freed by berth_curl_share_free.
#include <pthread.h>
#include <stdlib.h>

typedef struct {
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
} berth_curl_share;

static void berth_curl_share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *context) {
    (void)handle; (void)access;
    pthread_mutex_lock(&((berth_curl_share *)context)->locks[data]);
}

static void berth_curl_share_unlock(CURL *handle, curl_lock_data data, void *context) {
    (void)handle;
    pthread_mutex_unlock(&((berth_curl_share *)context)->locks[data]);
}

static inline berth_curl_share *berth_curl_share_new(void) {
    berth_curl_share *shared = calloc(1, sizeof(berth_curl_share));
    if (!shared) return NULL;
    shared->share = curl_share_init();
    if (!shared->share) { free(shared); return NULL; }
    for (int index = 0; index < CURL_LOCK_DATA_LAST; index++) pthread_mutex_init(&shared->locks[index], NULL);
    curl_share_setopt(shared->share, CURLSHOPT_LOCKFUNC, berth_curl_share_lock);
    curl_share_setopt(shared->share, CURLSHOPT_UNLOCKFUNC, berth_curl_share_unlock);
    curl_share_setopt(shared->share, CURLSHOPT_USERDATA, shared);
    curl_share_setopt(shared->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(shared->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(shared->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    return shared;
}

static inline void berth_curl_share_free(berth_curl_share *shared) {
    if (!shared) return;
    curl_share_cleanup(shared->share);
    for (int index = 0; index < CURL_LOCK_DATA_LAST; index++) pthread_mutex_destroy(&shared->locks[index]);
    free(shared);
}

static inline CURLcode berth_curl_easy_use_share(CURL *handle, berth_curl_share *shared) {
    return curl_easy_setopt(handle, CURLOPT_SHARE, shared->share);
}
#endif
