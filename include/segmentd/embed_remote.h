/*
 * embed_remote.h -- client side of the OpenAI-compatible embeddings protocol.
 *
 * One blocking call turns a batch of texts into float32 vectors by a single
 * POST of {"model": ..., "input": [texts...]} to the remote embedder and a
 * strict check of its {"data": [{"embedding": [...], "index": i}, ...]}
 * reply. Not wired into the server yet.
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

#endif
