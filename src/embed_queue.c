/*
 * embed_queue.c -- the embedding queue's thread (embed_queue.h).
 *
 * The thread owns every batch it reads: a batch is either waiting (the
 * ready list, each with the time it may go again), in flight (an HTTP
 * request on the multi handle), or committing (a writer job). The writer's
 * done callback moves a committing batch to the done list and wakes the
 * thread with curl_multi_wakeup(), which is also how new texts and stop
 * requests reach it. Rows are read with the thread's own read connection,
 * in seq order from a cursor; a text is read once per run, and a restart
 * reads whatever is still queued.
 */
#include "segmentd/embed_queue.h"

#include "segmentd/embed_remote.h"
#include "segmentd/err.h"
#include "segmentd/log.h"
#include "segmentd/rng.h"
#include "segmentd/store.h"
#include "segmentd/timeutil.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOCAL_INFLIGHT 2     /* built-in re-embed: writer jobs at once */
#define WRITER_BUSY_MS 20    /* writer queue full: try again after */
#define POLL_MAX_MS 1000

typedef struct {
  int64_t seq, rowid, ts;
  char *text_id, *user_id, *text; /* one allocation, at text_id */
  size_t len;
} eq_item;

typedef struct eq_batch {
  eq_item *items;
  size_t n;
  int attempts;       /* failed tries in a row */
  int64_t due;        /* epoch ms it may go (again) */
  int embedded;       /* vecs hold its embeddings (a writer retry) */
  float *vecs;        /* n x dim (remote) */
  sd_text *texts;     /* the writer job's items */
  int64_t *rowids, *seqs;
  sd_remote_req *req;
  sd_job job;
  int fail_mark;      /* the job marks the text failed instead */
  sd_embed_fail_op fail;
  char fail_error[128];
  struct eq_batch *next;
} eq_batch;

struct sd_embedq {
  const sd_config *cfg;
  sd_core *core;
  sd_remote_conf rconf;
  int remote;
  CURLM *multi;
  pthread_t thread;
  int started;
  /* worker-owned */
  eq_batch *ready;       /* waiting, oldest first */
  eq_batch *fly;         /* requests in flight */
  int flying, committing;
  int64_t cursor;        /* last embed_queue.seq read */
  int consecutive;       /* failed requests in a row */
  sd_rng rng;
  /* shared: guarded by mu */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  eq_batch *done;        /* writer jobs answered */
  int more;              /* rows may wait beyond the cursor */
  int stopping;
  sd_embedq_stats st;
};

/* ---- batches ---- */

static void batch_free(eq_batch *b) {
  if (!b) return;
  for (size_t i = 0; i < b->n; i++) free(b->items[i].text_id);
  free(b->items);
  free(b->vecs);
  free(b->texts);
  free(b->rowids);
  free(b->seqs);
  sd_remote_req_free(b->req);
  free(b);
}

static eq_batch *batch_new(size_t cap) {
  eq_batch *b = calloc(1, sizeof(*b));
  if (b && !(b->items = calloc(cap ? cap : 1, sizeof(eq_item)))) {
    free(b);
    b = NULL;
  }
  return b;
}

/* Copies one queue row (seq, rowid, text_id, user_id, text, ts). */
static int item_read(sqlite3_stmt *st, eq_item *it) {
  const char *tid = (const char *)sqlite3_column_text(st, 2);
  const char *uid = (const char *)sqlite3_column_text(st, 3);
  size_t tl = strlen(tid), ul = uid ? strlen(uid) : 0;
  size_t len = (size_t)sqlite3_column_bytes(st, 4);
  char *p = malloc(tl + ul + len + 3);
  if (!p) return SD_ENOMEM;
  it->seq = sqlite3_column_int64(st, 0);
  it->rowid = sqlite3_column_int64(st, 1);
  it->ts = sqlite3_column_int64(st, 5);
  it->text_id = p;
  memcpy(p, tid, tl + 1);
  it->user_id = uid ? p + tl + 1 : NULL;
  if (uid) memcpy(p + tl + 1, uid, ul + 1);
  it->text = p + tl + ul + 2;
  memcpy(it->text, sqlite3_column_text(st, 4), len);
  it->text[len] = 0;
  it->len = len;
  return 0;
}

static const char SQL_NEXT[] =
    "SELECT q.seq,q.text_rowid,t.text_id,t.user_id,t.text,t.ts "
    "FROM embed_queue q JOIN texts t ON t.id=q.text_rowid "
    "WHERE q.seq>?1 AND q.failed_at IS NULL ORDER BY q.seq LIMIT ?2";

/* The next batch after the cursor, or NULL (*err set on failure). */
static eq_batch *batch_read(sd_embedq *q, int *err) {
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(rd, SQL_NEXT) : NULL;
  size_t cap = (size_t)q->cfg->embed_batch;
  eq_batch *b = st ? batch_new(cap) : NULL;
  *err = !st ? SD_EDB : !b ? SD_ENOMEM : 0;
  if (*err) return NULL;
  sqlite3_bind_int64(st, 1, q->cursor);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)cap);
  int rc;
  while (*err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    if ((*err = item_read(st, &b->items[b->n])) == 0) {
      q->cursor = sqlite3_column_int64(st, 0);
      b->n++;
    }
  }
  sqlite3_reset(st);
  if (*err == 0 && rc != SQLITE_DONE) *err = SD_EDB;
  if (*err == 0 && b->n < cap) { /* drained: wait for news */
    pthread_mutex_lock(&q->mu);
    q->more = 0;
    pthread_mutex_unlock(&q->mu);
  }
  if (*err || b->n == 0) {
    batch_free(b);
    return NULL;
  }
  return b;
}

/* Two batches of the halves of b (a rejected batch narrows down to the
 * text the embedder rejects). b is consumed. */
static int batch_split(eq_batch *b, eq_batch **lo, eq_batch **hi) {
  size_t h = b->n / 2;
  *lo = batch_new(h);
  *hi = batch_new(b->n - h);
  if (!*lo || !*hi) {
    batch_free(*lo);
    batch_free(*hi);
    return SD_ENOMEM;
  }
  memcpy((*lo)->items, b->items, sizeof(eq_item) * h);
  memcpy((*hi)->items, b->items + h, sizeof(eq_item) * (b->n - h));
  (*lo)->n = h;
  (*hi)->n = b->n - h;
  (*lo)->due = (*hi)->due = b->due;
  b->n = 0; /* the items moved */
  batch_free(b);
  return 0;
}

/* ---- the ready list ---- */

static void ready_push(sd_embedq *q, eq_batch *b) {
  eq_batch **p = &q->ready;
  while (*p) p = &(*p)->next;
  b->next = NULL;
  *p = b;
}

/* The first batch whose time has come, taken off the list. */
static eq_batch *ready_take(sd_embedq *q, int64_t now) {
  for (eq_batch **p = &q->ready; *p; p = &(*p)->next) {
    if ((*p)->due > now) continue;
    eq_batch *b = *p;
    *p = b->next;
    b->next = NULL;
    return b;
  }
  return NULL;
}

static int64_t ready_next_due(const sd_embedq *q) {
  int64_t t = INT64_MAX;
  for (const eq_batch *b = q->ready; b; b = b->next)
    if (b->due < t) t = b->due;
  return t;
}

/* ---- statistics ---- */

static void note_error(sd_embedq *q, const char *fmt, const char *why,
                       int status) {
  pthread_mutex_lock(&q->mu);
  snprintf(q->st.last_error, sizeof(q->st.last_error), fmt, why, status);
  q->st.last_error_at = sd_now_ms();
  pthread_mutex_unlock(&q->mu);
}

#define STAT_ADD(q, field, v)                                                  \
  do {                                                                         \
    pthread_mutex_lock(&(q)->mu);                                              \
    (q)->st.field += (v);                                                      \
    pthread_mutex_unlock(&(q)->mu);                                            \
  } while (0)

/* ---- the circuit breaker and backoff ---- */

static void breaker_set(sd_embedq *q, int state, int64_t retry_at) {
  pthread_mutex_lock(&q->mu);
  if (state == SD_BREAKER_OPEN && q->st.breaker != SD_BREAKER_OPEN) q->st.breaker_opens++;
  q->st.breaker = state;
  q->st.breaker_retry_at = retry_at;
  pthread_mutex_unlock(&q->mu);
}

static void breaker_ok(sd_embedq *q) {
  if (q->st.breaker != SD_BREAKER_CLOSED)
    sd_log_info("embedder answers again: circuit breaker closed");
  q->consecutive = 0;
  breaker_set(q, SD_BREAKER_CLOSED, 0);
}

static void breaker_fail(sd_embedq *q, int64_t now) {
  q->consecutive++;
  if (q->st.breaker != SD_BREAKER_HALF_OPEN &&
      q->consecutive < q->cfg->embed_breaker_failures)
    return;
  int64_t until = now + q->cfg->embed_breaker_cooldown_ms;
  sd_log_warn("embedder failed %d times in a row: circuit breaker open, "
              "next probe in %ld ms", q->consecutive,
              q->cfg->embed_breaker_cooldown_ms);
  breaker_set(q, SD_BREAKER_OPEN, until);
}

/* May another request go now? */
static int breaker_allows(sd_embedq *q, int64_t now) {
  if (now < q->st.pause_until) return 0;
  if (q->st.breaker == SD_BREAKER_OPEN) {
    if (now < q->st.breaker_retry_at) return 0;
    breaker_set(q, SD_BREAKER_HALF_OPEN, 0);
  }
  if (q->st.breaker == SD_BREAKER_HALF_OPEN) return q->flying == 0;
  return q->flying < q->cfg->embed_inflight;
}

/* Exponential backoff with jitter: uniform in [d/2, d], d doubling from
 * --embed-backoff-ms up to --embed-backoff-max-ms; never sooner than the
 * server's Retry-After. */
static int64_t backoff_ms(sd_embedq *q, int attempts, long retry_after) {
  double d = (double)q->cfg->embed_backoff_ms;
  for (int i = 1; i < attempts && d < (double)q->cfg->embed_backoff_max_ms; i++)
    d *= 2;
  if (d > (double)q->cfg->embed_backoff_max_ms)
    d = (double)q->cfg->embed_backoff_max_ms;
  int64_t wait = (int64_t)(d / 2 + sd_rng_unit(&q->rng) * d / 2);
  return wait > retry_after ? wait : retry_after;
}

/* ---- handing batches to the writer ---- */

static void job_done(sd_job *job, void *ud) {
  eq_batch *b = (eq_batch *)((char *)job - offsetof(eq_batch, job));
  sd_embedq *q = ud;
  pthread_mutex_lock(&q->mu);
  b->next = q->done;
  q->done = b;
  pthread_cond_signal(&q->cv);
  pthread_mutex_unlock(&q->mu);
  curl_multi_wakeup(q->multi);
}

/* Builds b's SD_BATCH_EMBED job (vectors: b->vecs, or NULL for the
 * built-in encoder on the writer). */
static int job_build(sd_embedq *q, eq_batch *b) {
  if (!b->texts) {
    b->texts = calloc(b->n, sizeof(sd_text));
    b->rowids = calloc(b->n, sizeof(int64_t));
    b->seqs = calloc(b->n, sizeof(int64_t));
    if (!b->texts || !b->rowids || !b->seqs) return SD_ENOMEM;
  }
  for (size_t i = 0; i < b->n; i++) {
    const eq_item *it = &b->items[i];
    b->texts[i] = (sd_text){it->text_id, it->user_id, it->text, it->len, it->ts,
                            b->vecs ? b->vecs + i * (size_t)q->cfg->dim : NULL};
    b->rowids[i] = it->rowid;
    b->seqs[i] = it->seq;
  }
  memset(&b->job, 0, sizeof(b->job));
  b->job.batch = (sd_batch){.kind = SD_BATCH_EMBED, .n = b->n,
                            .texts = b->texts, .rowids = b->rowids,
                            .seqs = b->seqs};
  return 0;
}

/* Marks b's only text failed, as a writer fn job. */
static void job_build_fail(eq_batch *b, const char *why) {
  snprintf(b->fail_error, sizeof(b->fail_error), "%s", why);
  b->seqs = b->seqs ? b->seqs : calloc(1, sizeof(int64_t));
  memset(&b->job, 0, sizeof(b->job));
  b->fail_mark = 1;
  b->fail = (sd_embed_fail_op){b->seqs, b->seqs ? 1 : 0, b->attempts,
                               b->fail_error};
  if (b->seqs) b->seqs[0] = b->items[0].seq;
  b->job.fn = sd_core_op_embed_failed;
  b->job.fn_arg = &b->fail;
  b->job.quiet = 1;
}

/* Submits b's job; a full writer queue sends it back to wait a little. */
static void job_submit(sd_embedq *q, eq_batch *b, int64_t now) {
  b->job.done = job_done;
  b->job.ud = q;
  int rc = sd_core_submit(q->core, &b->job);
  if (rc == 0) {
    q->committing++;
  } else if (rc == SD_EBUSY) {
    b->due = now + WRITER_BUSY_MS;
    ready_push(q, b);
  } else { /* stopping: the texts stay queued for the next start */
    batch_free(b);
  }
}

/* A batch the writer answered. */
static void writer_answered(sd_embedq *q, eq_batch *b, int64_t now) {
  q->committing--;
  if (b->job.rc == 0) {
    pthread_mutex_lock(&q->mu);
    if (b->fail_mark) q->st.texts_failed += (int64_t)b->fail.n;
    else q->st.texts_embedded += (int64_t)b->job.accepted;
    q->st.duplicates += (int64_t)b->job.duplicates;
    pthread_mutex_unlock(&q->mu);
    batch_free(b);
    return;
  }
  sd_log_warn("storing %zu embedded texts failed (%s): retrying",
              b->n, sd_err_message(b->job.rc));
  b->embedded = !b->fail_mark && b->vecs != NULL;
  b->fail_mark = 0;
  b->due = now + backoff_ms(q, ++b->attempts, 0);
  ready_push(q, b);
}

/* ---- remote requests ---- */

/* Starts b's request on the multi handle. */
static int request_start(sd_embedq *q, eq_batch *b) {
  const char **texts = malloc(sizeof(char *) * b->n);
  size_t *lens = malloc(sizeof(size_t) * b->n);
  sd_remote_status st;
  int rc = texts && lens ? 0 : SD_ENOMEM;
  for (size_t i = 0; i < b->n && rc == 0; i++) {
    texts[i] = b->items[i].text;
    lens[i] = b->items[i].len;
  }
  if (rc == 0) rc = sd_remote_req_new(&q->rconf, texts, lens, b->n, &b->req, &st);
  free(texts);
  free(lens);
  if (rc == 0 && !b->vecs &&
      !(b->vecs = malloc(sizeof(float) * b->n * (size_t)q->cfg->dim)))
    rc = SD_ENOMEM;
  if (rc == 0) {
    CURL *h = sd_remote_req_handle(b->req);
    curl_easy_setopt(h, CURLOPT_PRIVATE, b);
    if (curl_multi_add_handle(q->multi, h) != CURLM_OK) rc = SD_EINTERNAL;
  }
  if (rc < 0) {
    sd_remote_req_free(b->req);
    b->req = NULL;
    return rc;
  }
  q->flying++;
  b->next = q->fly;
  q->fly = b;
  STAT_ADD(q, requests, 1);
  return 0;
}

/* HTTP 400, 413 and 422 reject what was sent; anything else (timeouts,
 * 401/403, 429, 5xx, replies of the wrong shape) is the embedder's
 * trouble and is retried as it is. */
static int rejected(const sd_remote_status *st) {
  return st->http_status == 400 || st->http_status == 413 ||
         st->http_status == 422;
}

static void count_failure(sd_embedq *q, int rc, const sd_remote_status *st) {
  pthread_mutex_lock(&q->mu);
  q->st.requests_failed++;
  if (rc == SD_EBUSY) q->st.busy++;
  else if (rc == SD_ENOTREADY && strstr(st->err, "imeout")) q->st.timeouts++;
  else if (rc == SD_ENOTREADY) q->st.transport++;
  else if (st->http_status != 200) q->st.http_errors++;
  else q->st.bad_replies++;
  pthread_mutex_unlock(&q->mu);
  note_error(q, "%s (HTTP %d)", st->err, st->http_status);
}

/* A rejected batch: halves retried now; a single text, after backoff,
 * until --embed-retries attempts mark it failed. */
static void on_rejected(sd_embedq *q, eq_batch *b, const sd_remote_status *st,
                        int64_t now) {
  eq_batch *lo, *hi;
  if (b->n > 1 && batch_split(b, &lo, &hi) == 0) {
    STAT_ADD(q, splits, 1);
    ready_push(q, lo);
    ready_push(q, hi);
    return;
  }
  if (b->n > 1 || ++b->attempts < q->cfg->embed_retries) {
    b->due = now + backoff_ms(q, b->attempts, 0);
    ready_push(q, b);
    return;
  }
  sd_log_warn("the embedder rejected text %s %d times (%s): marked failed",
              b->items[0].text_id, b->attempts, st->err);
  job_build_fail(b, st->err);
  job_submit(q, b, now);
}

/* One finished transfer. */
static void request_done(sd_embedq *q, CURL *h, CURLcode cc, int64_t now) {
  eq_batch *b = NULL;
  curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&b);
  curl_multi_remove_handle(q->multi, h);
  q->flying--;
  for (eq_batch **p = &q->fly; *p; p = &(*p)->next)
    if (*p == b) {
      *p = b->next;
      break;
    }
  sd_remote_status st;
  int rc = sd_remote_req_finish(b->req, (int)cc, b->vecs, &st);
  sd_remote_req_free(b->req);
  b->req = NULL;
  if (rc == 0) {
    breaker_ok(q);
    b->attempts = 0;
    if (job_build(q, b) == 0) job_submit(q, b, now);
    else batch_free(b); /* out of memory: read again at the next start */
    return;
  }
  count_failure(q, rc, &st);
  if (rejected(&st)) {
    on_rejected(q, b, &st, now);
    return;
  }
  if (st.retry_after_ms > 0) {
    pthread_mutex_lock(&q->mu);
    q->st.pause_until = now + st.retry_after_ms;
    pthread_mutex_unlock(&q->mu);
  }
  sd_log_warn("embedding %zu texts failed: %s (HTTP %d); retrying", b->n,
              st.err, st.http_status);
  breaker_fail(q, now);
  b->due = now + backoff_ms(q, ++b->attempts, st.retry_after_ms);
  STAT_ADD(q, retries, 1);
  ready_push(q, b);
}

/* ---- the thread ---- */

/* Sends waiting batches (retries first, then new rows) while there is
 * room: requests in flight, or writer jobs for the built-in encoder. */
static void fill(sd_embedq *q, int64_t now) {
  for (;;) {
    int room = q->remote ? breaker_allows(q, now)
                         : q->committing < LOCAL_INFLIGHT;
    if (!room) return;
    eq_batch *b = ready_take(q, now);
    int err = 0;
    pthread_mutex_lock(&q->mu);
    int more = q->more;
    pthread_mutex_unlock(&q->mu);
    if (!b && more) b = batch_read(q, &err);
    if (err) sd_log_error("reading the embedding queue failed: %s",
                          sd_err_message(err));
    if (!b) return;
    if (!q->remote || b->embedded) {
      if (job_build(q, b) == 0) job_submit(q, b, now);
      else batch_free(b);
    } else if (request_start(q, b) < 0) {
      b->due = now + backoff_ms(q, ++b->attempts, 0);
      ready_push(q, b);
      return;
    }
  }
}

/* Writer answers and finished transfers. */
static void drain(sd_embedq *q, int64_t now) {
  pthread_mutex_lock(&q->mu);
  eq_batch *d = q->done;
  q->done = NULL;
  pthread_mutex_unlock(&q->mu);
  while (d) {
    eq_batch *next = d->next;
    writer_answered(q, d, now);
    d = next;
  }
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(q->multi, &left)))
    if (m->msg == CURLMSG_DONE) request_done(q, m->easy_handle, m->data.result, now);
}

/* How long to sleep: until the next retry or probe is due, at most
 * POLL_MAX_MS (wake-ups cut it short). */
static int poll_ms(const sd_embedq *q, int64_t now) {
  int room = q->remote ? q->flying < q->cfg->embed_inflight
                       : q->committing < LOCAL_INFLIGHT;
  int64_t t = room ? ready_next_due(q) : INT64_MAX;
  if (q->remote && q->st.breaker == SD_BREAKER_OPEN && q->st.breaker_retry_at < t)
    t = q->st.breaker_retry_at;
  if (q->remote && q->st.pause_until > now && q->st.pause_until < t)
    t = q->st.pause_until;
  int64_t d = t - now;
  return d < 0 ? 0 : d > POLL_MAX_MS ? POLL_MAX_MS : (int)d;
}

static int stopping(sd_embedq *q) {
  pthread_mutex_lock(&q->mu);
  int s = q->stopping;
  pthread_mutex_unlock(&q->mu);
  return s;
}

/* Abandons transfers, waits for the writer's answers, frees the rest. */
static void wind_down(sd_embedq *q) {
  while (q->fly) {
    eq_batch *b = q->fly;
    q->fly = b->next;
    curl_multi_remove_handle(q->multi, sd_remote_req_handle(b->req));
    q->flying--;
    batch_free(b);
  }
  pthread_mutex_lock(&q->mu);
  while (q->committing > 0) {
    while (!q->done) pthread_cond_wait(&q->cv, &q->mu);
    eq_batch *b = q->done;
    q->done = b->next;
    q->committing--;
    batch_free(b);
  }
  pthread_mutex_unlock(&q->mu);
  while (q->ready) {
    eq_batch *b = q->ready;
    q->ready = b->next;
    batch_free(b);
  }
}

static void *embedq_main(void *arg) {
  sd_embedq *q = arg;
  sd_store_reader_for_scans();
  while (!stopping(q)) {
    int64_t now = sd_now_ms();
    drain(q, now);
    fill(q, now);
    pthread_mutex_lock(&q->mu);
    q->st.in_flight = q->flying;
    pthread_mutex_unlock(&q->mu);
    int running = 0;
    curl_multi_perform(q->multi, &running);
    curl_multi_poll(q->multi, NULL, 0, poll_ms(q, sd_now_ms()), NULL);
    curl_multi_perform(q->multi, &running);
  }
  wind_down(q);
  return NULL;
}

/* ---- lifecycle ---- */

static void on_pending(void *ud) {
  sd_embedq *q = ud;
  pthread_mutex_lock(&q->mu);
  q->more = 1;
  pthread_mutex_unlock(&q->mu);
  curl_multi_wakeup(q->multi);
}

int sd_embedq_start(const sd_config *cfg, sd_core *core, sd_embedq **out,
                    char *msg, size_t msglen) {
  sd_embedq *q = calloc(1, sizeof(*q));
  *out = NULL;
  if (!q) return SD_ENOMEM;
  q->cfg = cfg;
  q->core = core;
  q->remote = sd_config_remote(cfg);
  q->rconf = (sd_remote_conf){cfg->embed_url, cfg->embed_model,
                              cfg->embed_api_key, (int)cfg->dim,
                              (int)cfg->embed_timeout_ms,
                              !strcmp(cfg->embed_encoding, "base64")};
  q->more = 1;
  sd_rng_init(&q->rng, (uint64_t)sd_now_ms());
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->cv, NULL);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  q->multi = curl_multi_init();
  if (!q->multi || pthread_create(&q->thread, NULL, embedq_main, q) != 0) {
    snprintf(msg, msglen, "cannot start the embedding queue");
    sd_embedq_free(q);
    return SD_EINTERNAL;
  }
  q->started = 1;
  sd_core_on_pending(core, on_pending, q);
  *out = q;
  return 0;
}

void sd_embedq_stop(sd_embedq *q) {
  if (!q || !q->started) return;
  pthread_mutex_lock(&q->mu);
  q->stopping = 1;
  pthread_mutex_unlock(&q->mu);
  curl_multi_wakeup(q->multi);
  pthread_join(q->thread, NULL);
  q->started = 0;
  sd_core_on_pending(q->core, NULL, NULL);
}

void sd_embedq_free(sd_embedq *q) {
  if (!q) return;
  sd_embedq_stop(q);
  if (q->multi) curl_multi_cleanup(q->multi);
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->cv);
  free(q);
}

/* ---- figures ---- */

double sd_embedq_oldest_pending(void) {
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(rd, "SELECT received_at FROM embed_queue "
                                            "WHERE failed_at IS NULL ORDER BY seq "
                                            "LIMIT 1")
                        : NULL;
  if (!st) return -1;
  int rc = sqlite3_step(st);
  double age = rc == SQLITE_ROW
                   ? (double)(sd_now_ms() - sqlite3_column_int64(st, 0)) / 1e3
                   : 0;
  sqlite3_reset(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? age : -1;
}

void sd_embedq_get_stats(sd_embedq *q, sd_embedq_stats *out) {
  memset(out, 0, sizeof(*out));
  if (!q) return;
  pthread_mutex_lock(&q->mu);
  *out = q->st;
  pthread_mutex_unlock(&q->mu);
}

static const char *breaker_name(int s) {
  return s == SD_BREAKER_OPEN ? "open" : s == SD_BREAKER_HALF_OPEN ? "half_open" : "closed";
}

static json_t *stats_json(sd_embedq *q) {
  sd_embedq_stats s;
  sd_embedq_get_stats(q, &s);
  return json_pack(
      "{s:i,s:I,s:I,s:I,s:I,s:{s:I,s:I,s:I,s:I,s:I},s:I,s:I,s:{s:s,s:I},s:s?}",
      "in_flight", s.in_flight, "requests", (json_int_t)s.requests,
      "requests_failed", (json_int_t)s.requests_failed, "retries",
      (json_int_t)s.retries, "splits", (json_int_t)s.splits, "failures",
      "timeout", (json_int_t)s.timeouts, "busy", (json_int_t)s.busy, "http",
      (json_int_t)s.http_errors, "bad_reply", (json_int_t)s.bad_replies,
      "transport", (json_int_t)s.transport, "texts_embedded",
      (json_int_t)s.texts_embedded, "duplicate_replies",
      (json_int_t)s.duplicates, "breaker", "state", breaker_name(s.breaker),
      "opens", (json_int_t)s.breaker_opens, "last_error",
      s.last_error[0] ? s.last_error : NULL);
}

json_t *sd_embedq_json(sd_embedq *q, const sd_core *core) {
  int64_t pending, failed;
  sd_core_embed_counts(core, &pending, &failed);
  json_t *o = q ? stats_json(q) : json_object();
  if (!o) return NULL;
  json_object_set_new(o, "pending", json_integer(pending));
  json_object_set_new(o, "failed", json_integer(failed));
  double age = pending > 0 ? sd_embedq_oldest_pending() : 0;
  json_object_set_new(o, "oldest_pending_seconds",
                      age >= 0 ? json_real(age) : json_null());
  return o;
}

int sd_embedq_embed_one(sd_embedq *q, const char *text, size_t len,
                        float *out, char *err, size_t errlen) {
  pthread_mutex_lock(&q->mu);
  int open = q->st.breaker == SD_BREAKER_OPEN;
  pthread_mutex_unlock(&q->mu);
  if (open) {
    snprintf(err, errlen, "the embedder is failing (circuit breaker open)");
    return SD_ENOTREADY;
  }
  sd_remote_status st;
  int rc = sd_remote_embed(&q->rconf, &text, &len, 1, out, &st);
  if (rc < 0) snprintf(err, errlen, "the embedder failed: %s", st.err);
  return rc;
}
