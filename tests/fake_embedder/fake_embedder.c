/*
 * fake_embedder.c -- a protocol-faithful fake of the OpenAI embeddings API
 * for segmentd's integration tests, with fault injection and statistics.
 *
 * Owns the standalone `fake_embedder` program:
 *   fake_embedder --port-file PATH [--listen 127.0.0.1:0] [--dim N (64)]
 *                 [--delay-ms N (0)] [--api-key KEY] [--track]
 * It binds an IPv4 address (an ephemeral loopback port by default), writes
 * the port to PATH (tmp file + rename), serves every connection on its own
 * thread (libmicrohttpd) and exits 0 on SIGTERM / SIGINT.
 *
 * Routes:
 *   POST /v1/embeddings, /embeddings  {"model", "input": str | [str...],
 *        "encoding_format": "float" | "base64"} -> the OpenAI list reply;
 *        vectors come from fake_vec.h (the harness computes the same ones).
 *   POST /_faults      {"mode", "count" | "rate" [+ "seed"], "retry_after",
 *                       "delay_ms"}: fault injection, see fe_faults().
 *   GET  /_stats       counters (and per-text counts with --track).
 *   POST /_stats/reset zeroes the counters.
 *   GET  /healthz      200.
 * The contract used by the tests is in tests/integration/harness_fake.h.
 */
#include "fake_vec.h"

#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define FE_MAX_BODY ((size_t)64 << 20)
#define FE_MAX_DIM 65536
#define FE_SLOW_DEFAULT_MS 3000L
#define FE_CONN_TIMEOUT_S 120u

/* ---- configuration and shared state ---- */

typedef struct {
  int dim;
  long delay_ms;
  const char *api_key;
  int track;
  const char *port_file;
  const char *listen;
} fe_conf;

typedef enum {
  FM_OK,
  FM_SLOW,
  FM_429,
  FM_503,
  FM_500,
  FM_MALFORMED,
  FM_WRONG_DIM,
  FM_NAN,
  FM_COUNT_MISMATCH,
  FM_DROP,
  FM_BAD_REQUEST,
  FM_POISON,
  FM_N
} fe_mode;

static const char *const fe_mode_names[FM_N] = {
    "ok",  "slow",      "429", "503",  "500",         "malformed",
    "wrong_dim", "nan", "count_mismatch", "drop", "bad_request", "poison"};

/* The armed fault: rate >= 0 picks per request, else count (-1: forever). */
typedef struct {
  fe_mode mode;
  long long count;
  double rate;
  uint64_t rng;
  long retry_after;
  long delay_ms;
} fe_fault;

typedef struct {
  long long requests, ok, faulted, bad, texts;
  long long inflight, max_inflight;
} fe_stats;

/* One text of the --track table (open addressing, linear probing). */
typedef struct {
  char *key;
  size_t len;
  long long count;
} fe_slot;

static fe_conf g_conf = {64, 0, NULL, 0, NULL, "127.0.0.1:0"};
static atomic_int g_stopping;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static fe_fault g_fault; /* guarded by g_mu, like everything below */
static fe_stats g_stats;
static fe_slot *g_tab;
static size_t g_tab_cap, g_tab_n;

/* One request in progress: its body and whether it counts as in flight. */
typedef struct {
  char *body;
  size_t len, cap;
  int is_emb, too_big;
} fe_req;

/* ---- small utilities ---- */

/* Sleeps ms milliseconds in short slices, returning early on shutdown. */
static void fe_sleep_ms(long ms) {
  while (ms > 0 && !atomic_load(&g_stopping)) {
    long step = ms < 20 ? ms : 20;
    struct timespec ts = {0, step * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    ms -= step;
  }
}

typedef struct {
  char *p;
  size_t len, cap;
  int oom;
} fe_buf;

static void fe_buf_reserve(fe_buf *b, size_t extra) {
  if (b->oom || b->len + extra + 1 <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + extra + 1)
    cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    b->oom = 1;
    return;
  }
  b->p = p;
  b->cap = cap;
}

static void fe_buf_add(fe_buf *b, const char *s, size_t n) {
  fe_buf_reserve(b, n);
  if (b->oom)
    return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void fe_buf_str(fe_buf *b, const char *s) { fe_buf_add(b, s, strlen(s)); }

static void fe_buf_printf(fe_buf *b, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof tmp) {
    b->oom = 1;
    return;
  }
  fe_buf_add(b, tmp, (size_t)n);
}

/* Appends the standard base64 encoding of data[0..n). */
static void fe_buf_base64(fe_buf *b, const unsigned char *data, size_t n) {
  static const char tbl[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)data[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)data[i + 1] << 8;
    if (i + 2 < n)
      v |= data[i + 2];
    char q[4] = {tbl[(v >> 18) & 63], tbl[(v >> 12) & 63],
                 i + 1 < n ? tbl[(v >> 6) & 63] : '=',
                 i + 2 < n ? tbl[v & 63] : '='};
    fe_buf_add(b, q, 4);
  }
}

/* ---- --track table ---- */

static uint64_t fe_hash(const char *s, size_t n) {
  uint64_t h = FAKE_VEC_FNV_OFFSET;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * FAKE_VEC_FNV_PRIME;
  return h;
}

/* The slot of key in tab (cap a power of two): its own or an empty one. */
static fe_slot *fe_tab_find(fe_slot *tab, size_t cap, const char *key,
                            size_t len) {
  size_t i = (size_t)fe_hash(key, len) & (cap - 1);
  while (tab[i].key &&
         (tab[i].len != len || memcmp(tab[i].key, key, len) != 0))
    i = (i + 1) & (cap - 1);
  return &tab[i];
}

static int fe_tab_grow(void) {
  size_t cap = g_tab_cap ? g_tab_cap * 2 : 1024;
  fe_slot *tab = calloc(cap, sizeof *tab);
  if (!tab)
    return -1;
  for (size_t i = 0; i < g_tab_cap; i++)
    if (g_tab[i].key)
      *fe_tab_find(tab, cap, g_tab[i].key, g_tab[i].len) = g_tab[i];
  free(g_tab);
  g_tab = tab;
  g_tab_cap = cap;
  return 0;
}

/* Counts one successful embedding of key (g_mu held). */
static void fe_tab_count(const char *key, size_t len) {
  if ((g_tab_n + 1) * 2 > g_tab_cap && fe_tab_grow() != 0)
    return;
  fe_slot *s = fe_tab_find(g_tab, g_tab_cap, key, len);
  if (!s->key) {
    s->key = malloc(len + 1);
    if (!s->key)
      return;
    memcpy(s->key, key, len);
    s->key[len] = '\0';
    s->len = len;
    g_tab_n++;
  }
  s->count++;
}

static void fe_tab_clear(void) {
  for (size_t i = 0; i < g_tab_cap; i++)
    free(g_tab[i].key);
  free(g_tab);
  g_tab = NULL;
  g_tab_cap = g_tab_n = 0;
}

/* ---- replies ---- */

/* Sends body (malloc'd, taken) as application/json. */
static enum MHD_Result fe_send(struct MHD_Connection *c, unsigned status,
                               char *body, size_t len, long retry_after) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  if (!r) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  if (retry_after >= 0) {
    char ra[32];
    snprintf(ra, sizeof ra, "%ld", retry_after);
    MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
  }
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

/* Sends j (stolen) as the body. */
static enum MHD_Result fe_send_json(struct MHD_Connection *c, unsigned status,
                                    json_t *j, long retry_after) {
  char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if (!s)
    return MHD_NO;
  return fe_send(c, status, s, strlen(s), retry_after);
}

/* An OpenAI-style error: {"error":{"message","type","param","code"}}. */
static enum MHD_Result fe_send_error(struct MHD_Connection *c, unsigned status,
                                     const char *type, const char *code,
                                     const char *msg, long retry_after) {
  json_t *j = json_pack("{s:{s:s, s:s, s:n, s:o}}", "error", "message", msg,
                        "type", type, "param", "code",
                        code ? json_string(code) : json_null());
  return fe_send_json(c, status, j, retry_after);
}

static enum MHD_Result fe_bad_request(struct MHD_Connection *c,
                                      const char *msg) {
  return fe_send_error(c, MHD_HTTP_BAD_REQUEST, "invalid_request_error", NULL,
                       msg, -1);
}

/* ---- fault injection ---- */

/* The fault for the next embeddings request (mode FM_OK for none); consumes
 * one of a counted fault and clears it when the count runs out. */
static fe_fault fe_take_fault(void) {
  pthread_mutex_lock(&g_mu);
  fe_fault f = g_fault;
  if (g_fault.mode != FM_OK) {
    if (g_fault.rate >= 0.0) {
      double u = (double)(fake_vec_splitmix64(&g_fault.rng) >> 11) /
                 9007199254740992.0;
      if (u >= g_fault.rate)
        f.mode = FM_OK;
    } else if (g_fault.count == 0) {
      f.mode = g_fault.mode = FM_OK;
    } else if (g_fault.count > 0 && --g_fault.count == 0) {
      g_fault.mode = FM_OK;
    }
  }
  pthread_mutex_unlock(&g_mu);
  return f;
}

static int fe_mode_parse(const json_t *m, fe_mode *out) {
  char num[32];
  const char *s = json_string_value(m);
  if (json_is_integer(m)) {
    snprintf(num, sizeof num, "%lld", (long long)json_integer_value(m));
    s = num;
  }
  for (int i = 0; s && i < FM_N; i++)
    if (strcmp(s, fe_mode_names[i]) == 0) {
      *out = (fe_mode)i;
      return 0;
    }
  return -1;
}

/* An optional integer field >= lo; -1 when present but invalid. */
static int fe_opt_int(const json_t *o, const char *key, long long lo,
                      long long *out) {
  const json_t *v = json_object_get(o, key);
  if (!v)
    return 0;
  if (!json_is_integer(v) || json_integer_value(v) < lo)
    return -1;
  *out = json_integer_value(v);
  return 0;
}

/* Parses a /_faults body into f; an error message, or NULL. */
static const char *fe_fault_parse(const json_t *o, fe_fault *f) {
  long long count = -1, seed = 1, ra = 1, delay = FE_SLOW_DEFAULT_MS;
  if (!json_is_object(o))
    return "body must be a JSON object";
  if (fe_mode_parse(json_object_get(o, "mode"), &f->mode) != 0)
    return "unknown or missing \"mode\"";
  if (fe_opt_int(o, "count", -1, &count) || fe_opt_int(o, "seed", 0, &seed) ||
      fe_opt_int(o, "retry_after", 0, &ra) ||
      fe_opt_int(o, "delay_ms", 0, &delay))
    return "count (>= -1), seed, retry_after, delay_ms (>= 0) are integers";
  const json_t *rate = json_object_get(o, "rate");
  f->rate = -1.0;
  if (rate) {
    if (!json_is_number(rate) || json_number_value(rate) < 0.0 ||
        json_number_value(rate) > 1.0)
      return "\"rate\" must be a number in [0, 1]";
    f->rate = json_number_value(rate);
  }
  f->count = count;
  f->rng = (uint64_t)seed;
  f->retry_after = (long)ra;
  f->delay_ms = (long)delay;
  if (f->mode == FM_OK)
    f->count = 0;
  return NULL;
}

static enum MHD_Result fe_faults(struct MHD_Connection *c, const fe_req *r) {
  json_error_t err;
  json_t *o = json_loadb(r->body ? r->body : "", r->len, 0, &err);
  fe_fault f;
  memset(&f, 0, sizeof f);
  const char *msg = o ? fe_fault_parse(o, &f) : "body is not JSON";
  json_decref(o);
  if (msg)
    return fe_bad_request(c, msg);
  pthread_mutex_lock(&g_mu);
  g_fault = f;
  pthread_mutex_unlock(&g_mu);
  fprintf(stderr, "fake_embedder: fault %s count %lld rate %g\n",
          fe_mode_names[f.mode], f.count, f.rate);
  return fe_send_json(c, MHD_HTTP_OK, json_pack("{s:b}", "ok", 1), -1);
}

/* ---- statistics ---- */

static void fe_stat_add(long long *field, long long n) {
  pthread_mutex_lock(&g_mu);
  *field += n;
  pthread_mutex_unlock(&g_mu);
}

static void fe_inflight(int delta) {
  pthread_mutex_lock(&g_mu);
  g_stats.inflight += delta;
  if (g_stats.inflight > g_stats.max_inflight)
    g_stats.max_inflight = g_stats.inflight;
  pthread_mutex_unlock(&g_mu);
}

/* Counts a correct 200 reply for the texts of inputs. */
static void fe_count_ok(const json_t *inputs) {
  pthread_mutex_lock(&g_mu);
  g_stats.ok++;
  g_stats.texts += (long long)json_array_size(inputs);
  for (size_t i = 0; g_conf.track && i < json_array_size(inputs); i++) {
    const json_t *t = json_array_get(inputs, i);
    fe_tab_count(json_string_value(t), json_string_length(t));
  }
  pthread_mutex_unlock(&g_mu);
}

static json_t *fe_per_text(void) {
  json_t *o = json_object();
  for (size_t i = 0; o && i < g_tab_cap; i++)
    if (g_tab[i].key)
      json_object_set_new(o, g_tab[i].key, json_integer(g_tab[i].count));
  return o;
}

static enum MHD_Result fe_stats_get(struct MHD_Connection *c) {
  pthread_mutex_lock(&g_mu);
  json_t *j = json_pack(
      "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "requests",
      (json_int_t)g_stats.requests, "ok", (json_int_t)g_stats.ok, "faulted",
      (json_int_t)g_stats.faulted, "bad", (json_int_t)g_stats.bad, "texts",
      (json_int_t)g_stats.texts, "inflight", (json_int_t)g_stats.inflight,
      "max_inflight", (json_int_t)g_stats.max_inflight, "fault",
      fe_mode_names[g_fault.mode]);
  if (j && g_conf.track)
    json_object_set_new(j, "per_text", fe_per_text());
  pthread_mutex_unlock(&g_mu);
  return fe_send_json(c, MHD_HTTP_OK, j, -1);
}

static enum MHD_Result fe_stats_reset(struct MHD_Connection *c) {
  pthread_mutex_lock(&g_mu);
  long long inflight = g_stats.inflight;
  memset(&g_stats, 0, sizeof g_stats);
  g_stats.inflight = g_stats.max_inflight = inflight;
  fe_tab_clear();
  pthread_mutex_unlock(&g_mu);
  return fe_send_json(c, MHD_HTTP_OK, json_pack("{s:b}", "ok", 1), -1);
}

/* ---- POST /v1/embeddings ---- */

/* The request's texts as a new array of strings, its model (borrowed from
 * *root) and encoding; an error message, or NULL. */
static const char *fe_parse_input(const fe_req *r, json_t **root,
                                  json_t **inputs, int *base64) {
  json_error_t err;
  *root = json_loadb(r->body ? r->body : "", r->len, JSON_ALLOW_NUL, &err);
  if (!json_is_object(*root))
    return "We could not parse the JSON body of your request.";
  if (!json_is_string(json_object_get(*root, "model")))
    return "you must provide a model parameter";
  const json_t *fmt = json_object_get(*root, "encoding_format");
  const char *fs = json_string_value(fmt);
  if (fmt && (!fs || (strcmp(fs, "float") && strcmp(fs, "base64"))))
    return "encoding_format must be \"float\" or \"base64\"";
  *base64 = fs && strcmp(fs, "base64") == 0;
  json_t *in = json_object_get(*root, "input");
  if (json_is_string(in)) {
    *inputs = json_pack("[O]", in);
    return *inputs ? NULL : "out of memory";
  }
  if (!json_is_array(in))
    return "'input' is a required property (a string or an array of strings)";
  if (json_array_size(in) == 0)
    return "'input' must not be an empty array";
  for (size_t i = 0; i < json_array_size(in); i++)
    if (!json_is_string(json_array_get(in, i)))
      return "'input' must be a string or an array of strings";
  *inputs = json_incref(in);
  return NULL;
}

/* Appends one {"object":"embedding","index":i,"embedding":...} item. */
static void fe_item(fe_buf *b, size_t i, const json_t *text, fe_mode mode,
                    int base64, float *vec) {
  int n = g_conf.dim;
  fake_vec_embed(json_string_value(text), json_string_length(text), n, vec);
  if (i == 0 && mode == FM_WRONG_DIM)
    n--;
  fe_buf_printf(b, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":",
                i ? "," : "", i);
  if (base64) {
    if (i == 0 && mode == FM_NAN)
      vec[0] = NAN;
    fe_buf_str(b, "\"");
    fe_buf_base64(b, (const unsigned char *)vec, (size_t)n * sizeof *vec);
    fe_buf_str(b, "\"}");
    return;
  }
  fe_buf_str(b, "[");
  for (int d = 0; d < n; d++) {
    if (i == 0 && d == 0 && mode == FM_NAN)
      fe_buf_str(b, "1e39");
    else
      fe_buf_printf(b, "%s%.9g", d ? "," : "", (double)vec[d]);
  }
  fe_buf_str(b, "]}");
}

/* The 200 body for inputs, with the data fault of mode applied. */
static char *fe_reply_body(const json_t *root, const json_t *inputs,
                           fe_mode mode, int base64, size_t *len) {
  fe_buf b = {NULL, 0, 0, 0};
  float *vec = malloc((size_t)g_conf.dim * sizeof *vec);
  char *model = json_dumps(json_object_get(root, "model"), JSON_ENCODE_ANY);
  size_t n = json_array_size(inputs), words = 0;
  size_t items = mode == FM_COUNT_MISMATCH ? n - 1 : n;
  fe_buf_str(&b, "{\"object\":\"list\",\"data\":[");
  for (size_t i = 0; vec && i < n; i++) {
    const json_t *t = json_array_get(inputs, i);
    words += fake_vec_words(json_string_value(t), json_string_length(t));
    if (i < items)
      fe_item(&b, i, t, mode, base64, vec);
  }
  fe_buf_printf(&b, "],\"model\":");
  fe_buf_str(&b, model ? model : "\"\"");
  fe_buf_printf(&b, ",\"usage\":{\"prompt_tokens\":%zu,\"total_tokens\":%zu}}",
                words, words);
  free(vec);
  free(model);
  if (!vec || !model || b.oom) {
    free(b.p);
    return NULL;
  }
  *len = mode == FM_MALFORMED ? b.len / 2 : b.len;
  return b.p;
}

/* 1 when any input contains "POISON". */
static int fe_poisoned(const json_t *inputs) {
  for (size_t i = 0; i < json_array_size(inputs); i++) {
    const char *s = json_string_value(json_array_get(inputs, i));
    if (s && strstr(s, "POISON"))
      return 1;
  }
  return 0;
}

/* Status-only faults (and the slow delay); MHD_YES when a reply was sent,
 * MHD_NO for drop, -1 when the request goes on. */
static int fe_early_fault(struct MHD_Connection *c, const fe_fault *f) {
  switch (f->mode) {
  case FM_DROP:
    return MHD_NO;
  case FM_429:
    return fe_send_error(c, 429, "requests", "rate_limit_exceeded",
                         "Rate limit reached for requests (injected)",
                         f->retry_after);
  case FM_503:
    return fe_send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "server_error", NULL,
                         "The server is overloaded or not ready yet.",
                         f->retry_after);
  case FM_500:
    return fe_send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error",
                         NULL, "The server had an error (injected).", -1);
  case FM_BAD_REQUEST:
    return fe_bad_request(c, "Invalid request (injected fault).");
  case FM_SLOW:
    fe_sleep_ms(f->delay_ms);
    return -1;
  default:
    return -1;
  }
}

/* 1 when the request carries the expected bearer key (or none is set). */
static int fe_authorized(struct MHD_Connection *c) {
  if (!g_conf.api_key)
    return 1;
  const char *h =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  return h && strncmp(h, "Bearer ", 7) == 0 &&
         strcmp(h + 7, g_conf.api_key) == 0;
}

/* Parses, checks poison, and answers 200 (possibly with a data fault). */
static enum MHD_Result fe_answer(struct MHD_Connection *c, const fe_req *r,
                                 fe_mode mode) {
  json_t *root = NULL, *inputs = NULL;
  int base64 = 0;
  const char *msg = fe_parse_input(r, &root, &inputs, &base64);
  enum MHD_Result ret;
  size_t len = 0;
  char *body = NULL;
  if (msg) {
    fe_stat_add(&g_stats.bad, 1);
    ret = fe_bad_request(c, msg);
  } else if (mode == FM_POISON && fe_poisoned(inputs)) {
    fe_stat_add(&g_stats.faulted, 1);
    ret = fe_send_error(c, MHD_HTTP_BAD_REQUEST, "invalid_request_error",
                        "invalid_input", "Input rejected by the model "
                        "(contains POISON).", -1);
  } else if (!(body = fe_reply_body(root, inputs, mode, base64, &len))) {
    ret = MHD_NO;
  } else {
    if (mode == FM_MALFORMED || mode == FM_WRONG_DIM || mode == FM_NAN ||
        mode == FM_COUNT_MISMATCH)
      fe_stat_add(&g_stats.faulted, 1);
    else
      fe_count_ok(inputs);
    ret = fe_send(c, MHD_HTTP_OK, body, len, -1);
  }
  json_decref(inputs);
  json_decref(root);
  return ret;
}

static enum MHD_Result fe_embeddings(struct MHD_Connection *c,
                                     const fe_req *r) {
  fe_stat_add(&g_stats.requests, 1);
  if (!fe_authorized(c)) {
    fe_stat_add(&g_stats.bad, 1);
    return fe_send_error(c, MHD_HTTP_UNAUTHORIZED, "invalid_request_error",
                         "invalid_api_key", "Incorrect API key provided.", -1);
  }
  if (r->too_big) {
    fe_stat_add(&g_stats.bad, 1);
    return fe_send_error(c, MHD_HTTP_CONTENT_TOO_LARGE,
                         "invalid_request_error", NULL, "body too large", -1);
  }
  fe_sleep_ms(g_conf.delay_ms);
  fe_fault f = fe_take_fault();
  if (f.mode == FM_SLOW || f.mode == FM_DROP || f.mode == FM_429 ||
      f.mode == FM_503 || f.mode == FM_500 || f.mode == FM_BAD_REQUEST)
    fe_stat_add(&g_stats.faulted, 1); /* data faults count in fe_answer() */
  int early = fe_early_fault(c, &f);
  if (early != -1)
    return (enum MHD_Result)early;
  return fe_answer(c, r, f.mode == FM_SLOW ? FM_OK : f.mode);
}

/* ---- dispatch ---- */

static int fe_is_emb_url(const char *url) {
  return strcmp(url, "/v1/embeddings") == 0 || strcmp(url, "/embeddings") == 0;
}

static enum MHD_Result fe_route(struct MHD_Connection *c, const char *url,
                                const char *method, const fe_req *r) {
  int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
  if (fe_is_emb_url(url) && post)
    return fe_embeddings(c, r);
  if (strcmp(url, "/healthz") == 0 && get)
    return fe_send_json(c, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"), -1);
  if (strcmp(url, "/_faults") == 0 && post)
    return fe_faults(c, r);
  if (strcmp(url, "/_stats") == 0 && get)
    return fe_stats_get(c);
  if (strcmp(url, "/_stats/reset") == 0 && post)
    return fe_stats_reset(c);
  if (fe_is_emb_url(url) || !strcmp(url, "/healthz") ||
      !strcmp(url, "/_faults") || !strcmp(url, "/_stats") ||
      !strcmp(url, "/_stats/reset"))
    return fe_send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                         "invalid_request_error", NULL, "method not allowed",
                         -1);
  return fe_send_error(c, MHD_HTTP_NOT_FOUND, "invalid_request_error", NULL,
                       "unknown URL", -1);
}

static void fe_req_append(fe_req *r, const char *data, size_t n) {
  if (r->too_big || r->len + n > FE_MAX_BODY) {
    r->too_big = 1;
    return;
  }
  if (r->len + n + 1 > r->cap) {
    size_t cap = r->cap ? r->cap : 4096;
    while (cap < r->len + n + 1)
      cap *= 2;
    char *p = realloc(r->body, cap);
    if (!p) {
      r->too_big = 1;
      return;
    }
    r->body = p;
    r->cap = cap;
  }
  memcpy(r->body + r->len, data, n);
  r->len += n;
  r->body[r->len] = '\0';
}

static enum MHD_Result fe_on_request(void *cls, struct MHD_Connection *c,
                                     const char *url, const char *method,
                                     const char *version,
                                     const char *upload_data,
                                     size_t *upload_size, void **ctx) {
  (void)cls, (void)version;
  fe_req *r = *ctx;
  if (!r) {
    r = calloc(1, sizeof *r);
    if (!r)
      return MHD_NO;
    r->is_emb = fe_is_emb_url(url) && strcmp(method, "POST") == 0;
    if (r->is_emb)
      fe_inflight(1);
    *ctx = r;
    return MHD_YES;
  }
  if (*upload_size) {
    fe_req_append(r, upload_data, *upload_size);
    *upload_size = 0;
    return MHD_YES;
  }
  return fe_route(c, url, method, r);
}

static void fe_on_completed(void *cls, struct MHD_Connection *c, void **ctx,
                            enum MHD_RequestTerminationCode toe) {
  (void)cls, (void)c, (void)toe;
  fe_req *r = *ctx;
  if (!r)
    return;
  if (r->is_emb)
    fe_inflight(-1);
  free(r->body);
  free(r);
  *ctx = NULL;
}

/* ---- startup ---- */

static void fe_usage(void) {
  fprintf(stderr, "usage: fake_embedder --port-file PATH [--listen "
                  "127.0.0.1:0] [--dim N] [--delay-ms N] [--api-key KEY] "
                  "[--track]\n");
}

static int fe_long_arg(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

static int fe_parse_args(int argc, char **argv) {
  long v;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--track") == 0) {
      g_conf.track = 1;
      continue;
    }
    if (!next)
      return -1;
    i++;
    if (strcmp(a, "--port-file") == 0)
      g_conf.port_file = next;
    else if (strcmp(a, "--listen") == 0)
      g_conf.listen = next;
    else if (strcmp(a, "--api-key") == 0)
      g_conf.api_key = next;
    else if (strcmp(a, "--dim") == 0 && fe_long_arg(next, 1, FE_MAX_DIM, &v) == 0)
      g_conf.dim = (int)v;
    else if (strcmp(a, "--delay-ms") == 0 &&
             fe_long_arg(next, 0, 3600000L, &v) == 0)
      g_conf.delay_ms = v;
    else
      return -1;
  }
  return g_conf.port_file ? 0 : -1;
}

/* "a.b.c.d:port" into sa; -1 when malformed. */
static int fe_parse_listen(const char *s, struct sockaddr_in *sa) {
  char host[64];
  const char *colon = strrchr(s, ':');
  long port;
  if (!colon || (size_t)(colon - s) >= sizeof host ||
      fe_long_arg(colon + 1, 0, 65535, &port) != 0)
    return -1;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = '\0';
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)port);
  return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static int fe_write_port_file(const char *path, int port) {
  char tmp[4096];
  int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
  if (n < 0 || (size_t)n >= sizeof tmp)
    return -1;
  FILE *f = fopen(tmp, "w");
  if (!f)
    return -1;
  int ok = fprintf(f, "%d\n", port) > 0;
  ok &= fclose(f) == 0;
  return ok && rename(tmp, path) == 0 ? 0 : -1;
}

static struct MHD_Daemon *fe_start(const struct sockaddr_in *sa) {
  unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD |
                   MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
  return MHD_start_daemon(flags, 0, NULL, NULL, fe_on_request, NULL,
                          MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)sa,
                          MHD_OPTION_CONNECTION_TIMEOUT, FE_CONN_TIMEOUT_S,
                          MHD_OPTION_NOTIFY_COMPLETED, fe_on_completed, NULL,
                          MHD_OPTION_END);
}

int main(int argc, char **argv) {
  struct sockaddr_in sa;
  if (fe_parse_args(argc, argv) != 0 || fe_parse_listen(g_conf.listen, &sa)) {
    fe_usage();
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  signal(SIGPIPE, SIG_IGN);
  pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by MHD's threads */
  struct MHD_Daemon *d = fe_start(&sa);
  if (!d) {
    fprintf(stderr, "fake_embedder: cannot listen on %s\n", g_conf.listen);
    return 1;
  }
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  int port = info ? info->port : 0;
  if (port <= 0 || fe_write_port_file(g_conf.port_file, port) != 0) {
    fprintf(stderr, "fake_embedder: cannot write %s\n", g_conf.port_file);
    MHD_stop_daemon(d);
    return 1;
  }
  fprintf(stderr, "fake_embedder: listening on port %d, dim %d\n", port,
          g_conf.dim);
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  atomic_store(&g_stopping, 1);
  MHD_stop_daemon(d);
  fe_tab_clear();
  fprintf(stderr, "fake_embedder: signal %d, exiting\n", sig);
  return 0;
}
