/*
 * cli_http.c -- the HTTP client of the client subcommands (cli.h): one
 * libcurl easy handle per client (keep-alive), JSON requests with an
 * optional bearer key, and retries.
 *
 * Retry policy: 429 and 503 mean the server took nothing (a full ingest
 * queue, not ready yet, shutting down), so any request is sent again,
 * after Retry-After seconds when the answer says so (at most 60), else
 * after a backoff doubling from 0.5 s to 30 s. A connection that could not
 * be made is retried the same way; one lost after the request went out is
 * retried only for idempotent requests (ingest is: ids deduplicate).
 */
#include "segmentd/cli.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_AFTER_MAX_S 60
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 30000

struct sd_cli_client {
  CURL *h;
  struct curl_slist *hdr;
  const sd_cli_http_opts *o;
  const char *cmd;
  char base[2048];
  char key[4096]; /* wiped at free */
};

/* The key: the flag or variable, else the first line of the key file. */
static int client_key(sd_cli_client *c, char *msg, size_t cap) {
  if (c->o->api_key && *c->o->api_key) {
    snprintf(c->key, sizeof(c->key), "%s", c->o->api_key);
    return 0;
  }
  if (!c->o->api_key_file) return 0;
  FILE *f = fopen(c->o->api_key_file, "r");
  if (!f || !fgets(c->key, sizeof(c->key), f)) {
    snprintf(msg, cap, "cannot read the API key file %s", c->o->api_key_file);
    if (f) fclose(f);
    return -1;
  }
  fclose(f);
  c->key[strcspn(c->key, "\r\n")] = 0;
  return 0;
}

int sd_cli_client_new(const sd_cli_http_opts *o, const char *cmd,
                      sd_cli_client **out, char *msg, size_t cap) {
  *out = NULL;
  if (strncmp(o->url, "http://", 7) && strncmp(o->url, "https://", 8)) {
    snprintf(msg, cap, "--url must start with http:// or https:// (got \"%s\")",
             o->url);
    return SD_EXIT_USAGE;
  }
  sd_cli_client *c = calloc(1, sizeof(*c));
  if (!c) return snprintf(msg, cap, "out of memory"), SD_EXIT_FAIL;
  c->o = o;
  c->cmd = cmd;
  snprintf(c->base, sizeof(c->base), "%s", o->url);
  size_t n = strlen(c->base);
  while (n && c->base[n - 1] == '/') c->base[--n] = 0;
  if (client_key(c, msg, cap) < 0) {
    free(c);
    return SD_EXIT_FAIL;
  }
  char auth[4200];
  c->hdr = curl_slist_append(NULL, "Content-Type: application/json");
  c->hdr = curl_slist_append(c->hdr, "Accept: application/json, application/x-ndjson");
  if (c->key[0]) {
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->key);
    c->hdr = curl_slist_append(c->hdr, auth);
    memset(auth, 0, sizeof(auth));
  }
  c->h = curl_easy_init();
  if (!c->h || !c->hdr) {
    sd_cli_client_free(c);
    return snprintf(msg, cap, "cannot set up libcurl"), SD_EXIT_FAIL;
  }
  *out = c;
  return 0;
}

void sd_cli_client_free(sd_cli_client *c) {
  if (!c) return;
  if (c->h) curl_easy_cleanup(c->h);
  for (struct curl_slist *s = c->hdr; s; s = s->next)
    memset(s->data, 0, strlen(s->data)); /* the key is in one of them */
  curl_slist_free_all(c->hdr);
  memset(c->key, 0, sizeof(c->key));
  free(c);
}

void sd_cli_resp_free(sd_cli_resp *r) {
  if (!r) return;
  free(r->body);
  r->body = NULL;
  r->len = 0;
}

typedef struct {
  CURL *h;
  sd_cli_resp *r;
  size_t cap;
  int (*write)(const char *, size_t, void *);
  void *ud;
  long status;   /* known once the first byte comes */
  int started;   /* bytes went to write() */
  int aborted;
} sink;

static size_t sink_write(char *p, size_t sz, size_t n, void *ud) {
  sink *s = ud;
  size_t len = sz * n;
  if (s->write && !s->status)
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
  if (s->write && s->status == 200) {
    s->started = 1;
    if (s->write(p, len, s->ud)) {
      s->aborted = 1;
      return 0;
    }
    return len;
  }
  return sd_cli_buf_add(&s->r->body, &s->r->len, &s->cap, p, len) < 0 ? 0
                                                                      : len;
}

/* One attempt. */
static CURLcode attempt(sd_cli_client *c, const char *method, const char *path,
                        const char *body, size_t len, sink *s, long *retry_s) {
  char url[4096];
  snprintf(url, sizeof(url), "%s%s", c->base, path);
  CURL *h = c->h;
  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->hdr);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  if (s->write) { /* a stream may run long: only a stalled one fails */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->o->timeout_s);
  } else {
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->o->timeout_s);
  }
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_USERAGENT, "segmentd-cli/" SD_VERSION);
  if (body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  }
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
  char err[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
  s->status = 0;
  s->h = h;
  CURLcode cc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &s->r->status);
  curl_off_t ra = 0;
  *retry_s = curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0
                 ? (long)(ra < RETRY_AFTER_MAX_S ? ra : RETRY_AFTER_MAX_S) : 0;
  if (cc != CURLE_OK)
    snprintf(s->r->error, sizeof(s->r->error), "%.128s: %.120s", url,
             err[0] ? err : curl_easy_strerror(cc));
  return cc;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* Should this outcome be retried? */
static int retryable(CURLcode cc, long status, int idempotent, int started) {
  if (started) return 0;
  if (cc == CURLE_OK) return status == 429 || status == 503;
  return idempotent || cc == CURLE_COULDNT_CONNECT ||
         cc == CURLE_COULDNT_RESOLVE_HOST;
}

static int request(sd_cli_client *c, const char *method, const char *path,
                   const char *body, size_t len, int idempotent, sink *s) {
  long backoff = BACKOFF_FIRST_MS;
  for (long tries = 0;; tries++) {
    long retry_s = 0;
    sd_cli_resp_free(s->r);
    s->cap = 0;
    s->r->status = 0;
    s->r->error[0] = 0;
    CURLcode cc = attempt(c, method, path, body, len, s, &retry_s);
    if (s->aborted) return -1;
    if (!retryable(cc, s->r->status, idempotent, s->started) ||
        tries >= c->o->retries)
      return cc == CURLE_OK && (!s->write || s->r->status == 200) ? 0 : -1;
    long wait = retry_s ? retry_s * 1000 : backoff;
    char why[300];
    sd_cli_describe(s->r, why, sizeof(why));
    fprintf(stderr, "segmentd %s: %s; retrying in %.1f s (%ld of %ld)\n",
            c->cmd, why, wait / 1000.0, tries + 1, c->o->retries);
    sleep_ms(wait);
    backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
  }
}

int sd_cli_call(sd_cli_client *c, const char *method, const char *path,
                const char *body, size_t len, int idempotent, sd_cli_resp *r) {
  memset(r, 0, sizeof(*r));
  sink s = {.r = r};
  int rc = request(c, method, path, body, len, idempotent, &s);
  if (!r->body) sd_cli_buf_add(&r->body, &r->len, &s.cap, "", 0);
  return rc < 0 && r->status == 0 ? -1 : 0;
}

int sd_cli_stream(sd_cli_client *c, const char *path,
                  int (*write)(const char *data, size_t n, void *ud), void *ud,
                  sd_cli_resp *r) {
  memset(r, 0, sizeof(*r));
  sink s = {.r = r, .write = write, .ud = ud};
  int rc = request(c, "GET", path, NULL, 0, 1, &s);
  if (!r->body) sd_cli_buf_add(&r->body, &r->len, &s.cap, "", 0);
  if (s.aborted && !r->error[0])
    snprintf(r->error, sizeof(r->error), "output failed");
  return rc;
}

void sd_cli_describe(const sd_cli_resp *r, char *out, size_t cap) {
  if (r->status == 0) {
    snprintf(out, cap, "%s", r->error[0] ? r->error : "no answer");
    return;
  }
  json_t *b = r->body ? json_loads(r->body, 0, NULL) : NULL;
  json_t *e = json_object_get(b, "error");
  const char *code = json_string_value(json_object_get(e, "code"));
  const char *m = json_string_value(json_object_get(e, "message"));
  if (code)
    snprintf(out, cap, "HTTP %ld %s: %s", r->status, code, m ? m : "");
  else
    snprintf(out, cap, "HTTP %ld", r->status);
  if (r->status == 401 || r->status == 403) {
    size_t n = strlen(out);
    snprintf(out + n, cap - n, " (set the key with SEGMENTD_API_KEY, "
             "--api-key-file or --api-key)");
  }
  json_decref(b);
}
