/*
 * notify.c -- the webhook outbox (notify.h): rows added on the writer, and
 * the notifier thread that delivers them.
 *
 * The thread keeps, per stream, at most one delivery: the stream's head
 * (its lowest pending id), read with the thread's own read connection.
 * A stream is idle (no head; read it at `at`), waiting (the head may go
 * at `at`), flying (its request is on the libcurl multi handle), marking
 * (a writer fn job records the outcome) or submitting (the writer queue
 * was full; submit again at `at`). Only a committed mark moves a stream
 * on, which is what keeps each stream in id order. The writer's done
 * callback flags the stream and wakes the thread with curl_multi_wakeup(),
 * which is also how kicks and stop requests reach it.
 *
 * Memory: the thread owns each delivery (row copy, request body, header
 * list, easy handle) from the read of its row until its mark is answered;
 * the writer only reads a delivery while its job runs. Pending counts:
 * the rows pending at start (id <= the max id then), plus every row with
 * a higher id seen since, minus the rows marked delivered or given up.
 */
#include "segmentd/notify.h"

#include "segmentd/err.h"
#include "segmentd/log.h"
#include "segmentd/rng.h"
#include "segmentd/store.h"
#include "segmentd/timeutil.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WRITER_BUSY_MS 20     /* writer queue full: submit again after */
#define WRITER_FAIL_MS 1000   /* a failed mark: read the row again after */
#define POLL_MAX_MS 1000      /* new rows are found at least this often */
#define RETRY_AFTER_MAX_MS 86400000L /* a longer Retry-After is clamped */
#define NT_ERR 128

enum { NT_IDLE, NT_WAIT, NT_FLY, NT_MARK, NT_SUBMIT };
enum { OUT_DELIVERED, OUT_RETRY, OUT_GAVE_UP };

typedef struct {
  int64_t id, created_at;
  int attempts;            /* requests made, as stored, plus this run's */
  int stream;              /* SD_NOTIFY_* */
  char *event, *payload;   /* copies of the row */
  char *body;              /* the envelope, built on first send */
  CURL *h;                 /* the request in flight, or NULL */
  struct curl_slist *hdr;
  sd_job job;              /* the mark */
  int outcome;             /* OUT_* */
  int64_t at, next_at;     /* the mark's time, and the next attempt's */
  char error[NT_ERR];      /* the failed attempt's reason ("" none) */
} nt_delivery;

typedef struct {
  const char *name, *url;  /* url NULL: the stream is off */
  int state;               /* NT_* */
  int64_t at;              /* epoch ms of the next step (idle, wait, submit) */
  nt_delivery *d;
} nt_stream;

struct sd_notify {
  const sd_config *cfg;
  sd_core *core;
  CURLM *multi;
  pthread_t thread;
  int started;
  /* thread-owned */
  nt_stream s[SD_NOTIFY_STREAMS];
  int64_t max_seen;        /* highest outbox id counted */
  int64_t scan_at;         /* next count of new rows without a kick */
  int committing;          /* marks submitted and not answered */
  int counted, warned;     /* the pending rows at start were counted */
  sd_rng rng;
  /* shared: guarded by mu */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  unsigned answered;       /* bit i: stream i's mark was answered */
  int kicked, stopping;
  sd_notify_stats st;
};

static const char *const stream_names[SD_NOTIFY_STREAMS] = {"alerts",
                                                            "segments"};

/* ---- rows (the writer's side) ---- */

static int stream_index(const char *name) {
  for (int i = 0; name && i < SD_NOTIFY_STREAMS; i++)
    if (!strcmp(name, stream_names[i])) return i;
  return -1;
}

/* The stream's URL, NULL when it is not configured. */
static const char *stream_url(const sd_config *cfg, int i) {
  const char *u = i == SD_NOTIFY_ALERTS ? cfg->webhook_url
                                        : cfg->segments_webhook_url;
  return u && u[0] ? u : NULL;
}

/* 1..SD_OUTBOX_MAX_EVENT bytes of [A-Za-z0-9._-]: safe in a header. */
static int event_ok(const char *e) {
  size_t n = 0;
  for (; e && e[n]; n++) {
    char ch = e[n];
    int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
             (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
    if (!ok || n >= SD_OUTBOX_MAX_EVENT) return 0;
  }
  return n > 0;
}

int sd_outbox_add(const sd_config *cfg, struct sd_store *db,
                  const char *stream, const char *event, const char *payload,
                  int64_t now_ms) {
  int i = stream_index(stream);
  if (i < 0 || !event_ok(event) || !payload) return SD_EINVAL;
  if (!stream_url(cfg, i)) return 0;
  size_t len = strlen(payload);
  if (len > SD_OUTBOX_MAX_PAYLOAD) return SD_EINVAL;
  json_t *j = json_loadb(payload, len, JSON_DECODE_ANY, NULL);
  if (!j) return SD_EINVAL;
  json_decref(j);
  sqlite3_stmt *st = sd_store_stmt(
      db, "INSERT INTO outbox(stream,event,payload,created_at,next_at) "
          "VALUES(?1,?2,?3,?4,?4)");
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, stream_names[i], -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, event, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, payload, (int)len, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 4, now_ms);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : SD_EDB;
}

int sd_outbox_prune(struct sd_store *db, int64_t before_ms, int64_t *deleted) {
  sqlite3_stmt *st = sd_store_stmt(
      db, "DELETE FROM outbox WHERE delivered_at<?1 OR gave_up_at<?1");
  if (deleted) *deleted = 0;
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, before_ms);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) return SD_EDB;
  if (deleted) *deleted = sqlite3_changes(sd_store_db(db));
  return 0;
}

/* Records a delivery's outcome: the fn of its writer job. */
static int op_mark(sd_core *c, void *arg) {
  const nt_delivery *d = arg;
  sqlite3_stmt *st = sd_store_stmt(
      sd_core_db(c), "UPDATE outbox SET attempts=?2,next_at=?3,"
                     "last_error=coalesce(?4,last_error),delivered_at=?5,"
                     "gave_up_at=?6 WHERE id=?1");
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, d->id);
  sqlite3_bind_int(st, 2, d->attempts);
  sqlite3_bind_int64(st, 3, d->outcome == OUT_RETRY ? d->next_at : d->at);
  if (d->error[0]) sqlite3_bind_text(st, 4, d->error, -1, SQLITE_STATIC);
  if (d->outcome == OUT_DELIVERED) sqlite3_bind_int64(st, 5, d->at);
  if (d->outcome == OUT_GAVE_UP) sqlite3_bind_int64(st, 6, d->at);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : SD_EDB;
}

/* ---- statistics ---- */

#define STAT_ADD(n, i, field, v)                                               \
  do {                                                                         \
    pthread_mutex_lock(&(n)->mu);                                              \
    (n)->st.streams[i].field += (v);                                           \
    pthread_mutex_unlock(&(n)->mu);                                            \
  } while (0)

static void stat_set(sd_notify *n, int i, int in_flight, int64_t oldest) {
  pthread_mutex_lock(&n->mu);
  n->st.streams[i].in_flight = in_flight;
  if (oldest >= 0) n->st.streams[i].oldest_pending_at = oldest;
  pthread_mutex_unlock(&n->mu);
}

static void note_error(sd_notify *n, const nt_delivery *d) {
  pthread_mutex_lock(&n->mu);
  snprintf(n->st.last_error, sizeof(n->st.last_error), "delivery %lld: %s",
           (long long)d->id, d->error);
  n->st.last_error_at = sd_now_ms();
  pthread_mutex_unlock(&n->mu);
}

/* ---- reading the outbox (the thread's read connection) ---- */

/* Pending rows with id <= the max id, per stream, and that max id; the
 * figures change only when both reads succeed (a failure is retried). */
static int counts_init(sd_notify *n) {
  int64_t k[SD_NOTIFY_STREAMS] = {0}, top = 0;
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(rd, "SELECT coalesce(max(id),0) "
                                            "FROM outbox") : NULL;
  int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
  if (rc == SQLITE_ROW) top = sqlite3_column_int64(st, 0);
  if (st) sqlite3_reset(st);
  st = rc == SQLITE_ROW ? sd_store_stmt(
           rd, "SELECT stream,count(*) FROM outbox WHERE id<=?1 AND "
               "delivered_at IS NULL AND gave_up_at IS NULL GROUP BY stream")
                        : NULL;
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, top);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int i = stream_index((const char *)sqlite3_column_text(st, 0));
    int64_t c = sqlite3_column_int64(st, 1);
    if (i >= 0 && n->s[i].url) k[i] = c;
    else if (c > 0)
      sd_log_warn("%lld webhook deliveries of stream %s are kept: no URL "
                  "configured for it", (long long)c,
                  i >= 0 ? stream_names[i] : "(unknown)");
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) return SD_EDB;
  n->max_seen = top;
  for (int i = 0; i < SD_NOTIFY_STREAMS; i++) STAT_ADD(n, i, pending, k[i]);
  return 0;
}

/* Counts the rows added since the last count; idle streams look again. */
static void counts_scan(sd_notify *n, int64_t now) {
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(rd, "SELECT stream,count(*),max(id) "
                                            "FROM outbox WHERE id>?1 "
                                            "GROUP BY stream")
                        : NULL;
  n->scan_at = now + POLL_MAX_MS;
  for (int i = 0; i < SD_NOTIFY_STREAMS; i++)
    if (n->s[i].state == NT_IDLE && n->s[i].at > now) n->s[i].at = now;
  if (!st) return;
  sqlite3_bind_int64(st, 1, n->max_seen);
  int64_t top = n->max_seen;
  while (sqlite3_step(st) == SQLITE_ROW) {
    int i = stream_index((const char *)sqlite3_column_text(st, 0));
    if (i >= 0 && n->s[i].url) STAT_ADD(n, i, pending, sqlite3_column_int64(st, 1));
    if (sqlite3_column_int64(st, 2) > top) top = sqlite3_column_int64(st, 2);
  }
  sqlite3_reset(st);
  n->max_seen = top;
}

static void delivery_free(nt_delivery *d) {
  if (!d) return;
  curl_slist_free_all(d->hdr);
  if (d->h) curl_easy_cleanup(d->h);
  free(d->event);
  free(d->payload);
  free(d->body);
  free(d);
}

/* A copy of the current row of st (id, event, payload, created_at,
 * attempts, next_at); NULL on out of memory. */
static nt_delivery *delivery_read(sqlite3_stmt *st, int stream) {
  nt_delivery *d = calloc(1, sizeof(*d));
  const char *ev = (const char *)sqlite3_column_text(st, 1);
  const char *pl = (const char *)sqlite3_column_text(st, 2);
  if (d) {
    d->event = strdup(ev ? ev : "");
    d->payload = strdup(pl ? pl : "");
  }
  if (!d || !d->event || !d->payload) {
    delivery_free(d);
    return NULL;
  }
  d->stream = stream;
  d->id = sqlite3_column_int64(st, 0);
  d->created_at = sqlite3_column_int64(st, 3);
  d->attempts = sqlite3_column_int(st, 4);
  d->next_at = sqlite3_column_int64(st, 5);
  return d;
}

/* Loads stream i's head: the stream waits for it, or stays idle (none,
 * or an error: read again later). */
static void head_read(sd_notify *n, int i, int64_t now) {
  nt_stream *s = &n->s[i];
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(
      rd, "SELECT id,event,payload,created_at,attempts,next_at FROM outbox "
          "WHERE stream=?1 AND delivered_at IS NULL AND gave_up_at IS NULL "
          "ORDER BY id LIMIT 1") : NULL;
  if (!st) {
    s->at = now + WRITER_FAIL_MS;
    return;
  }
  sqlite3_bind_text(st, 1, s->name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  s->d = rc == SQLITE_ROW ? delivery_read(st, i) : NULL;
  sqlite3_reset(st);
  if (s->d) {
    s->state = NT_WAIT;
    s->at = s->d->next_at;
    stat_set(n, i, 0, s->d->created_at);
  } else if (rc == SQLITE_DONE) {
    s->at = INT64_MAX; /* until a kick or the next scan */
    stat_set(n, i, 0, 0);
  } else {
    sd_log_error("reading the webhook outbox failed");
    s->at = now + WRITER_FAIL_MS;
  }
}

/* ---- recording outcomes through the writer ---- */

static void job_done(sd_job *job, void *ud) {
  nt_delivery *d = (nt_delivery *)((char *)job - offsetof(nt_delivery, job));
  sd_notify *n = ud;
  pthread_mutex_lock(&n->mu);
  n->answered |= 1u << d->stream;
  pthread_cond_signal(&n->cv);
  pthread_mutex_unlock(&n->mu);
  curl_multi_wakeup(n->multi);
}

/* Submits the stream's mark; a full writer queue tries again shortly. */
static void mark_submit(sd_notify *n, nt_stream *s, int64_t now) {
  nt_delivery *d = s->d;
  memset(&d->job, 0, sizeof(d->job));
  d->job.fn = op_mark;
  d->job.quiet = 1; /* delivery marks change nothing readers see */
  d->job.fn_arg = d;
  d->job.done = job_done;
  d->job.ud = n;
  int rc = sd_core_submit(n->core, &d->job);
  if (rc == 0) {
    s->state = NT_MARK;
    n->committing++;
  } else if (rc == SD_EBUSY) {
    s->state = NT_SUBMIT;
    s->at = now + WRITER_BUSY_MS;
  } else { /* stopping: the row is read again at the next start */
    delivery_free(d);
    s->d = NULL;
    s->state = NT_IDLE;
    s->at = INT64_MAX;
  }
}

/* Stream i's mark was answered: on to the next row, or wait to retry. */
static void mark_answered(sd_notify *n, int i, int64_t now) {
  nt_stream *s = &n->s[i];
  nt_delivery *d = s->d;
  n->committing--;
  if (d->job.rc == 0 && d->outcome == OUT_RETRY) {
    s->state = NT_WAIT;
    s->at = d->next_at;
    return;
  }
  if (d->job.rc == 0) {
    pthread_mutex_lock(&n->mu);
    if (d->outcome == OUT_DELIVERED) n->st.streams[i].delivered_total++;
    else n->st.streams[i].given_up_total++;
    n->st.streams[i].pending--;
    pthread_mutex_unlock(&n->mu);
    s->at = now;
  } else {
    sd_log_warn("recording webhook delivery %lld failed (%s): reading it "
                "again", (long long)d->id, sd_err_message(d->job.rc));
    s->at = now + WRITER_FAIL_MS;
  }
  delivery_free(d);
  s->d = NULL;
  s->state = NT_IDLE;
}

/* Exponential backoff with jitter: uniform in [d/2, d], d doubling from
 * --webhook-backoff-ms up to --webhook-backoff-max-ms; never sooner than
 * retry_after_ms. */
static int64_t backoff_ms(sd_notify *n, int attempts, int64_t retry_after_ms) {
  double d = (double)n->cfg->webhook_backoff_ms;
  double max = (double)n->cfg->webhook_backoff_max_ms;
  for (int i = 1; i < attempts && d < max; i++) d *= 2;
  if (d > max) d = max;
  int64_t wait = (int64_t)(d / 2 + sd_rng_unit(&n->rng) * d / 2);
  return wait > retry_after_ms ? wait : retry_after_ms;
}

/* A failed attempt (d->error says why): retry later, or give up after
 * --webhook-max-attempts (at once when the row can never be sent). */
static void attempt_failed(sd_notify *n, nt_stream *s, int64_t retry_after_ms,
                           int permanent, int64_t now) {
  nt_delivery *d = s->d;
  int i = d->stream;
  d->attempts++;
  d->at = now;
  STAT_ADD(n, i, attempts_failed_total, 1);
  note_error(n, d);
  if (permanent || d->attempts >= n->cfg->webhook_max_attempts) {
    d->outcome = OUT_GAVE_UP;
    sd_log_warn("webhook delivery %lld (%s) given up after %d attempts: %s",
                (long long)d->id, d->event, d->attempts, d->error);
  } else {
    d->outcome = OUT_RETRY;
    d->next_at = now + backoff_ms(n, d->attempts, retry_after_ms);
    sd_log_info("webhook delivery %lld (%s) failed (attempt %d): %s; next "
                "try in %lld ms", (long long)d->id, d->event, d->attempts,
                d->error, (long long)(d->next_at - now));
  }
  mark_submit(n, s, now);
}

/* ---- requests ---- */

/* The envelope {"id","stream","event","created_at","data"}; SD_EJSON when
 * the stored payload is not JSON. */
static int body_build(const nt_stream *s, nt_delivery *d) {
  json_t *data = json_loads(d->payload, JSON_DECODE_ANY, NULL);
  if (!data) return SD_EJSON;
  char created[48];
  sd_time_format(d->created_at, created);
  json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:o}", "id", (json_int_t)d->id,
                        "stream", s->name, "event", d->event, "created_at",
                        created, "data", data);
  d->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return d->body ? 0 : SD_ENOMEM;
}

/* Appends line to h; sets *bad (and leaves h as it was) on failure. */
static struct curl_slist *header_add(struct curl_slist *h, int *bad,
                                     const char *line) {
  struct curl_slist *t = *bad ? NULL : curl_slist_append(h, line);
  if (!t) *bad = 1;
  return t ? t : h;
}

/* The attempt's headers, signed when a secret is configured (the
 * signature covers this attempt's timestamp). NULL on failure. */
static struct curl_slist *headers_build(sd_notify *n, const nt_delivery *d,
                                        int64_t now) {
  char ts[24], sig[65], line[160];
  int bad = 0;
  snprintf(ts, sizeof(ts), "%lld", (long long)(now / 1000));
  struct curl_slist *h = header_add(NULL, &bad, "Content-Type: application/json");
  h = header_add(h, &bad, "Expect:");
  h = header_add(h, &bad, "User-Agent: segmentd/" SD_VERSION);
  snprintf(line, sizeof(line), "X-Segmentd-Delivery: %lld", (long long)d->id);
  h = header_add(h, &bad, line);
  snprintf(line, sizeof(line), "X-Segmentd-Event: %s", d->event);
  h = header_add(h, &bad, line);
  snprintf(line, sizeof(line), "X-Segmentd-Timestamp: %s", ts);
  h = header_add(h, &bad, line);
  const char *secret = n->cfg->webhook_secret;
  if (!bad && secret && secret[0]) {
    bad = sd_notify_sign(secret, ts, d->body, strlen(d->body), sig) < 0;
    snprintf(line, sizeof(line), "X-Segmentd-Signature: sha256=%s", sig);
    h = header_add(h, &bad, line);
  }
  if (bad) {
    curl_slist_free_all(h);
    return NULL;
  }
  return h;
}

static size_t discard(char *data, size_t size, size_t nmemb, void *ud) {
  (void)data;
  (void)ud;
  return size * nmemb;
}

/* An easy handle POSTing d's body to url. */
static CURL *handle_new(sd_notify *n, const char *url, nt_delivery *d) {
  CURL *h = curl_easy_init();
  long tmo = n->cfg->webhook_timeout_ms;
  if (!h) return NULL;
  if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
      curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK) {
    curl_easy_cleanup(h);
    return NULL;
  }
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, tmo);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, tmo);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, d->hdr);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, d->body);
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(d->body));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(h, CURLOPT_PRIVATE, d);
  return h;
}

/* Sends the stream's head; a request that cannot be made is a failed
 * attempt (a payload that is not JSON is given up at once). */
static void request_start(sd_notify *n, nt_stream *s, int64_t now) {
  nt_delivery *d = s->d;
  int rc = event_ok(d->event) ? 0 : SD_EINVAL;
  if (rc == 0 && !d->body) rc = body_build(s, d);
  if (rc == 0 && !(d->hdr = headers_build(n, d, now))) rc = SD_ENOMEM;
  if (rc == 0 && !(d->h = handle_new(n, s->url, d))) rc = SD_EINTERNAL;
  if (rc == 0 && curl_multi_add_handle(n->multi, d->h) != CURLM_OK)
    rc = SD_EINTERNAL;
  if (rc == 0) {
    s->state = NT_FLY;
    stat_set(n, d->stream, 1, -1);
    return;
  }
  if (d->h) curl_easy_cleanup(d->h);
  curl_slist_free_all(d->hdr);
  d->h = NULL;
  d->hdr = NULL;
  snprintf(d->error, sizeof(d->error), "%s",
           rc == SD_EJSON ? "the payload is not JSON"
           : rc == SD_EINVAL ? "the event name is not a token"
                             : "cannot make the request");
  attempt_failed(n, s, 0, rc == SD_EJSON || rc == SD_EINVAL, now);
}

/* One finished transfer: 2xx is delivered; anything else failed. */
static void request_done(sd_notify *n, CURL *h, CURLcode cc, int64_t now) {
  nt_delivery *d = NULL;
  long code = 0;
  curl_off_t ra = 0;
  curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&d);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) != CURLE_OK || ra < 0)
    ra = 0;
  curl_multi_remove_handle(n->multi, h);
  curl_easy_cleanup(h);
  curl_slist_free_all(d->hdr);
  d->h = NULL;
  d->hdr = NULL;
  nt_stream *s = &n->s[d->stream];
  stat_set(n, d->stream, 0, -1);
  if (cc == CURLE_OK && code >= 200 && code < 300) {
    d->attempts++;
    d->at = now;
    d->outcome = OUT_DELIVERED;
    d->error[0] = '\0';
    mark_submit(n, s, now);
    return;
  }
  int64_t wait = 0;
  if (cc == CURLE_OK && (code == 429 || code == 503))
    wait = ra > RETRY_AFTER_MAX_MS / 1000 ? RETRY_AFTER_MAX_MS : 1000 * (int64_t)ra;
  if (cc != CURLE_OK)
    snprintf(d->error, sizeof(d->error), "%s", curl_easy_strerror(cc));
  else
    snprintf(d->error, sizeof(d->error), "HTTP %ld", code);
  attempt_failed(n, s, wait, 0, now);
}

/* ---- the thread ---- */

/* One stream's next step, when its time has come. */
static void stream_step(sd_notify *n, int i, int64_t now) {
  nt_stream *s = &n->s[i];
  if (!s->url || !n->counted || s->at > now) return;
  if (s->state == NT_IDLE) head_read(n, i, now);
  if (s->state == NT_WAIT && s->at <= now) request_start(n, s, now);
  else if (s->state == NT_SUBMIT && s->at <= now) mark_submit(n, s, now);
}

/* Writer answers, finished transfers, and a kick or a scan tick. */
static void drain(sd_notify *n, int64_t now) {
  pthread_mutex_lock(&n->mu);
  unsigned bits = n->answered;
  int kicked = n->kicked;
  n->answered = 0;
  n->kicked = 0;
  pthread_mutex_unlock(&n->mu);
  for (int i = 0; i < SD_NOTIFY_STREAMS; i++)
    if (bits & (1u << i)) mark_answered(n, i, now);
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(n->multi, &left)))
    if (m->msg == CURLMSG_DONE) request_done(n, m->easy_handle, m->data.result, now);
  if (!n->counted) {
    n->counted = counts_init(n) == 0;
    if (!n->counted && !n->warned++)
      sd_log_error("counting the webhook outbox failed: retrying");
    if (!n->counted) n->scan_at = now + WRITER_FAIL_MS;
  } else if (kicked || now >= n->scan_at) {
    counts_scan(n, now);
  }
}

/* How long to sleep: until the next step or scan, at most POLL_MAX_MS
 * (wake-ups cut it short). */
static int poll_ms(const sd_notify *n, int64_t now) {
  int64_t t = n->scan_at;
  for (int i = 0; i < SD_NOTIFY_STREAMS; i++) {
    const nt_stream *s = &n->s[i];
    int timed = s->state == NT_IDLE || s->state == NT_WAIT ||
                s->state == NT_SUBMIT;
    if (s->url && n->counted && timed && s->at < t) t = s->at;
  }
  int64_t d = t - now;
  return d < 0 ? 0 : d > POLL_MAX_MS ? POLL_MAX_MS : (int)d;
}

static int stopping(sd_notify *n) {
  pthread_mutex_lock(&n->mu);
  int s = n->stopping;
  pthread_mutex_unlock(&n->mu);
  return s;
}

/* Abandons transfers, submits a mark still waiting for room once, waits
 * for the writer's answers and frees every delivery. */
static void wind_down(sd_notify *n) {
  for (int i = 0; i < SD_NOTIFY_STREAMS; i++) {
    nt_stream *s = &n->s[i];
    if (s->state == NT_FLY) {
      curl_multi_remove_handle(n->multi, s->d->h);
      s->state = NT_IDLE;
    } else if (s->state == NT_SUBMIT) {
      mark_submit(n, s, sd_now_ms());
    }
  }
  while (n->committing > 0) {
    pthread_mutex_lock(&n->mu);
    while (!n->answered) pthread_cond_wait(&n->cv, &n->mu);
    unsigned bits = n->answered;
    n->answered = 0;
    pthread_mutex_unlock(&n->mu);
    for (int i = 0; i < SD_NOTIFY_STREAMS; i++)
      if (bits & (1u << i)) mark_answered(n, i, sd_now_ms());
  }
  for (int i = 0; i < SD_NOTIFY_STREAMS; i++) {
    delivery_free(n->s[i].d);
    n->s[i].d = NULL;
    stat_set(n, i, 0, -1);
  }
}

static void *notify_main(void *arg) {
  sd_notify *n = arg;
  sd_store_reader_for_scans();
  while (!stopping(n)) {
    int64_t now = sd_now_ms();
    drain(n, now);
    for (int i = 0; i < SD_NOTIFY_STREAMS; i++) stream_step(n, i, now);
    int running = 0;
    curl_multi_perform(n->multi, &running);
    curl_multi_poll(n->multi, NULL, 0, poll_ms(n, sd_now_ms()), NULL);
    curl_multi_perform(n->multi, &running);
  }
  wind_down(n);
  return NULL;
}

/* ---- lifecycle ---- */

/* 1 when url starts with http:// or https:// (any case). */
static int url_ok(const char *url) {
  return strncasecmp(url, "http://", 7) == 0 ||
         strncasecmp(url, "https://", 8) == 0;
}

static int streams_init(sd_notify *n, char *msg, size_t msglen) {
  static const char *const flags[SD_NOTIFY_STREAMS] = {
      "--webhook-url", "--segments-webhook-url"};
  int any = 0;
  for (int i = 0; i < SD_NOTIFY_STREAMS; i++) {
    nt_stream *s = &n->s[i];
    s->name = stream_names[i];
    s->url = stream_url(n->cfg, i);
    s->state = NT_IDLE;
    s->at = 0;
    n->st.streams[i].stream = stream_names[i];
    n->st.streams[i].enabled = s->url != NULL;
    if (s->url && !url_ok(s->url)) { /* the URL itself is not echoed */
      snprintf(msg, msglen, "%s must be an http:// or https:// URL", flags[i]);
      return SD_EINVAL;
    }
    any |= s->url != NULL;
  }
  return any;
}

int sd_notify_start(const sd_config *cfg, sd_core *core, sd_notify **out,
                    char *msg, size_t msglen) {
  sd_notify *n = calloc(1, sizeof(*n));
  *out = NULL;
  if (!n) return SD_ENOMEM;
  n->cfg = cfg;
  n->core = core;
  sd_rng_init(&n->rng, (uint64_t)sd_now_ms() ^ 0x6e6f74696679ULL);
  pthread_mutex_init(&n->mu, NULL);
  pthread_cond_init(&n->cv, NULL);
  int any = streams_init(n, msg, msglen);
  if (any <= 0) {
    if (any == 0) *out = n; /* no URL: nothing to deliver */
    else sd_notify_free(n);
    return any;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  n->multi = curl_multi_init();
  if (!n->multi || pthread_create(&n->thread, NULL, notify_main, n) != 0) {
    snprintf(msg, msglen, "cannot start the webhook notifier");
    sd_notify_free(n);
    return SD_EINTERNAL;
  }
  n->started = 1;
  *out = n;
  return 0;
}

void sd_notify_kick(sd_notify *n) {
  if (!n || !n->multi) return;
  pthread_mutex_lock(&n->mu);
  n->kicked = 1;
  pthread_mutex_unlock(&n->mu);
  curl_multi_wakeup(n->multi);
}

void sd_notify_stop(sd_notify *n) {
  if (!n || !n->started) return;
  pthread_mutex_lock(&n->mu);
  n->stopping = 1;
  pthread_mutex_unlock(&n->mu);
  curl_multi_wakeup(n->multi);
  pthread_join(n->thread, NULL);
  n->started = 0;
}

void sd_notify_free(sd_notify *n) {
  if (!n) return;
  sd_notify_stop(n);
  if (n->multi) curl_multi_cleanup(n->multi);
  pthread_mutex_destroy(&n->mu);
  pthread_cond_destroy(&n->cv);
  free(n);
}

void sd_notify_get_stats(sd_notify *n, sd_notify_stats *out) {
  memset(out, 0, sizeof(*out));
  for (int i = 0; i < SD_NOTIFY_STREAMS; i++)
    out->streams[i].stream = stream_names[i];
  if (!n) return;
  pthread_mutex_lock(&n->mu);
  *out = n->st;
  pthread_mutex_unlock(&n->mu);
  int64_t oldest = 0;
  for (int i = 0; i < SD_NOTIFY_STREAMS; i++) {
    const sd_notify_stream_stats *s = &out->streams[i];
    out->delivered_total += s->delivered_total;
    out->attempts_failed_total += s->attempts_failed_total;
    out->given_up_total += s->given_up_total;
    out->in_flight += s->in_flight;
    /* a row delivered before a count saw it makes this -1 for a moment */
    if (out->streams[i].pending < 0) out->streams[i].pending = 0;
    out->outbox_pending += s->pending;
    if (s->oldest_pending_at > 0 && (!oldest || s->oldest_pending_at < oldest))
      oldest = s->oldest_pending_at;
  }
  int64_t age = oldest ? sd_now_ms() - oldest : 0;
  out->oldest_pending_seconds = age > 0 ? (double)age / 1e3 : 0;
}
