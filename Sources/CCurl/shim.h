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
#endif
