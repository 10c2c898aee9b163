/*
 * embed_remote.h -- client side of the OpenAI-compatible embeddings protocol.
 *
 * One blocking call turns a batch of texts into float32 vectors by a single
 * POST of {"model": ..., "input": [texts...]} to the remote embedder and a
 * strict check of its {"data": [{"embedding": [...], "index": i}, ...]}
 * reply. sd_remote_embed() is the blocking form; the sd_remote_req_*
 * functions split one request into prepare / transfer / finish so a caller
 * can keep several in flight on a libcurl multi handle (embed_queue.c).
 *
 * URL rule (API.md, SEGMENTD_EMBED_URL): trailing slashes are dropped, then
 * "/v1/embeddings" is appended unless the URL already ends in "/embeddings".
 *
 * Thread safety: calls share no state (libcurl's global init runs once,
 * under pthread_once); each call uses its own easy handle.
 */
#ifndef SEGMENTD_EMBED_REMOTE_H
#define SEGMENTD_EMBED_REMOTE_H

#include <stddef.h>

#define SD_REMOTE_MAX_BODY (64u << 20) /* cap on the response body, bytes */
#define SD_REMOTE_MAX_DIM 65536        /* sanity cap on dim */
#define SD_REMOTE_DEFAULT_TIMEOUT_MS 30000

typedef struct {
  const char *url;     /* base URL or full ".../embeddings" endpoint */
  const char *model;   /* sent as "model" */
  const char *api_key; /* NULL: no auth; else "Authorization: Bearer <key>",
                          never logged nor put in status text */
  int dim;             /* expected embedding dimension, 1..SD_REMOTE_MAX_DIM */
  int timeout_ms;      /* whole-request timeout; <= 0: the default */
  int base64;          /* ask for "encoding_format": "base64" (float32
                          little-endian, far cheaper to parse than numbers) */
} sd_remote_conf;

typedef struct {
  int http_status;     /* 0 when no HTTP response arrived */
  long retry_after_ms; /* Retry-After (seconds or HTTP-date), 0 if absent */
  char err[128];       /* short reason on failure, "" on success */
} sd_remote_status;

/*
 * Embeds texts[0..n) (lens[i] bytes each, UTF-8; lens NULL: NUL-terminated)
 * into out (n x dim, row i for texts[i], placed by the reply's "index").
 * st may be NULL. Returns 0, or:
 *   SD_EINVAL     bad conf or a text that is not valid UTF-8 (nothing sent)
 *   SD_ENOTREADY  connection failure or timeout
 *   SD_EBUSY      HTTP 429 or 503: back off (see st->retry_after_ms)
 *   SD_EINTERNAL  any other HTTP status, or a reply that is not JSON or
 *                 breaks the protocol: count mismatch, missing, duplicate or
 *                 out-of-range index, wrong dimension, a non-number or a
 *                 value that is not a finite float
 *   SD_ETOOLARGE  reply body over SD_REMOTE_MAX_BODY
 *   SD_ENOMEM     out of memory
 * On failure out may be partly written and must be treated as invalid.
 * n == 0 returns 0 without a request.
 */
int sd_remote_embed(const sd_remote_conf *c, const char *const *texts,
                    const size_t *lens, size_t n, float *out,
                    sd_remote_status *st);

/*
 * One prepared request. sd_remote_req_new() builds the body and an easy
 * handle (its CURLOPT_PRIVATE points at the request); the caller runs the
 * transfer (curl_multi_add_handle(sd_remote_req_handle(r)) or
 * curl_easy_perform), then sd_remote_req_finish() checks the outcome and
 * parses the reply into out (count x dim floats) with the same return
 * codes as sd_remote_embed(). The request borrows the strings of c: they
 * must outlive it. The caller frees it with sd_remote_req_free() (after
 * removing the handle from any multi handle). n must be >= 1.
 */
typedef struct sd_remote_req sd_remote_req;

int sd_remote_req_new(const sd_remote_conf *c, const char *const *texts,
                      const size_t *lens, size_t n, sd_remote_req **out,
                      sd_remote_status *st);
void *sd_remote_req_handle(sd_remote_req *r); /* the CURL easy handle */
size_t sd_remote_req_count(const sd_remote_req *r);
/* curl_result: the CURLcode the transfer ended with. */
int sd_remote_req_finish(sd_remote_req *r, int curl_result, float *out,
                         sd_remote_status *st);
void sd_remote_req_free(sd_remote_req *r);

#endif
