/*
 * http_access.c -- request ids, the access log line and the request
 * metrics of the HTTP front (see http_access.h).
 */
#include "http_access.h"

#include "segmentd/log.h"
#include "segmentd/metrics.h"
#include "segmentd/timeutil.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static uint64_t id_seed;
static _Atomic uint64_t id_seq;

void http_access_init(void) {
  uint64_t s = 0;
  if (getrandom(&s, sizeof(s), 0) != (ssize_t)sizeof(s))
    s = (uint64_t)sd_mono_ns() ^ ((uint64_t)getpid() << 32);
  id_seed = s;
}

/* splitmix64's finaliser: a bijection, so distinct counters give distinct
 * ids. */
static uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

int http_request_id_valid(const char *id) {
  static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                           "abcdefghijklmnopqrstuvwxyz0123456789._:-";
  size_t n = strlen(id);
  return n >= 1 && n <= SD_REQUEST_ID_MAX && strspn(id, ok) == n;
}

/* 16 lower-case hex digits of v at p (no printf: once per request). */
static void put_hex64(char *p, uint64_t v) {
  for (int i = 15; i >= 0; i--, v >>= 4) p[i] = "0123456789abcdef"[v & 15];
}

void http_access_begin(http_access *a, const char *method, const char *url,
                       const char *client_id) {
  a->start_ns = sd_mono_ns();
  size_t m = strnlen(method, sizeof(a->method) - 1);
  memcpy(a->method, method, m);
  a->method[m] = 0;
  a->path = strndup(url, SD_ACCESS_PATH_MAX);
  a->route = -1;
  a->status = 0;
  a->bytes = 0;
  if (client_id && http_request_id_valid(client_id)) {
    memcpy(a->id, client_id, strlen(client_id) + 1);
    return;
  }
  uint64_t n = atomic_fetch_add_explicit(&id_seq, 1, memory_order_relaxed);
  put_hex64(a->id, mix(~id_seed));
  put_hex64(a->id + 16, mix(id_seed + (n + 1) * 0x9e3779b97f4a7c15ULL));
  a->id[32] = 0;
}

/* A streamed body under a counter of the bytes it yields. */
typedef struct {
  sd_stream_fn fn;
  void *cls;
  void (*free_fn)(void *cls);
  uint64_t *bytes; /* the request's counter: read before the request ends */
} counted_stream;

static ssize_t counted_read(void *cls, uint64_t pos, char *buf, size_t max) {
  counted_stream *c = cls;
  ssize_t n = c->fn(c->cls, pos, buf, max);
  if (n > 0) *c->bytes += (uint64_t)n;
  return n;
}

static void counted_free(void *cls) {
  counted_stream *c = cls;
  if (c->free_fn) c->free_fn(c->cls);
  free(c);
}

void http_access_reply(http_access *a, sd_reply *rep, uint64_t body_len) {
  a->status = rep->status;
  if (!rep->stream) {
    a->bytes = strcmp(a->method, "HEAD") ? body_len : 0;
    return;
  }
  counted_stream *c = malloc(sizeof(*c));
  if (!c) return; /* served uncounted: the line says 0 bytes */
  *c = (counted_stream){rep->stream, rep->stream_cls, rep->stream_free,
                        &a->bytes};
  rep->stream = counted_read;
  rep->stream_cls = c;
  rep->stream_free = counted_free;
}

void http_access_end(http_access *a, int aborted) {
  double ms = (double)(sd_mono_ns() - a->start_ns) / 1e6;
  sd_metrics_request(a->route, a->method, a->status, ms / 1e3);
  if (sd_log_enabled(SD_LOG_INFO)) {
    sd_log_field f[] = {
        SD_LF_STR("request_id", a->id),
        SD_LF_STR("method", a->method),
        SD_LF_STR("route", a->route >= 0 ? sd_route_pattern(a->route)
                                         : "unmatched"),
        SD_LF_STR("path", a->path ? a->path : ""),
        SD_LF_I64("status", a->status),
        SD_LF_NUM("duration_ms", ms),
        SD_LF_I64("bytes", (long long)a->bytes),
        SD_LF_STR("outcome", "the connection ended before the reply was sent"),
    };
    sd_log_fields(SD_LOG_INFO, "request", f, aborted ? 8 : 7);
  }
  free(a->path);
  a->path = NULL;
}
