#ifndef BERTH_CCURL_SHIM_H
#define BERTH_CCURL_SHIM_H
// libcurl (Debian libcurl4-openssl-dev). curl_easy_setopt is variadic, which Swift cannot
// call: each use of libcurl gets a small C function here instead.
#include <curl/curl.h>
#include <string.h>

static size_t berth_curl_discard(char *data, size_t size, size_t count, void *context) {
    (void)data; (void)context;
    return size * count;
}

/// One webhook POST: `body` with the given header lines, no redirects followed, http and
/// https only, at most `timeout_seconds` in all. Returns the CURLcode (CURLE_OK when an
/// answer came, whatever its status); the HTTP status goes to `status`, a curl error
/// message to `error` (CURL_ERROR_SIZE bytes). Safe on any thread once curl_global_init ran.
static inline int berth_webhook_post(const char *url, const unsigned char *body, size_t length,
                                     const char *const *headers, size_t header_count, long timeout_seconds,
                                     long *status, char *error) {
    *status = 0;
    error[0] = 0;
    CURL *curl = curl_easy_init();
    if (curl == NULL) { strcpy(error, "curl_easy_init failed"); return CURLE_FAILED_INIT; }
    struct curl_slist *list = NULL;
    for (size_t i = 0; i < header_count; i++) {
        struct curl_slist *next = curl_slist_append(list, headers[i]);
        if (next == NULL) { curl_slist_free_all(list); curl_easy_cleanup(curl); strcpy(error, "out of memory"); return CURLE_OUT_OF_MEMORY; }
        list = next;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)length);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_seconds);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, timeout_seconds);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, berth_curl_discard);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
    CURLcode code = curl_easy_perform(curl);
    if (code == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    } else if (error[0] == 0) {
        strncpy(error, curl_easy_strerror(code), CURL_ERROR_SIZE - 1);
        error[CURL_ERROR_SIZE - 1] = 0;
    }
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    return (int)code;
}
#endif
