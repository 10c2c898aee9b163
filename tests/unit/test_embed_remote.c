/*
 * Unit tests of embed_remote.c against a fake OpenAI-compatible embedder: a
 * libmicrohttpd server on 127.0.0.1 (ephemeral port) inside this program.
 * Its reply to each request follows g_mode, so every failure the client must
 * catch (busy, HTTP errors, bad shapes, bad numbers, shuffled or missing
 * items, non-JSON, a reply slower than the timeout) is injected on demand.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "check.h"
#include "segmentd/embed_remote.h"
#include "segmentd/err.h"

#define DIM 8
#define BATCH 50
#define SLOW_MS 700

enum {
  M_OK, M_429, M_429_DATE, M_503, M_500, M_DIM, M_STRING, M_OVERFLOW,
  M_SHUFFLE, M_MISSING, M_DUP, M_RANGE, M_NOINDEX, M_NONJSON, M_SLOW,
  M_B64, M_B64_BAD, M_B64_SHORT, M_B64_NAN
};

static atomic_int g_mode;
static atomic_int g_requests;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_path[128], g_auth[128], g_model[64], g_format[16];
static unsigned short g_port;

typedef struct {
  char *p;
  size_t len;
} upload;

/* ---- the fake embedder ---- */

/* Deterministic value j of the embedding of text (FNV-1a, then mixed). */
static double fake_value(const char *text, size_t len, size_t j) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < len; i++)
    h = (h ^ (unsigned char)text[i]) * 1099511628211ULL;
  h ^= (j + 1) * 0x9E3779B97F4A7C15ULL;
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ULL;
  h ^= h >> 32;
  return (double)((long)(h % 2001) - 1000) / 1000.0;
}

/* Standard base64 with padding of data[0..n) (a new JSON string). */
static json_t *b64_string(const unsigned char *data, size_t n) {
  static const char a[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char out[4 * (DIM * 4 / 3 + 2) + 1];
  size_t k = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)data[i] << 16;
    if (i + 1 < n) v |= (uint32_t)data[i + 1] << 8;
    if (i + 2 < n) v |= data[i + 2];
    out[k++] = a[v >> 18];
    out[k++] = a[(v >> 12) & 63];
    out[k++] = i + 1 < n ? a[(v >> 6) & 63] : '=';
    out[k++] = i + 2 < n ? a[v & 63] : '=';
  }
  out[k] = 0;
  return json_string(out);
}

/* The embedding as base64 float32 (little-endian on this machine), with
 * the mode's defect. */
static json_t *fake_b64(const char *s, size_t len, int mode) {
  float v[DIM];
  for (size_t j = 0; j < DIM; j++) v[j] = (float)fake_value(s, len, j);
  if (mode == M_B64_NAN) v[3] = NAN;
  if (mode == M_B64_BAD) return json_string("AAAA@@@@");
  return b64_string((const unsigned char *)v,
                    sizeof(float) * (mode == M_B64_SHORT ? DIM - 1 : DIM));
}

static json_t *fake_item(const json_t *text, size_t idx, int mode) {
  const char *s = json_string_value(text);
  size_t len = json_string_length(text);
  int dim = mode == M_DIM && idx == 0 ? DIM - 1 : DIM;
  json_t *emb = mode >= M_B64 ? fake_b64(s, len, mode) : json_array();
  for (size_t j = 0; mode < M_B64 && j < (size_t)dim; j++) {
    json_t *v = json_real(fake_value(s, len, j));
    if (j == 3 && mode == M_STRING)
      v = (json_decref(v), json_string("nan"));
    if (j == 3 && mode == M_OVERFLOW)
      v = (json_decref(v), json_real(1e39));
    json_array_append_new(emb, v);
  }
  json_t *ix = json_integer((json_int_t)idx);
  if (mode == M_DUP && idx == 1)
    ix = (json_decref(ix), json_integer(0));
  if (mode == M_RANGE && idx == 1)
    ix = (json_decref(ix), json_integer(7777));
  json_t *item = json_pack("{s:s, s:o}", "object", "embedding", "embedding", emb);
  if (!(mode == M_NOINDEX && idx == 1))
    json_object_set_new(item, "index", ix);
  else
    json_decref(ix);
  return item;
}

/* The reply body for a request body, per mode; NULL: bad request. */
static char *fake_body(const upload *u, int mode) {
  if (mode == M_NONJSON)
    return strdup("<html>upstream gateway error</html>");
  json_t *req = json_loadb(u->p ? u->p : "", u->len, 0, NULL);
  json_t *in = json_object_get(req, "input");
  if (!json_is_array(in)) {
    json_decref(req);
    return NULL;
  }
  pthread_mutex_lock(&g_mu);
  snprintf(g_model, sizeof g_model, "%s",
           json_string_value(json_object_get(req, "model")));
  const char *fmt = json_string_value(json_object_get(req, "encoding_format"));
  snprintf(g_format, sizeof g_format, "%s", fmt ? fmt : "");
  pthread_mutex_unlock(&g_mu);
  size_t n = json_array_size(in), keep = mode == M_MISSING ? n - 1 : n;
  json_t *data = json_array();
  for (size_t k = 0; k < keep; k++) {
    size_t i = mode == M_SHUFFLE ? (k * 7 + 3) % n : k; /* n prime to 7 */
    json_array_append_new(data, fake_item(json_array_get(in, i), i, mode));
  }
  json_t *rep = json_pack("{s:s, s:o, s:s}", "object", "list", "data", data,
                          "model", "fake");
  char *s = json_dumps(rep, JSON_COMPACT);
  json_decref(rep);
  json_decref(req);
  return s;
}

static void fake_retry_date(char *buf, size_t size) {
  time_t t = time(NULL) + 4;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static enum MHD_Result fake_reply(struct MHD_Connection *conn, int status,
                                  char *body, const char *retry) {
  struct MHD_Response *r = MHD_create_response_from_buffer(
      strlen(body), body, MHD_RESPMEM_MUST_FREE);
  if (!r)
    return MHD_NO;
  MHD_add_response_header(r, "Content-Type", "application/json");
  if (retry)
    MHD_add_response_header(r, "Retry-After", retry);
  enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result fake_respond(struct MHD_Connection *conn,
                                    const char *url, const upload *u) {
  int mode = atomic_load(&g_mode);
  char date[64];
  if (strcmp(url, "/v1/embeddings") != 0 &&
      strcmp(url, "/custom/embeddings") != 0)
    return fake_reply(conn, 404, strdup("{}"), NULL);
  if (mode == M_429)
    return fake_reply(conn, 429, strdup("{}"), "2");
  if (mode == M_429_DATE) {
    fake_retry_date(date, sizeof date);
    return fake_reply(conn, 429, strdup("{}"), date);
  }
  if (mode == M_503 || mode == M_500)
    return fake_reply(conn, mode == M_503 ? 503 : 500, strdup("{}"), NULL);
  if (mode == M_SLOW) {
    struct timespec ts = {0, SLOW_MS * 1000000L};
    nanosleep(&ts, NULL);
  }
  char *body = fake_body(u, mode);
  return body ? fake_reply(conn, 200, body, NULL)
              : fake_reply(conn, 400, strdup("{}"), NULL);
}

static enum MHD_Result on_req(void *cls, struct MHD_Connection *conn,
                              const char *url, const char *method,
                              const char *version, const char *data,
                              size_t *size, void **con_cls) {
  (void)cls;
  (void)version;
  upload *u = *con_cls;
  if (!u) {
    *con_cls = calloc(1, sizeof(upload));
    return *con_cls ? MHD_YES : MHD_NO;
  }
  if (*size) {
    char *p = realloc(u->p, u->len + *size);
    if (!p)
      return MHD_NO;
    memcpy(p + u->len, data, *size);
    u->p = p;
    u->len += *size;
    *size = 0;
    return MHD_YES;
  }
  const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 "Authorization");
  pthread_mutex_lock(&g_mu);
  snprintf(g_path, sizeof g_path, "%s", url);
  snprintf(g_auth, sizeof g_auth, "%s", auth ? auth : "");
  pthread_mutex_unlock(&g_mu);
  atomic_fetch_add(&g_requests, 1);
  if (strcmp(method, "POST") != 0)
    return fake_reply(conn, 405, strdup("{}"), NULL);
  return fake_respond(conn, url, u);
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                    enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)conn;
  (void)toe;
  upload *u = *con_cls;
  if (u)
    free(u->p);
  free(u);
  *con_cls = NULL;
}

static struct MHD_Daemon *fake_start(void) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = 0;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct MHD_Daemon *d = MHD_start_daemon(
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
      NULL, NULL, on_req, NULL, MHD_OPTION_SOCK_ADDR, &sa,
      MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
  if (!d)
    return NULL;
  const union MHD_DaemonInfo *di =
      MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  g_port = di ? di->port : 0;
  return d;
}

/* ---- the client ---- */

static char g_base[64];

static sd_remote_conf conf(const char *url, const char *key) {
  sd_remote_conf c = {url ? url : g_base, "test-model", key, DIM, 2000, 0};
  return c;
}

/* Row i of out is the fake embedding of texts[i]. */
static int rows_match(const char *const *texts, size_t n, const float *out) {
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < DIM; j++)
      if (out[i * DIM + j] !=
          (float)fake_value(texts[i], strlen(texts[i]), j))
        return 0;
  return 1;
}

static int run(int mode, const sd_remote_conf *c, const char *const *texts,
               size_t n, float *out, sd_remote_status *st) {
  atomic_store(&g_mode, mode);
  return sd_remote_embed(c, texts, NULL, n, out, st);
}

static void test_ok_auth_url(void) {
  const char *texts[] = {"alpha", "beta", "gamma"};
  float out[3 * DIM];
  sd_remote_status st;
  sd_remote_conf c = conf(NULL, "sk-secret");
  CHECK_INT(run(M_OK, &c, texts, 3, out, &st), 0);
  CHECK_INT(st.http_status, 200);
  CHECK_INT(st.retry_after_ms, 0);
  CHECK_STR(st.err, "");
  CHECK(rows_match(texts, 3, out));
  CHECK_STR(g_auth, "Bearer sk-secret");
  CHECK_STR(g_path, "/v1/embeddings");
  CHECK_STR(g_model, "test-model");

  char url[128];
  snprintf(url, sizeof url, "%s/", g_base);
  c = conf(url, NULL);
  CHECK_INT(run(M_OK, &c, texts, 3, out, NULL), 0);
  CHECK_STR(g_auth, "");
  CHECK_STR(g_path, "/v1/embeddings");
  snprintf(url, sizeof url, "%s/custom/embeddings", g_base);
  c = conf(url, NULL);
  CHECK_INT(run(M_OK, &c, texts, 3, out, NULL), 0);
  CHECK_STR(g_path, "/custom/embeddings");
  snprintf(url, sizeof url, "%s/custom/embeddings/", g_base);
  c = conf(url, NULL);
  CHECK_INT(run(M_OK, &c, texts, 3, out, NULL), 0);
  CHECK_STR(g_path, "/custom/embeddings");
}

static void test_batch(int mode) {
  static char buf[BATCH][16];
  const char *texts[BATCH];
  float out[BATCH * DIM];
  for (size_t i = 0; i < BATCH; i++) {
    snprintf(buf[i], sizeof buf[i], "text #%zu", i);
    texts[i] = buf[i];
  }
  sd_remote_conf c = conf(NULL, NULL);
  CHECK_INT(run(mode, &c, texts, BATCH, out, NULL), 0);
  CHECK(rows_match(texts, BATCH, out));
}

static void test_base64(void) {
  const char *texts[] = {"one", "two", "three"};
  float out[3 * DIM];
  sd_remote_status st;
  sd_remote_conf c = conf(NULL, NULL);
  CHECK_INT(run(M_OK, &c, texts, 3, out, &st), 0);
  CHECK_STR(g_format, ""); /* floats: the field is left out */
  c.base64 = 1;
  CHECK_INT(run(M_B64, &c, texts, 3, out, &st), 0);
  CHECK_STR(g_format, "base64");
  CHECK(rows_match(texts, 3, out));
  static const struct {
    int mode;
    const char *err;
  } bad[] = {{M_B64_BAD, "base64"}, {M_B64_SHORT, "base64"},
             {M_B64_NAN, "not a finite"}};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    CHECK_INT(run(bad[k].mode, &c, texts, 3, out, &st), SD_EINTERNAL);
    CHECK(strstr(st.err, bad[k].err) != NULL);
  }
}

static void test_busy(void) {
  const char *texts[] = {"a", "b"};
  float out[2 * DIM];
  sd_remote_status st;
  sd_remote_conf c = conf(NULL, "sk-secret");
  CHECK_INT(run(M_429, &c, texts, 2, out, &st), SD_EBUSY);
  CHECK_INT(st.http_status, 429);
  CHECK_INT(st.retry_after_ms, 2000);
  CHECK_INT(run(M_429_DATE, &c, texts, 2, out, &st), SD_EBUSY);
  CHECK(st.retry_after_ms >= 2000 && st.retry_after_ms <= 5000);
  CHECK_INT(run(M_503, &c, texts, 2, out, &st), SD_EBUSY);
  CHECK_INT(st.http_status, 503);
  CHECK_INT(st.retry_after_ms, 0);
  CHECK(strstr(st.err, "503") != NULL);
  CHECK(strstr(st.err, "sk-secret") == NULL);
  CHECK_STR(g_auth, "Bearer sk-secret");
  CHECK_INT(run(M_500, &c, texts, 2, out, &st), SD_EINTERNAL);
  CHECK_INT(st.http_status, 500);
}

static void test_bad_replies(void) {
  static const struct {
    int mode;
    const char *err;
  } cases[] = {
      {M_DIM, "values, want"},      {M_STRING, "not a finite"},
      {M_OVERFLOW, "not a finite"}, {M_MISSING, "embeddings for"},
      {M_DUP, "duplicate"},         {M_RANGE, "out of range"},
      {M_NOINDEX, "index"},         {M_NONJSON, "not JSON"},
  };
  const char *texts[] = {"one", "two", "three"};
  float out[3 * DIM];
  sd_remote_status st;
  sd_remote_conf c = conf(NULL, NULL);
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int rc = run(cases[k].mode, &c, texts, 3, out, &st);
    CHECK_INT(rc, SD_EINTERNAL);
    CHECK_INT(st.http_status, 200);
    if (!strstr(st.err, cases[k].err))
      fprintf(stderr, "mode %d: err \"%s\"\n", cases[k].mode, st.err);
    CHECK(strstr(st.err, cases[k].err) != NULL);
  }
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void test_timeout_and_input(void) {
  const char *texts[] = {"slow"};
  float out[2 * DIM];
  sd_remote_status st;
  sd_remote_conf c = conf(NULL, NULL);
  c.timeout_ms = 200;
  double t0 = now_ms();
  CHECK_INT(run(M_SLOW, &c, texts, 1, out, &st), SD_ENOTREADY);
  CHECK(now_ms() - t0 < SLOW_MS);
  CHECK_INT(st.http_status, 0);

  /* lens: only the first 5 bytes; invalid UTF-8 never reaches the wire */
  const char *two[] = {"hello world", "bye"};
  const size_t lens[] = {5, 3};
  const char *want[] = {"hello", "bye"};
  atomic_store(&g_mode, M_OK);
  CHECK_INT(sd_remote_embed(&c, two, lens, 2, out, NULL), 0);
  CHECK(rows_match(want, 2, out));
  const char *bad[] = {"ok", "\xff\xfe"};
  int before = atomic_load(&g_requests);
  CHECK_INT(sd_remote_embed(&c, bad, NULL, 2, out, &st), SD_EINVAL);
  CHECK_INT(atomic_load(&g_requests), before);
  CHECK_INT(sd_remote_embed(&c, bad, NULL, 0, out, &st), 0);
  c.dim = 0;
  CHECK_INT(sd_remote_embed(&c, two, NULL, 2, out, &st), SD_EINVAL);
}

int main(void) {
  static const char *proxies[] = {"http_proxy", "HTTP_PROXY", "https_proxy",
                                  "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};
  for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++)
    unsetenv(proxies[i]); /* loopback only */
  struct MHD_Daemon *d = fake_start();
  CHECK(d != NULL && g_port != 0);
  if (!d || !g_port)
    return check_done("test_embed_remote");
  snprintf(g_base, sizeof g_base, "http://127.0.0.1:%u", (unsigned)g_port);
  test_ok_auth_url();
  test_batch(M_OK);
  test_batch(M_SHUFFLE);
  test_busy();
  test_bad_replies();
  test_base64();
  test_timeout_and_input();
  MHD_stop_daemon(d);

  /* nothing listens any more: connection refused */
  const char *texts[] = {"x"};
  float out[DIM];
  sd_remote_status st;
  sd_remote_conf c = conf(NULL, NULL);
  CHECK_INT(sd_remote_embed(&c, texts, NULL, 1, out, &st), SD_ENOTREADY);
  CHECK_INT(st.http_status, 0);
  return check_done("test_embed_remote");
}
