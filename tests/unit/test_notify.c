/*
 * Unit tests of notify.c and notify_sign.c: the webhook outbox delivered
 * by a real core writer (temporary SQLite database) to a receiver inside
 * this program (libmicrohttpd on 127.0.0.1, ephemeral port). The receiver
 * records every request (path, headers, body, time) and answers by
 * g_mode, so refusals, Retry-After, connection resets, permanent failures
 * and a restart with rows pending are all driven from here.
 *
 * Memory: the receiver's records own their bodies (freed by rec_reset);
 * each test owns its config, core and notifier and frees them.
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
#include <unistd.h>

#include "check.h"
#include "segmentd/config.h"
#include "segmentd/core.h"
#include "segmentd/err.h"
#include "segmentd/log.h"
#include "segmentd/notify.h"
#include "segmentd/store.h"
#include "segmentd/timeutil.h"

#define SECRET "s3cret-for-tests"
#define MAX_RECS 256

enum { RCV_SCRIPT, RCV_FAIL_ID, RCV_OK, RCV_503 };

typedef struct {
  int64_t t_ms;        /* monotonic, when the request was complete */
  char path[32];
  int status;          /* answered; 0 = connection closed */
  int64_t id;          /* X-Segmentd-Delivery */
  char event[64], ts[24], sig[96];
  char *body;
  size_t len;
} rec;

typedef struct {
  char *p;
  size_t len;
} upload;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static rec g_recs[MAX_RECS];
static int g_nrec;
static atomic_int g_mode;
static atomic_int g_fail_id;   /* RCV_FAIL_ID: this delivery gets 500 */
static atomic_int g_delay_ms;  /* RCV_OK: answer after */
static unsigned short g_port;
static char g_alerts_url[96], g_segments_url[96];

static int64_t mono_ms(void) { return sd_mono_ns() / 1000000; }

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- the receiver ---- */

static void rec_reset(void) {
  pthread_mutex_lock(&g_mu);
  for (int i = 0; i < g_nrec; i++) free(g_recs[i].body);
  memset(g_recs, 0, sizeof(g_recs));
  g_nrec = 0;
  pthread_mutex_unlock(&g_mu);
}

static void hdr_copy(struct MHD_Connection *conn, const char *name, char *out,
                     size_t cap) {
  const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
  snprintf(out, cap, "%s", v ? v : "");
}

/* Records the request; returns its index in the script (0, 1, 2, ...). */
static int rec_add(struct MHD_Connection *conn, const char *url, upload *u,
                   int64_t *id) {
  rec r;
  memset(&r, 0, sizeof(r));
  char idv[32];
  r.t_ms = mono_ms();
  snprintf(r.path, sizeof(r.path), "%s", url);
  hdr_copy(conn, "X-Segmentd-Delivery", idv, sizeof(idv));
  hdr_copy(conn, "X-Segmentd-Event", r.event, sizeof(r.event));
  hdr_copy(conn, "X-Segmentd-Timestamp", r.ts, sizeof(r.ts));
  hdr_copy(conn, "X-Segmentd-Signature", r.sig, sizeof(r.sig));
  r.id = *id = atoll(idv);
  r.body = u->p;
  r.len = u->len;
  u->p = NULL;
  pthread_mutex_lock(&g_mu);
  int k = g_nrec;
  if (k < MAX_RECS) g_recs[g_nrec++] = r;
  else free(r.body);
  pthread_mutex_unlock(&g_mu);
  return k;
}

static void rec_status(int k, int status) {
  pthread_mutex_lock(&g_mu);
  if (k < MAX_RECS) g_recs[k].status = status;
  pthread_mutex_unlock(&g_mu);
}

static enum MHD_Result reply(struct MHD_Connection *conn, int k, int status,
                             const char *retry) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT);
  if (!r) return MHD_NO;
  if (retry) MHD_add_response_header(r, "Retry-After", retry);
  /* a fresh connection per request: libcurl would silently resend a
   * request whose reused connection is closed without a reply */
  MHD_add_response_header(r, "Connection", "close");
  rec_status(k, status);
  enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
  MHD_destroy_response(r);
  return ret;
}

/* The script of RCV_SCRIPT: 500, 429 (Retry-After: 1), reset, then 200. */
static enum MHD_Result respond(struct MHD_Connection *conn, int k,
                               int64_t id) {
  int mode = atomic_load(&g_mode);
  if (mode == RCV_SCRIPT && k == 0) return reply(conn, k, 500, NULL);
  if (mode == RCV_SCRIPT && k == 1) return reply(conn, k, 429, "1");
  if (mode == RCV_SCRIPT && k == 2) return MHD_NO; /* connection closed */
  if (mode == RCV_FAIL_ID && id == atomic_load(&g_fail_id))
    return reply(conn, k, 500, NULL);
  if (mode == RCV_503) return reply(conn, k, 503, "2");
  if (mode == RCV_OK && atomic_load(&g_delay_ms) > 0)
    sleep_ms(atomic_load(&g_delay_ms));
  return reply(conn, k, 200, NULL);
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
    char *p = realloc(u->p, u->len + *size + 1);
    if (!p) return MHD_NO;
    memcpy(p + u->len, data, *size);
    u->p = p;
    u->len += *size;
    u->p[u->len] = '\0';
    *size = 0;
    return MHD_YES;
  }
  if (strcmp(method, "POST") != 0) return reply(conn, MAX_RECS, 405, NULL);
  int64_t id;
  int k = rec_add(conn, url, u, &id);
  return respond(conn, k, id);
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                    enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)conn;
  (void)toe;
  upload *u = *con_cls;
  if (u) free(u->p);
  free(u);
  *con_cls = NULL;
}

static struct MHD_Daemon *receiver_start(void) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct MHD_Daemon *d = MHD_start_daemon(
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
      NULL, NULL, on_req, NULL, MHD_OPTION_SOCK_ADDR, &sa,
      MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
  if (!d) return NULL;
  const union MHD_DaemonInfo *di =
      MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  g_port = di ? di->port : 0;
  snprintf(g_alerts_url, sizeof g_alerts_url, "http://127.0.0.1:%u/alerts",
           g_port);
  snprintf(g_segments_url, sizeof g_segments_url,
           "http://127.0.0.1:%u/segments", g_port);
  return d;
}

/* ---- the service side: a core, a notifier, writer jobs ---- */

typedef struct {
  sd_config cfg;
  char dir[64], path[128];
  sd_core *core;
  sd_notify *n;
} env;

static void env_config(env *e, long max_attempts) {
  sd_config_defaults(&e->cfg);
  snprintf(e->dir, sizeof e->dir, "/tmp/sd-notify-XXXXXX");
  CHECK(mkdtemp(e->dir) != NULL);
  snprintf(e->path, sizeof e->path, "%s/t.db", e->dir);
  e->cfg.db = e->path;
  e->cfg.webhook_url = g_alerts_url;
  e->cfg.segments_webhook_url = NULL;
  e->cfg.webhook_secret = SECRET;
  e->cfg.webhook_timeout_ms = 3000;
  e->cfg.webhook_backoff_ms = 10;
  e->cfg.webhook_backoff_max_ms = 40;
  e->cfg.webhook_max_attempts = max_attempts;
}

static int env_start(env *e) {
  char msg[256] = "";
  int rc = sd_core_start(&e->cfg, &e->core, msg, sizeof msg);
  if (rc == 0) rc = sd_notify_start(&e->cfg, e->core, &e->n, msg, sizeof msg);
  if (rc < 0) fprintf(stderr, "start: %s\n", msg);
  return rc;
}

static void env_stop(env *e) {
  sd_notify_stop(e->n); /* before the core: it waits for its writer jobs */
  sd_core_stop(e->core);
  sd_notify_free(e->n);
  sd_core_free(e->core);
  e->n = NULL;
  e->core = NULL;
}

static void env_remove(env *e) {
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
  CHECK_INT(system(cmd), 0);
}

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
} waiter;

static void wait_done(sd_job *job, void *ud) {
  waiter *w = ud;
  (void)job;
  pthread_mutex_lock(&w->mu);
  w->done = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

/* Runs fn(arg) on the writer in its transaction and waits for it. */
static int run_fn(sd_core *c, int (*fn)(sd_core *, void *), void *arg) {
  waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
  sd_job job;
  memset(&job, 0, sizeof job);
  job.fn = fn;
  job.fn_arg = arg;
  job.done = wait_done;
  job.ud = &w;
  int rc;
  while ((rc = sd_core_submit(c, &job)) == SD_EBUSY) sleep_ms(5);
  if (rc < 0) return rc;
  pthread_mutex_lock(&w.mu);
  while (!w.done) pthread_cond_wait(&w.cv, &w.mu);
  pthread_mutex_unlock(&w.mu);
  return job.rc;
}

typedef struct {
  const sd_config *cfg;
  int n;          /* rows to add, payload {"n": base + k} */
  int base;
  int alternate;  /* 1: even k alerts, odd k segments; 0: all alerts */
} add_op;

static int op_add(sd_core *c, void *arg) {
  const add_op *op = arg;
  for (int k = 0; k < op->n; k++) {
    char payload[128];
    snprintf(payload, sizeof payload,
             "{\"n\":%d,\"note\":\"h\\u00e9llo \\\"quoted\\\"\"}", op->base + k);
    const char *stream = op->alternate && k % 2 ? "segments" : "alerts";
    int rc = sd_outbox_add(op->cfg, sd_core_db(c), stream, "test.created",
                           payload, sd_now_ms());
    if (rc < 0) return rc;
  }
  return 0;
}

static int add_rows(env *e, int n, int base, int alternate) {
  add_op op = {&e->cfg, n, base, alternate};
  int rc = run_fn(e->core, op_add, &op);
  sd_notify_kick(e->n);
  return rc;
}

/* One integer from SQL over the calling thread's read connection. */
static int64_t q_int(const char *sql) {
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(rd, sql) : NULL;
  int64_t v = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0)
                                                   : -1;
  if (st) sqlite3_reset(st);
  return v;
}

static sd_notify_stats stats(const env *e) {
  sd_notify_stats s;
  sd_notify_get_stats(e->n, &s);
  return s;
}

/* Waits up to ms for the stats to show `want` deliveries. */
static int wait_delivered(const env *e, int64_t want, long ms) {
  for (long t = 0; t < ms; t += 10) {
    if (stats(e).delivered_total >= want) return 1;
    sleep_ms(10);
  }
  return 0;
}

static int nrec(void) {
  pthread_mutex_lock(&g_mu);
  int n = g_nrec;
  pthread_mutex_unlock(&g_mu);
  return n;
}

/* ---- checks over the records ---- */

/* The record's body is the envelope of delivery r->id (payload n = id - 1
 * + base) and carries a signature that verifies (and a wrong one not). */
static void check_record(const rec *r, int base) {
  char hex[65];
  CHECK_INT(sd_notify_sign(SECRET, r->ts, r->body, r->len, hex), 0);
  CHECK(strncmp(r->sig, "sha256=", 7) == 0 && strcmp(r->sig + 7, hex) == 0);
  CHECK(sd_notify_verify(SECRET, r->ts, r->body, r->len, r->sig));
  CHECK(!sd_notify_verify("wrong-secret", r->ts, r->body, r->len, r->sig));
  CHECK(!sd_notify_verify(SECRET, "1", r->body, r->len, r->sig));
  CHECK(llabs(atoll(r->ts) - (long long)time(NULL)) < 60);
  CHECK_STR(r->event, "test.created");
  json_t *o = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
  CHECK(o != NULL);
  CHECK_INT(json_integer_value(json_object_get(o, "id")), r->id);
  CHECK_STR(json_string_value(json_object_get(o, "event")), "test.created");
  CHECK_STR(json_string_value(json_object_get(o, "stream")), r->path + 1);
  const char *ca = json_string_value(json_object_get(o, "created_at"));
  int64_t ms = 0;
  CHECK(ca && sd_time_parse(ca, strlen(ca), &ms) == 0 && ms > 0);
  json_t *data = json_object_get(o, "data");
  CHECK_INT(json_integer_value(json_object_get(data, "n")), r->id - 1 + base);
  CHECK_STR(json_string_value(json_object_get(data, "note")),
            "h\xc3\xa9llo \"quoted\"");
  json_decref(o);
}

/* Accepted ids of path, in arrival order (no duplicates when `once`):
 * strictly increasing, each expected id present. Returns the count. */
static int check_order(const char *path, const int64_t *want, int nwant,
                       int once) {
  int64_t last = 0;
  int got = 0, dups = 0;
  pthread_mutex_lock(&g_mu);
  for (int i = 0; i < g_nrec; i++) {
    const rec *r = &g_recs[i];
    if (strcmp(r->path, path) != 0 || r->status / 100 != 2) continue;
    if (r->id <= last) {
      dups += r->id == last;
      CHECK(r->id == last); /* a resend repeats the latest, never older */
      continue;
    }
    CHECK(got < nwant && r->id == want[got]);
    last = r->id;
    got++;
  }
  pthread_mutex_unlock(&g_mu);
  if (once) CHECK_INT(dups, 0);
  CHECK_INT(got, nwant);
  return got;
}

/* ---- (a) refusals, Retry-After, order and signatures ---- */

/* Gap from the 429 to the next request on the same path, in ms. */
static int64_t retry_after_gap(void) {
  int64_t gap = -1;
  pthread_mutex_lock(&g_mu);
  for (int i = 0; i < g_nrec && gap < 0; i++) {
    if (g_recs[i].status != 429) continue;
    for (int j = i + 1; j < g_nrec; j++)
      if (!strcmp(g_recs[j].path, g_recs[i].path)) {
        gap = g_recs[j].t_ms - g_recs[i].t_ms;
        break;
      }
  }
  pthread_mutex_unlock(&g_mu);
  return gap;
}

static void test_refusals(void) {
  env e;
  env_config(&e, 10);
  e.cfg.segments_webhook_url = g_segments_url;
  rec_reset();
  atomic_store(&g_mode, RCV_SCRIPT);
  if (env_start(&e) < 0) {
    CHECK(0);
    return;
  }
  CHECK_INT(add_rows(&e, 8, 0, 1), 0); /* ids 1..8, odd ids alerts */
  CHECK(wait_delivered(&e, 8, 10000));
  int64_t alerts[] = {1, 3, 5, 7}, segs[] = {2, 4, 6, 8};
  check_order("/alerts", alerts, 4, 1);
  check_order("/segments", segs, 4, 1);
  pthread_mutex_lock(&g_mu);
  CHECK_INT(g_nrec, 11); /* 8 deliveries and 3 refusals */
  for (int i = 0; i < g_nrec; i++) check_record(&g_recs[i], 0);
  pthread_mutex_unlock(&g_mu);
  int64_t gap = retry_after_gap();
  fprintf(stderr, "test_notify: Retry-After gap %lld ms\n", (long long)gap);
  CHECK(gap >= 950);
  sd_notify_stats s = stats(&e);
  CHECK_INT(s.delivered_total, 8);
  CHECK_INT(s.attempts_failed_total, 3);
  CHECK_INT(s.given_up_total, 0);
  CHECK_INT(s.outbox_pending, 0);
  CHECK_INT(s.in_flight, 0);
  CHECK_INT(s.streams[SD_NOTIFY_ALERTS].delivered_total, 4);
  CHECK_INT(s.streams[SD_NOTIFY_SEGMENTS].delivered_total, 4);
  CHECK(strlen(s.last_error) > 0 && !strstr(s.last_error, SECRET));
  CHECK_INT(q_int("SELECT count(*) FROM outbox WHERE delivered_at IS NULL"), 0);
  CHECK_INT(q_int("SELECT sum(attempts) FROM outbox"), 11);
  env_stop(&e);
  env_remove(&e);
}

/* ---- (b) giving up, and the rows behind a given-up row ---- */

/* A row whose payload is not JSON (only raw SQL can store one). */
static int op_bad_row(sd_core *c, void *arg) {
  (void)arg;
  return sd_store_exec(sd_core_db(c),
                       "INSERT INTO outbox(stream,event,payload,created_at,"
                       "next_at) VALUES('alerts','test.created','{bad',1,1)");
}

static void test_give_up(void) {
  env e;
  env_config(&e, 3);
  rec_reset();
  atomic_store(&g_mode, RCV_FAIL_ID);
  atomic_store(&g_fail_id, 1);
  atomic_store(&g_delay_ms, 0);
  if (env_start(&e) < 0) {
    CHECK(0);
    return;
  }
  CHECK_INT(add_rows(&e, 2, 0, 0), 0); /* ids 1 (always 500) and 2 */
  CHECK(wait_delivered(&e, 1, 5000));
  sd_notify_stats s = stats(&e);
  CHECK_INT(s.given_up_total, 1);
  CHECK_INT(s.attempts_failed_total, 3);
  CHECK_INT(s.delivered_total, 1);
  CHECK_INT(s.outbox_pending, 0);
  CHECK(strstr(s.last_error, "HTTP 500") != NULL);
  pthread_mutex_lock(&g_mu);
  CHECK_INT(g_nrec, 4);
  for (int i = 0; i < g_nrec; i++) {
    CHECK_INT(g_recs[i].id, i < 3 ? 1 : 2); /* 2 waits until 1 gave up */
    CHECK_INT(g_recs[i].status, i < 3 ? 500 : 200);
    check_record(&g_recs[i], 0);
  }
  pthread_mutex_unlock(&g_mu);
  CHECK_INT(q_int("SELECT attempts FROM outbox WHERE id=1 AND gave_up_at "
                  "IS NOT NULL AND delivered_at IS NULL AND "
                  "last_error='HTTP 500'"), 3);
  CHECK_INT(q_int("SELECT attempts FROM outbox WHERE id=2 AND delivered_at "
                  "IS NOT NULL AND gave_up_at IS NULL"), 1);
  /* a row that can never be sent is given up at once, unsent */
  CHECK_INT(run_fn(e.core, op_bad_row, NULL), 0);
  sd_notify_kick(e.n);
  for (int t = 0; t < 300 && stats(&e).given_up_total < 2; t++) sleep_ms(10);
  CHECK_INT(stats(&e).given_up_total, 2);
  CHECK_INT(nrec(), 4);
  CHECK_INT(q_int("SELECT count(*) FROM outbox WHERE id=3 AND gave_up_at IS "
                  "NOT NULL AND last_error='the payload is not JSON'"), 1);
  env_stop(&e);
  env_remove(&e);
}

typedef struct {
  const sd_config *cfg;
  int rc[6];
  int64_t pruned;
} misc_op;

static int op_misc(sd_core *c, void *arg) {
  misc_op *op = arg;
  sd_store *db = sd_core_db(c);
  int64_t now = sd_now_ms();
  op->rc[0] = sd_outbox_add(op->cfg, db, "segments", "x.y", "{}", now);
  op->rc[1] = sd_outbox_add(op->cfg, db, "nope", "x.y", "{}", now);
  op->rc[2] = sd_outbox_add(op->cfg, db, "alerts", "bad event", "{}", now);
  op->rc[3] = sd_outbox_add(op->cfg, db, "alerts", "x.y", "{not json", now);
  op->rc[4] = sd_outbox_add(op->cfg, db, "alerts", "", "{}", now);
  op->rc[5] = sd_outbox_prune(db, now + 1, &op->pruned);
  return 0;
}

/* Input checks and pruning, on a notifier-less core. */
static void test_add_prune(void) {
  env e;
  env_config(&e, 3);
  char msg[256];
  CHECK_INT(sd_core_start(&e.cfg, &e.core, msg, sizeof msg), 0);
  if (!e.core) return;
  add_op op = {&e.cfg, 3, 0, 0};
  CHECK_INT(run_fn(e.core, op_add, &op), 0);
  CHECK_INT(q_int("SELECT count(*) FROM outbox WHERE next_at=created_at "
                  "AND attempts=0"), 3);
  misc_op m = {&e.cfg, {1, 1, 1, 1, 1, 1}, -1};
  CHECK_INT(run_fn(e.core, op_misc, &m), 0);
  CHECK_INT(m.rc[0], 0); /* no segments URL: skipped */
  CHECK_INT(m.rc[1], SD_EINVAL);
  CHECK_INT(m.rc[2], SD_EINVAL);
  CHECK_INT(m.rc[3], SD_EINVAL);
  CHECK_INT(m.rc[4], SD_EINVAL);
  CHECK_INT(m.rc[5], 0);
  CHECK_INT(m.pruned, 0); /* pending rows are kept */
  CHECK_INT(q_int("SELECT count(*) FROM outbox"), 3);
  /* a bad URL is refused at start, without echoing it */
  sd_config bad = e.cfg;
  bad.webhook_url = "ftp://user:pw@127.0.0.1/x";
  sd_notify *n = (sd_notify *)&bad; /* overwritten: NULL on failure */
  CHECK_INT(sd_notify_start(&bad, e.core, &n, msg, sizeof msg), SD_EINVAL);
  CHECK(n == NULL && !strstr(msg, "pw"));
  /* no URL at all: a notifier that does nothing */
  bad.webhook_url = NULL;
  CHECK_INT(sd_notify_start(&bad, e.core, &n, msg, sizeof msg), 0);
  sd_notify_kick(n);
  sd_notify_stats s;
  sd_notify_get_stats(n, &s);
  CHECK(!s.streams[0].enabled && !s.streams[1].enabled);
  CHECK_STR(s.streams[1].stream, "segments");
  sd_notify_free(n);
  sd_core_free(e.core);
  env_remove(&e);
}

/* ---- (c) a restart with rows pending ---- */

/* Monotonic time of the first record with this status, or -1. */
static int64_t first_with_status(int status, int from) {
  int64_t t = -1;
  pthread_mutex_lock(&g_mu);
  for (int i = from; i < g_nrec && t < 0; i++)
    if (g_recs[i].status == status) t = g_recs[i].t_ms;
  pthread_mutex_unlock(&g_mu);
  return t;
}

/* First run: three rows go through, then 503 + Retry-After: 2 and a
 * stop once that failure is recorded. Returns the 503's time. */
static int64_t restart_first_run(env *e) {
  CHECK_INT(env_start(e), 0);
  if (!e->n) return -1;
  CHECK_INT(add_rows(e, 10, 0, 0), 0);
  CHECK(wait_delivered(e, 3, 5000));
  atomic_store(&g_mode, RCV_503);
  int64_t t503 = -1;
  for (int t = 0; t < 500 && t503 < 0; t++) {
    if (q_int("SELECT count(*) FROM outbox WHERE last_error='HTTP 503'") > 0)
      t503 = first_with_status(503, 0);
    else
      sleep_ms(10);
  }
  CHECK(t503 > 0);
  sd_notify_stats s = stats(e);
  CHECK(s.delivered_total >= 3 && s.delivered_total < 10);
  CHECK_INT(s.outbox_pending, 10 - s.delivered_total);
  env_stop(e);
  return t503;
}

static void test_restart(void) {
  env e;
  env_config(&e, 10);
  rec_reset();
  atomic_store(&g_mode, RCV_OK);
  atomic_store(&g_delay_ms, 30);
  int64_t t503 = restart_first_run(&e);
  atomic_store(&g_mode, RCV_OK);
  atomic_store(&g_delay_ms, 0);
  int before = nrec();
  if (env_start(&e) < 0) {
    CHECK(0);
    return;
  }
  int64_t pending = q_int("SELECT count(*) FROM outbox WHERE delivered_at "
                          "IS NULL AND gave_up_at IS NULL");
  CHECK(pending > 0 && pending <= 7);
  CHECK(wait_delivered(&e, pending, 8000));
  int64_t first = first_with_status(200, before);
  fprintf(stderr, "test_notify: resumed %lld ms after the 503\n",
          (long long)(first - t503));
  CHECK(t503 > 0 && first - t503 >= 1950); /* next_at survived */
  int64_t all[10];
  for (int i = 0; i < 10; i++) all[i] = i + 1;
  check_order("/alerts", all, 10, 0); /* at-least-once, in order */
  pthread_mutex_lock(&g_mu);
  for (int i = 0; i < g_nrec; i++) check_record(&g_recs[i], 0);
  pthread_mutex_unlock(&g_mu);
  sd_notify_stats s = stats(&e);
  CHECK_INT(s.outbox_pending, 0);
  CHECK_INT(s.delivered_total, pending);
  CHECK_INT(q_int("SELECT count(*) FROM outbox WHERE delivered_at IS NULL"), 0);
  env_stop(&e);
  env_remove(&e);
}

/* A stop while a request is in flight abandons it at once; the next start
 * sends that row again (the receiver may see it twice: at-least-once). */
static void test_restart_in_flight(void) {
  env e;
  env_config(&e, 10);
  rec_reset();
  atomic_store(&g_mode, RCV_OK);
  atomic_store(&g_delay_ms, 1500);
  CHECK_INT(env_start(&e), 0);
  if (!e.n) return;
  CHECK_INT(add_rows(&e, 2, 0, 0), 0);
  for (int t = 0; t < 300 && nrec() == 0; t++) sleep_ms(10);
  CHECK_INT(stats(&e).in_flight, 1);
  int64_t t0 = mono_ms();
  env_stop(&e);
  CHECK(mono_ms() - t0 < 1000); /* did not wait for the slow receiver */
  atomic_store(&g_delay_ms, 0);
  CHECK_INT(env_start(&e), 0);
  if (!e.n) return;
  CHECK(wait_delivered(&e, 2, 5000));
  int64_t all[] = {1, 2};
  check_order("/alerts", all, 2, 0);
  CHECK_INT(q_int("SELECT count(*) FROM outbox WHERE delivered_at IS NULL"), 0);
  env_stop(&e);
  sleep_ms(1600); /* the abandoned reply finishes before the end */
  CHECK(nrec() >= 3);
  env_remove(&e);
}

/* ---- signatures alone ---- */

static void test_sign(void) {
  /* computed independently:
   * printf '1700000000.{}' | openssl dgst -sha256 -hmac key */
  char hex[65];
  CHECK_INT(sd_notify_sign("key", "1700000000", "{}", 2, hex), 0);
  CHECK_STR(hex,
            "9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae");
  char again[65];
  CHECK_INT(sd_notify_sign("key", "1700000000", "{}", 2, again), 0);
  CHECK_STR(hex, again);
  CHECK_INT(sd_notify_sign("key", "1700000001", "{}", 2, again), 0);
  CHECK(strcmp(hex, again) != 0);
  char hdr[80];
  snprintf(hdr, sizeof hdr, "sha256=%s", hex);
  CHECK(sd_notify_verify("key", "1700000000", "{}", 2, hdr));
  CHECK(!sd_notify_verify("key", "1700000000", "{ }", 3, hdr));
  CHECK(!sd_notify_verify("key", "1700000000", "{}", 2, hex));
  CHECK(!sd_notify_verify("key", "1700000000", "{}", 2, NULL));
}

int main(void) {
  sd_log_set_level("warn");
  struct MHD_Daemon *d = receiver_start();
  CHECK(d != NULL && g_port > 0);
  if (!d) return check_done("test_notify");
  int64_t t0 = mono_ms();
  test_sign();
  test_add_prune();
  test_refusals();
  test_give_up();
  test_restart();
  test_restart_in_flight();
  fprintf(stderr, "test_notify: %lld ms\n", (long long)(mono_ms() - t0));
  MHD_stop_daemon(d);
  rec_reset();
  return check_done("test_notify");
}
