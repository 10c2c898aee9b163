/*
 * harness_receiver.c -- the in-process webhook receiver of the integration
 * tests (harness_receiver.h): libmicrohttpd, one thread per connection,
 * bound to 127.0.0.1 on an ephemeral port, every request recorded under
 * one mutex and answered by the script; plus a self-contained SHA-256 /
 * HMAC-SHA256 (FIPS 180-4, RFC 2104) for checking signatures.
 */
#include "harness_receiver.h"

#include "harness.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#define RCV_MAX_BODY ((size_t)16 << 20)

enum { ANS_OK, ANS_500, ANS_429, ANS_CLOSE, ANS_503 };

struct rcv {
  struct MHD_Daemon *d;
  int port;
  pthread_mutex_t mu; /* guards everything below */
  rcv_req *recs;
  long n, cap;
  int refuse_left, refuse_done, unavailable;
  rcv_counts counts;
};

/* One connection's request being read. */
typedef struct {
  char *p;
  size_t len;
  int too_big;
} rcv_upload;

/* ---- records ---- */

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum MHD_Result header_cb(void *cls, enum MHD_ValueKind kind,
                                 const char *key, const char *value) {
  (void)kind;
  json_t *h = cls;
  char name[128];
  size_t i = 0;
  for (; key && key[i] && i + 1 < sizeof name; i++)
    name[i] = (char)tolower((unsigned char)key[i]);
  name[i] = '\0';
  json_object_set_new(h, name, json_string(value ? value : ""));
  return MHD_YES;
}

/* Records the request and decides its answer (under the mutex). */
static int record(rcv *r, struct MHD_Connection *conn, const char *url,
                  const char *method, rcv_upload *u) {
  rcv_req q;
  memset(&q, 0, sizeof q);
  snprintf(q.method, sizeof q.method, "%s", method);
  snprintf(q.path, sizeof q.path, "%s", url);
  q.headers = json_object();
  if (q.headers)
    MHD_get_connection_values(conn, MHD_HEADER_KIND, header_cb, q.headers);
  q.body = u->p ? u->p : strdup("");
  q.len = u->p ? u->len : 0;
  u->p = NULL;
  q.t_mono = now_s();
  q.t_wall_ms = wall_ms();

  pthread_mutex_lock(&r->mu);
  int ans = ANS_OK;
  if (r->unavailable) {
    ans = ANS_503;
  } else if (r->refuse_left > 0) {
    static const int cycle[3] = {ANS_500, ANS_429, ANS_CLOSE};
    ans = cycle[r->refuse_done % 3];
    r->refuse_left--;
    r->refuse_done++;
  }
  q.status = ans == ANS_OK ? 200 : ans == ANS_500 ? 500 : ans == ANS_429 ? 429
             : ans == ANS_503 ? 503 : 0;
  r->counts.requests++;
  r->counts.accepted += ans == ANS_OK;
  r->counts.refused_500 += ans == ANS_500;
  r->counts.refused_429 += ans == ANS_429;
  r->counts.refused_close += ans == ANS_CLOSE;
  r->counts.refused_503 += ans == ANS_503;
  if (r->n == r->cap) {
    long cap = r->cap ? r->cap * 2 : 256;
    rcv_req *p = realloc(r->recs, sizeof(*p) * (size_t)cap);
    if (p) {
      r->recs = p;
      r->cap = cap;
    }
  }
  if (r->n < r->cap) {
    q.seq = r->n;
    r->recs[r->n++] = q;
  } else { /* out of memory: answered, not kept */
    json_decref(q.headers);
    free(q.body);
  }
  pthread_mutex_unlock(&r->mu);
  return ans;
}

static void req_free(rcv_req *q) {
  json_decref(q->headers);
  free(q->body);
  q->headers = NULL;
  q->body = NULL;
}

/* ---- the daemon ---- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
                             const char *retry_after) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT);
  if (!resp)
    return MHD_NO;
  MHD_add_response_header(resp, "Content-Type", "application/json");
  MHD_add_response_header(resp, "Connection", "close");
  if (retry_after)
    MHD_add_response_header(resp, "Retry-After", retry_after);
  enum MHD_Result ret = MHD_queue_response(conn, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *data,
                                  size_t *size, void **con_cls) {
  (void)version;
  rcv *r = cls;
  rcv_upload *u = *con_cls;
  if (!u) {
    *con_cls = calloc(1, sizeof(rcv_upload));
    return *con_cls ? MHD_YES : MHD_NO;
  }
  if (*size) {
    if (!u->too_big && u->len + *size <= RCV_MAX_BODY) {
      char *p = realloc(u->p, u->len + *size + 1);
      if (!p)
        return MHD_NO;
      memcpy(p + u->len, data, *size);
      u->p = p;
      u->len += *size;
      u->p[u->len] = '\0';
    } else {
      u->too_big = 1;
    }
    *size = 0;
    return MHD_YES;
  }
  if (u->too_big)
    return reply(conn, 413, NULL);
  switch (record(r, conn, url, method, u)) {
  case ANS_500:
    return reply(conn, 500, NULL);
  case ANS_429:
    return reply(conn, 429, "1");
  case ANS_503:
    return reply(conn, 503, "1");
  case ANS_CLOSE:
    return MHD_NO; /* the connection is closed without an answer */
  default:
    return reply(conn, 200, NULL);
  }
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)conn;
  (void)toe;
  rcv_upload *u = *con_cls;
  if (u)
    free(u->p);
  free(u);
  *con_cls = NULL;
}

rcv *rcv_start(void) {
  rcv *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  pthread_mutex_init(&r->mu, NULL);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = 0;
  r->d = MHD_start_daemon(
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
      NULL, on_request, r, MHD_OPTION_SOCK_ADDR, &sa,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30, MHD_OPTION_END);
  const union MHD_DaemonInfo *di =
      r->d ? MHD_get_daemon_info(r->d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
  r->port = di ? di->port : 0;
  if (!r->d || r->port <= 0) {
    fprintf(stderr, "receiver: cannot start libmicrohttpd on 127.0.0.1\n");
    rcv_stop(r);
    return NULL;
  }
  return r;
}

void rcv_stop(rcv *r) {
  if (!r)
    return;
  if (r->d)
    MHD_stop_daemon(r->d);
  for (long i = 0; i < r->n; i++)
    req_free(&r->recs[i]);
  free(r->recs);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

int rcv_port(const rcv *r) { return r->port; }

void rcv_url(const rcv *r, const char *path, char *out, size_t cap) {
  snprintf(out, cap, "http://127.0.0.1:%d%s", r->port, path);
}

void rcv_refuse_next(rcv *r, int n) {
  pthread_mutex_lock(&r->mu);
  r->refuse_left = n > 0 ? n : 0;
  r->refuse_done = 0;
  pthread_mutex_unlock(&r->mu);
}

int rcv_refusals_left(rcv *r) {
  pthread_mutex_lock(&r->mu);
  int n = r->refuse_left;
  pthread_mutex_unlock(&r->mu);
  return n;
}

void rcv_set_unavailable(rcv *r, int on) {
  pthread_mutex_lock(&r->mu);
  r->unavailable = on != 0;
  pthread_mutex_unlock(&r->mu);
}

void rcv_get_counts(rcv *r, rcv_counts *out) {
  pthread_mutex_lock(&r->mu);
  *out = r->counts;
  pthread_mutex_unlock(&r->mu);
}

long rcv_copy(rcv *r, long from, rcv_req **out) {
  *out = NULL;
  if (from < 0)
    from = 0;
  pthread_mutex_lock(&r->mu);
  long n = r->n > from ? r->n - from : 0, k = 0;
  rcv_req *a = n > 0 ? calloc((size_t)n, sizeof *a) : NULL;
  int bad = n > 0 && !a;
  for (; !bad && k < n; k++) {
    const rcv_req *s = &r->recs[from + k];
    a[k] = *s;
    a[k].headers = json_deep_copy(s->headers);
    a[k].body = malloc(s->len + 1);
    if (a[k].body)
      memcpy(a[k].body, s->body, s->len + 1);
    bad = !a[k].headers || !a[k].body;
  }
  pthread_mutex_unlock(&r->mu);
  if (bad) {
    rcv_copy_free(a, k);
    return -1;
  }
  *out = a;
  return n;
}

void rcv_copy_free(rcv_req *reqs, long n) {
  for (long i = 0; reqs && i < n; i++)
    req_free(&reqs[i]);
  free(reqs);
}

const char *rcv_header(const rcv_req *q, const char *name) {
  char low[128];
  size_t i = 0;
  for (; name[i] && i + 1 < sizeof low; i++)
    low[i] = (char)tolower((unsigned char)name[i]);
  low[i] = '\0';
  return json_string_value(json_object_get(q->headers, low));
}

/* ---- SHA-256 and HMAC-SHA256 ---- */

typedef struct {
  uint32_t h[8];
  uint64_t bits;
  unsigned char buf[64];
  size_t used;
} sha256_ctx;

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha256_block(sha256_ctx *c, const unsigned char *p) {
  uint32_t w[64], v[8];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
           (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  memcpy(v, c->h, sizeof v);
  for (int i = 0; i < 64; i++) {
    uint32_t s1 = rotr(v[4], 6) ^ rotr(v[4], 11) ^ rotr(v[4], 25);
    uint32_t ch = (v[4] & v[5]) ^ (~v[4] & v[6]);
    uint32_t t1 = v[7] + s1 + ch + K256[i] + w[i];
    uint32_t s0 = rotr(v[0], 2) ^ rotr(v[0], 13) ^ rotr(v[0], 22);
    uint32_t mj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
    memmove(v + 1, v, sizeof(uint32_t) * 7);
    v[4] += t1;
    v[0] = t1 + s0 + mj;
  }
  for (int i = 0; i < 8; i++)
    c->h[i] += v[i];
}

static void sha256_init(sha256_ctx *c) {
  static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372,
                                 0xa54ff53a, 0x510e527f, 0x9b05688c,
                                 0x1f83d9ab, 0x5be0cd19};
  memcpy(c->h, iv, sizeof iv);
  c->bits = 0;
  c->used = 0;
}

static void sha256_update(sha256_ctx *c, const void *data, size_t len) {
  const unsigned char *p = data;
  c->bits += (uint64_t)len * 8;
  while (len > 0) {
    size_t take = 64 - c->used < len ? 64 - c->used : len;
    memcpy(c->buf + c->used, p, take);
    c->used += take;
    p += take;
    len -= take;
    if (c->used == 64) {
      sha256_block(c, c->buf);
      c->used = 0;
    }
  }
}

static void sha256_final(sha256_ctx *c, unsigned char out[32]) {
  uint64_t bits = c->bits;
  unsigned char pad = 0x80, zero = 0, len[8];
  sha256_update(c, &pad, 1);
  while (c->used != 56)
    sha256_update(c, &zero, 1);
  for (int i = 0; i < 8; i++)
    len[i] = (unsigned char)(bits >> (56 - 8 * i));
  sha256_update(c, len, 8);
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (unsigned char)(c->h[i] >> 24);
    out[4 * i + 1] = (unsigned char)(c->h[i] >> 16);
    out[4 * i + 2] = (unsigned char)(c->h[i] >> 8);
    out[4 * i + 3] = (unsigned char)c->h[i];
  }
}

/* HMAC over the concatenation of two parts (ts "." and body need no copy). */
static void hmac_sha256_2(const char *key, const void *m1, size_t l1,
                          const void *m2, size_t l2, unsigned char out[32]) {
  unsigned char k[64] = {0}, ipad[64], opad[64], inner[32];
  size_t klen = strlen(key);
  sha256_ctx c;
  if (klen > 64) {
    sha256_init(&c);
    sha256_update(&c, key, klen);
    sha256_final(&c, k);
  } else {
    memcpy(k, key, klen);
  }
  for (int i = 0; i < 64; i++) {
    ipad[i] = (unsigned char)(k[i] ^ 0x36);
    opad[i] = (unsigned char)(k[i] ^ 0x5c);
  }
  sha256_init(&c);
  sha256_update(&c, ipad, 64);
  sha256_update(&c, m1, l1);
  sha256_update(&c, m2, l2);
  sha256_final(&c, inner);
  sha256_init(&c);
  sha256_update(&c, opad, 64);
  sha256_update(&c, inner, 32);
  sha256_final(&c, out);
}

static void to_hex(const unsigned char *d, size_t n, char *out) {
  static const char hx[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hx[d[i] >> 4];
    out[2 * i + 1] = hx[d[i] & 15];
  }
  out[2 * n] = '\0';
}

void rcv_hmac_sha256_hex(const char *key, const void *msg, size_t len,
                         char out[65]) {
  unsigned char mac[32];
  hmac_sha256_2(key, msg, len, "", 0, mac);
  to_hex(mac, 32, out);
}

int rcv_signature_ok(const rcv_req *q, const char *secret) {
  const char *ts = rcv_header(q, "X-Segmentd-Timestamp");
  const char *sig = rcv_header(q, "X-Segmentd-Signature");
  if (!ts || !sig || strncmp(sig, "sha256=", 7) != 0)
    return 0;
  unsigned char mac[32];
  char hex[65];
  size_t tl = strlen(ts);
  char *head = malloc(tl + 2);
  if (!head)
    return 0;
  memcpy(head, ts, tl);
  head[tl] = '.';
  head[tl + 1] = '\0';
  hmac_sha256_2(secret, head, tl + 1, q->body, q->len, mac);
  free(head);
  to_hex(mac, 32, hex);
  return strcmp(sig + 7, hex) == 0;
}
