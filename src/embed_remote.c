/*
 * embed_remote.c -- POSTs to an OpenAI-compatible embeddings endpoint
 * (one blocking call, or prepared requests for a multi handle), and a
 * strict check of the reply.
 *
 * The request goes through a libcurl easy handle (no signals, a connect and
 * a whole-request timeout, http/https only, no redirects). The reply body is
 * collected up to SD_REMOTE_MAX_BODY bytes and parsed with jansson; every
 * item must carry a unique in-range "index" and exactly dim numbers that fit
 * a finite float, and the rows are written to out by that index. The API key
 * only ever lives in the request header list, which is wiped before it is
 * freed; status texts never contain it.
 */
#include "segmentd/embed_remote.h"

#include <curl/curl.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segmentd/err.h"

#define REMOTE_SUFFIX "/embeddings"
#define REMOTE_PATH "/v1/embeddings"
#define REMOTE_AUTH "Authorization: Bearer "
#define REMOTE_MAX_RETRY_S 86400 /* Retry-After beyond a day is clamped */

typedef struct {
  char *p;
  size_t len, cap;
  int too_big, oom;
} remote_buf;

static pthread_once_t remote_once = PTHREAD_ONCE_INIT;
static CURLcode remote_init_rc = CURLE_FAILED_INIT;

static void remote_global_init(void) {
  remote_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Records a short reason in st and returns err. */
static int remote_fail(sd_remote_status *st, int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(st->err, sizeof st->err, fmt, ap);
  va_end(ap);
  return err;
}

/* ---- request ---- */

/* The endpoint for base: trailing '/' dropped, REMOTE_PATH appended unless
 * it already ends in REMOTE_SUFFIX. NULL on out of memory. */
static char *remote_url(const char *base) {
  size_t len = strlen(base), sl = strlen(REMOTE_SUFFIX);
  while (len > 0 && base[len - 1] == '/')
    len--;
  int has = len >= sl && memcmp(base + len - sl, REMOTE_SUFFIX, sl) == 0;
  const char *tail = has ? "" : REMOTE_PATH;
  char *u = malloc(len + strlen(tail) + 1);
  if (!u)
    return NULL;
  memcpy(u, base, len);
  strcpy(u + len, tail);
  return u;
}

/* {"model": model, "input": [texts...]} serialized into *body. */
static int remote_request(const sd_remote_conf *c, const char *const *texts,
                          const size_t *lens, size_t n, char **body) {
  json_t *root = json_object(), *in = json_array();
  json_t *model = json_string(c->model);
  int bad = !root || !in || !model;
  for (size_t i = 0; i < n && !bad; i++) {
    json_t *s = lens ? json_stringn(texts[i], lens[i]) : json_string(texts[i]);
    bad = !s || json_array_append_new(in, s) != 0;
  }
  if (!bad) {
    bad = json_object_set_new(root, "model", model) != 0;
    model = NULL;
    bad = bad || json_object_set(root, "input", in) != 0;
    if (c->base64)
      bad = bad || json_object_set_new(root, "encoding_format",
                                       json_string("base64")) != 0;
  }
  *body = bad ? NULL : json_dumps(root, JSON_COMPACT);
  json_decref(model);
  json_decref(in);
  json_decref(root);
  if (bad)
    return SD_EINVAL; /* most likely a text or model that is not UTF-8 */
  return *body ? 0 : SD_ENOMEM;
}

static size_t remote_write(char *data, size_t size, size_t nmemb, void *ud) {
  remote_buf *b = ud;
  size_t n = size * nmemb; /* libcurl passes size == 1 */
  if (n > SD_REMOTE_MAX_BODY - b->len) {
    b->too_big = 1;
    return 0;
  }
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return 0;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
  b->p[b->len] = '\0';
  return n;
}

/* Content-Type, no Expect: 100-continue, and the bearer token if any. */
static struct curl_slist *remote_headers(const sd_remote_conf *c) {
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  struct curl_slist *t = h ? curl_slist_append(h, "Expect:") : NULL;
  if (t && c->api_key) {
    size_t kl = strlen(c->api_key), al = strlen(REMOTE_AUTH);
    char *auth = malloc(al + kl + 1);
    if (auth) {
      memcpy(auth, REMOTE_AUTH, al);
      memcpy(auth + al, c->api_key, kl + 1);
      t = curl_slist_append(h, auth);
      memset(auth, 0, al + kl);
      free(auth);
    } else {
      t = NULL;
    }
  }
  if (!t) {
    curl_slist_free_all(h);
    return NULL;
  }
  return h;
}

/* Frees the header list after wiping the bearer token. */
static void remote_headers_free(struct curl_slist *h) {
  for (struct curl_slist *p = h; p; p = p->next)
    if (strncmp(p->data, REMOTE_AUTH, strlen(REMOTE_AUTH)) == 0)
      memset(p->data, 0, strlen(p->data));
  curl_slist_free_all(h);
}

static int remote_setopts(CURL *h, const sd_remote_conf *c, const char *url,
                          const char *body, struct curl_slist *hdr,
                          remote_buf *b) {
  long tmo = c->timeout_ms > 0 ? c->timeout_ms : SD_REMOTE_DEFAULT_TIMEOUT_MS;
  CURLcode rc = curl_easy_setopt(h, CURLOPT_URL, url);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  if (rc != CURLE_OK)
    return SD_EINVAL;
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, tmo);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, tmo);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, remote_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
  return 0;
}

/* The outcome of a finished transfer; 0 only for an HTTP 200 whose body
 * is in b. */
static int remote_result(CURL *h, CURLcode cc, remote_buf *b,
                         sd_remote_status *st) {
  long code = 0;
  curl_off_t ra = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  st->http_status = (int)code;
  if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
    st->retry_after_ms = 1000L * (long)(ra < REMOTE_MAX_RETRY_S ? ra
                                                                : REMOTE_MAX_RETRY_S);
  if (b->too_big)
    return remote_fail(st, SD_ETOOLARGE, "reply over %u bytes",
                       (unsigned)SD_REMOTE_MAX_BODY);
  if (b->oom)
    return remote_fail(st, SD_ENOMEM, "out of memory");
  if (cc != CURLE_OK)
    return remote_fail(st, SD_ENOTREADY, "%s", curl_easy_strerror(cc));
  if (code == 429 || code == 503)
    return remote_fail(st, SD_EBUSY, "embedder busy (HTTP %ld)", code);
  if (code != 200)
    return remote_fail(st, SD_EINTERNAL, "embedder HTTP %ld", code);
  return 0;
}

/* ---- reply ---- */

/* The value of one base64 character, or -1. */
static int b64_value(unsigned char ch) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9') return ch - '0' + 52;
  return ch == '+' ? 62 : ch == '/' ? 63 : -1;
}

/* Standard base64 (padding optional) into out; the decoded length, or -1
 * when s is not base64 or decodes to more than cap bytes. */
static long b64_decode(const char *s, size_t len, unsigned char *out,
                       size_t cap) {
  while (len > 0 && s[len - 1] == '=') len--;
  size_t n = 0;
  uint32_t acc = 0;
  for (size_t k = 0; k < len; k++) {
    int v = b64_value((unsigned char)s[k]);
    if (v < 0) return -1;
    acc = (acc << 6) | (uint32_t)v;
    if (k % 4 == 3 || k + 1 == len) {
      int have = (int)(k % 4) + 1; /* sextets in this group */
      if (have == 1) return -1;
      acc <<= 6 * (4 - have);
      for (int b = 0; b < have - 1; b++) {
        if (n == cap) return -1;
        out[n++] = (unsigned char)(acc >> (16 - 8 * b));
      }
      acc = 0;
    }
  }
  return (long)n;
}

/* A base64 embedding: dim little-endian float32 values, all finite. */
static int remote_b64_row(const json_t *emb, int dim, float *row, json_int_t i,
                          sd_remote_status *st) {
  size_t want = sizeof(float) * (size_t)dim;
  long n = b64_decode(json_string_value(emb), json_string_length(emb),
                      (unsigned char *)row, want);
  if (n != (long)want)
    return remote_fail(st, SD_EINTERNAL, "embedding %lld: base64 of %ld "
                       "bytes, want %zu", (long long)i, n, want);
  for (int j = 0; j < dim; j++) { /* little-endian bytes to this machine's */
    const unsigned char *p = (const unsigned char *)(row + j);
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    memcpy(row + j, &u, sizeof(u));
    if (!isfinite(row[j]))
      return remote_fail(st, SD_EINTERNAL,
                         "embedding %lld: value %d not a finite float",
                         (long long)i, j);
  }
  return 0;
}

/* One {"embedding": [...] or "<base64>", "index": i} into row i of out. */
static int remote_item(const json_t *item, const sd_remote_conf *c, size_t n,
                       unsigned char *seen, float *out, sd_remote_status *st) {
  json_t *ix = json_object_get(item, "index");
  json_t *emb = json_object_get(item, "embedding");
  if (!json_is_integer(ix))
    return remote_fail(st, SD_EINTERNAL, "item without an integer index");
  json_int_t i = json_integer_value(ix);
  if (i < 0 || (uint64_t)i >= n)
    return remote_fail(st, SD_EINTERNAL, "index %lld out of range",
                       (long long)i);
  if (seen[i])
    return remote_fail(st, SD_EINTERNAL, "duplicate index %lld", (long long)i);
  seen[i] = 1;
  float *row = out + (size_t)i * (size_t)c->dim;
  if (json_is_string(emb))
    return remote_b64_row(emb, c->dim, row, i, st);
  if (!json_is_array(emb) || json_array_size(emb) != (size_t)c->dim)
    return remote_fail(st, SD_EINTERNAL, "embedding %lld: %zu values, want %d",
                       (long long)i, json_array_size(emb), c->dim);
  for (size_t j = 0; j < (size_t)c->dim; j++) {
    json_t *v = json_array_get(emb, j);
    double d = json_number_value(v);
    if (!json_is_number(v) || !(fabs(d) <= FLT_MAX))
      return remote_fail(st, SD_EINTERNAL,
                         "embedding %lld: value %zu not a finite float",
                         (long long)i, j);
    row[j] = (float)d;
  }
  return 0;
}

static int remote_parse(const remote_buf *b, const sd_remote_conf *c,
                        size_t n, float *out, sd_remote_status *st) {
  json_error_t je;
  json_t *root = json_loadb(b->p ? b->p : "", b->len, 0, &je);
  if (!root)
    return remote_fail(st, SD_EINTERNAL, "reply is not JSON");
  json_t *data = json_object_get(root, "data");
  unsigned char *seen = NULL;
  int rc = 0;
  if (!json_is_array(data))
    rc = remote_fail(st, SD_EINTERNAL, "reply has no data array");
  else if (json_array_size(data) != n)
    rc = remote_fail(st, SD_EINTERNAL, "%zu embeddings for %zu inputs",
                     json_array_size(data), n);
  else if (!(seen = calloc(n, 1)))
    rc = remote_fail(st, SD_ENOMEM, "out of memory");
  for (size_t k = 0; rc == 0 && k < n; k++) {
    json_t *item = json_array_get(data, k);
    rc = json_is_object(item)
             ? remote_item(item, c, n, seen, out, st)
             : remote_fail(st, SD_EINTERNAL, "data[%zu] is not an object", k);
  }
  free(seen);
  json_decref(root);
  return rc;
}

/* ---- requests ---- */

struct sd_remote_req {
  CURL *h;
  char *url, *body;
  struct curl_slist *hdr;
  remote_buf b;
  size_t n;
  sd_remote_conf conf; /* strings borrowed from the caller's conf */
};

void sd_remote_req_free(sd_remote_req *r) {
  if (!r)
    return;
  if (r->h)
    curl_easy_cleanup(r->h);
  remote_headers_free(r->hdr);
  free(r->url);
  free(r->body);
  free(r->b.p);
  free(r);
}

static int remote_conf_ok(const sd_remote_conf *c) {
  return c && c->url && c->model && c->dim > 0 && c->dim <= SD_REMOTE_MAX_DIM;
}

int sd_remote_req_new(const sd_remote_conf *c, const char *const *texts,
                      const size_t *lens, size_t n, sd_remote_req **out,
                      sd_remote_status *st) {
  *out = NULL;
  memset(st, 0, sizeof *st);
  if (!remote_conf_ok(c) || n == 0 || !texts)
    return remote_fail(st, SD_EINVAL, "bad embedder configuration");
  if (pthread_once(&remote_once, remote_global_init) != 0 ||
      remote_init_rc != CURLE_OK)
    return remote_fail(st, SD_EINTERNAL, "libcurl init failed");
  sd_remote_req *r = calloc(1, sizeof *r);
  if (!r)
    return remote_fail(st, SD_ENOMEM, "out of memory");
  r->n = n;
  r->conf = *c;
  int rc = remote_request(c, texts, lens, n, &r->body);
  if (rc != 0) {
    sd_remote_req_free(r);
    return remote_fail(st, rc, rc == SD_EINVAL ? "text is not valid UTF-8"
                                               : "out of memory");
  }
  r->url = remote_url(c->url);
  r->hdr = remote_headers(c);
  r->h = r->url && r->hdr ? curl_easy_init() : NULL;
  if (!r->h)
    rc = remote_fail(st, SD_ENOMEM, "out of memory");
  else if ((rc = remote_setopts(r->h, c, r->url, r->body, r->hdr, &r->b)) != 0)
    remote_fail(st, rc, "unusable embedder URL");
  if (rc != 0) {
    sd_remote_req_free(r);
    return rc;
  }
  curl_easy_setopt(r->h, CURLOPT_PRIVATE, r);
  *out = r;
  return 0;
}

void *sd_remote_req_handle(sd_remote_req *r) { return r->h; }

size_t sd_remote_req_count(const sd_remote_req *r) { return r->n; }

int sd_remote_req_finish(sd_remote_req *r, int curl_result, float *out,
                         sd_remote_status *st) {
  memset(st, 0, sizeof *st);
  int rc = remote_result(r->h, (CURLcode)curl_result, &r->b, st);
  if (rc == 0)
    rc = remote_parse(&r->b, &r->conf, r->n, out, st);
  return rc;
}

int sd_remote_embed(const sd_remote_conf *c, const char *const *texts,
                    const size_t *lens, size_t n, float *out,
                    sd_remote_status *st) {
  sd_remote_status local;
  if (!st)
    st = &local;
  memset(st, 0, sizeof *st);
  if (!remote_conf_ok(c) || (n > 0 && (!texts || !out)))
    return remote_fail(st, SD_EINVAL, "bad embedder configuration");
  if (n == 0)
    return 0;
  sd_remote_req *r;
  int rc = sd_remote_req_new(c, texts, lens, n, &r, st);
  if (rc != 0)
    return rc;
  CURLcode cc = curl_easy_perform(r->h);
  rc = sd_remote_req_finish(r, (int)cc, out, st);
  sd_remote_req_free(r);
  return rc;
}
