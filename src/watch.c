/*
 * watch.c -- scheduled drift checks and their alerts (watch.h).
 *
 * A check of a space gives a report (drift.h). Under the watch's mutex the
 * report is matched against the cache of open alerts, giving actions:
 * open, escalate, update (same severity: new value) and clear. A writer
 * job applies them to table alerts and adds the webhook events (outbox)
 * in one transaction; only after it commits does the cache change.
 */
#include "segmentd/watch.h"

#include "segmentd/drift.h"
#include "segmentd/err.h"
#include "segmentd/log.h"
#include "segmentd/maint.h"
#include "segmentd/notify.h"
#include "segmentd/recluster.h"
#include "segmentd/snapshot.h"
#include "segmentd/store.h"
#include "segmentd/timeutil.h"

#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SAME_EMERGING_COS 0.8f /* candidates this close are one condition */

typedef struct {
  int64_t id;
  int space, severity;
  char kind[24], method[16];
  int64_t cluster;
  float *centroid; /* emerging_cluster only */
  int64_t created_at;
} open_alert;

struct sd_watch {
  const sd_config *cfg;
  sd_core *core;
  struct sd_maint *maint;
  struct sd_notify *notify;
  pthread_mutex_t mu;       /* guards the cache, the reports, the counts */
  pthread_mutex_t check_mu; /* one round of checks at a time */
  open_alert *open;
  size_t n_open, cap_open;
  json_t *last[SD_SPACES];  /* the last report of each space */
  int64_t last_check, opened;
};

static const char *const SPACE_NAMES[SD_SPACES] = {"intents", "segments"};

static const char *sev_name(int s) {
  return s == SD_SEV_CRITICAL ? "critical" : s == SD_SEV_WARNING ? "warning"
                                                                 : "info";
}

static int sev_of(const char *s) {
  return !strcmp(s, "critical") ? SD_SEV_CRITICAL
         : !strcmp(s, "warning") ? SD_SEV_WARNING : SD_SEV_INFO;
}

/* ---- the cache of open alerts ---- */

static int cache_add(sd_watch *w, const open_alert *a) {
  if (w->n_open == w->cap_open) {
    size_t cap = w->cap_open ? w->cap_open * 2 : 16;
    open_alert *n = realloc(w->open, sizeof(*n) * cap);
    if (!n) return SD_ENOMEM;
    w->open = n;
    w->cap_open = cap;
  }
  w->open[w->n_open++] = *a;
  return 0;
}

static void cache_remove(sd_watch *w, size_t i) {
  free(w->open[i].centroid);
  w->open[i] = w->open[--w->n_open];
}

static int space_index(const char *name) {
  return !strcmp(name, "segments") ? 1 : 0;
}

static int cache_load(sd_watch *w) {
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(
      rd, "SELECT id,space,kind,method,cluster,severity,centroid,created_at "
          "FROM alerts WHERE cleared_at IS NULL ORDER BY id") : NULL;
  if (!st) return SD_EDB;
  int rc, err = 0;
  while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    open_alert a = {sqlite3_column_int64(st, 0),
                    space_index((const char *)sqlite3_column_text(st, 1)),
                    sev_of((const char *)sqlite3_column_text(st, 5)), "", "",
                    sqlite3_column_type(st, 4) == SQLITE_NULL
                        ? -1 : sqlite3_column_int64(st, 4), NULL,
                    sqlite3_column_int64(st, 7)};
    snprintf(a.kind, sizeof(a.kind), "%s", sqlite3_column_text(st, 2));
    snprintf(a.method, sizeof(a.method), "%s", sqlite3_column_text(st, 3));
    int len = sqlite3_column_bytes(st, 6);
    if (len > 0 && (a.centroid = malloc((size_t)len)))
      memcpy(a.centroid, sqlite3_column_blob(st, 6), (size_t)len);
    err = cache_add(w, &a);
    if (err) free(a.centroid);
  }
  sqlite3_reset(st);
  return err ? err : rc == SQLITE_DONE ? 0 : SD_EDB;
}

int sd_watch_new(const sd_config *cfg, sd_core *core, struct sd_maint *maint,
                 struct sd_notify *notify, sd_watch **out, char *msg,
                 size_t msglen) {
  sd_watch *w = calloc(1, sizeof(*w));
  *out = NULL;
  if (!w) return SD_ENOMEM;
  w->cfg = cfg;
  w->core = core;
  w->maint = maint;
  w->notify = notify;
  w->last_check = sd_now_ms();
  pthread_mutex_init(&w->mu, NULL);
  pthread_mutex_init(&w->check_mu, NULL);
  int rc = cache_load(w);
  if (rc < 0) {
    snprintf(msg, msglen, "loading the open alerts failed");
    sd_watch_free(w);
    return rc;
  }
  *out = w;
  return 0;
}

void sd_watch_free(sd_watch *w) {
  if (!w) return;
  while (w->n_open) cache_remove(w, 0);
  free(w->open);
  for (int s = 0; s < SD_SPACES; s++) json_decref(w->last[s]);
  pthread_mutex_destroy(&w->mu);
  pthread_mutex_destroy(&w->check_mu);
  free(w);
}

/* ---- matching a report with the open alerts ---- */

typedef enum { ACT_OPEN, ACT_ESCALATE, ACT_UPDATE, ACT_CLEAR } act_kind;

typedef struct {
  act_kind kind;
  const sd_drift_check *check; /* open, escalate, update */
  int64_t id;                  /* escalate, update, clear; open: set after */
  int64_t created_at;          /* escalate: when it opened */
  open_alert alert;            /* clear: the cached alert (copy) */
} action;

typedef struct {
  const sd_config *cfg;
  const sd_drift_report *r;
  action *acts;
  size_t n;
  int events;                  /* webhook events added */
} alert_op;

static int same_condition(const open_alert *a, const sd_drift_report *r,
                          const sd_drift_check *c) {
  if (a->space != r->space || strcmp(a->kind, c->kind) ||
      strcmp(a->method, c->method))
    return 0;
  if (!c->centroid) return a->cluster == c->cluster;
  return a->centroid && cblas_sdot(r->dim, a->centroid, 1, c->centroid, 1) >=
                            SAME_EMERGING_COS;
}

/* Was this alert's check run, and passed, in the report? */
static int check_passed(const sd_drift_report *r, const open_alert *a) {
  for (size_t i = 0; i < r->n; i++) {
    const sd_drift_check *c = &r->checks[i];
    if (c->evaluated && !strcmp(c->kind, a->kind) &&
        !strcmp(c->method, a->method))
      return 1; /* evaluated, and (the caller knows) nothing matched it */
  }
  return 0;
}

static int plan(sd_watch *w, const sd_drift_report *r, alert_op *op) {
  char *matched = calloc(w->n_open + 1, 1);
  op->acts = calloc(r->n + w->n_open + 1, sizeof(action));
  if (!matched || !op->acts) {
    free(matched);
    return SD_ENOMEM;
  }
  for (size_t i = 0; i < r->n; i++) {
    const sd_drift_check *c = &r->checks[i];
    if (!c->drifted) continue;
    size_t j = 0;
    while (j < w->n_open && !same_condition(&w->open[j], r, c)) j++;
    action *a = &op->acts[op->n++];
    a->check = c;
    a->kind = j == w->n_open ? ACT_OPEN
              : c->severity > w->open[j].severity ? ACT_ESCALATE : ACT_UPDATE;
    if (j < w->n_open)
      matched[j] = 1, a->id = w->open[j].id, a->created_at = w->open[j].created_at;
  }
  for (size_t j = 0; j < w->n_open; j++)
    if (!matched[j] && w->open[j].space == r->space &&
        check_passed(r, &w->open[j]))
      op->acts[op->n++] = (action){ACT_CLEAR, NULL, w->open[j].id,
                                   w->open[j].created_at, w->open[j]};
  free(matched);
  return 0;
}

/* ---- the writer's transaction ---- */

static json_t *time_json(int64_t ms) {
  char b[48];
  sd_time_format(ms, b);
  return json_string(b);
}

static json_t *window_json(const sd_drift_report *r) {
  return json_pack("{s:I,s:I,s:I,s:I}", "model_version", (json_int_t)r->version,
                   "checked_at_ms", (json_int_t)r->checked_at, "points",
                   (json_int_t)r->window_points, "new_points",
                   (json_int_t)r->new_points);
}

/* The alert as the API and the webhook show it. */
static json_t *alert_json(int64_t id, const sd_drift_report *r,
                          const sd_drift_check *c, int64_t created,
                          int64_t now) {
  json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s,s:f,s:f,s:s,s:o,s:o,s:n,s:I,s:o}",
                        "id", (json_int_t)id, "space", SPACE_NAMES[r->space],
                        "kind", c->kind, "method", c->method, "severity",
                        sev_name(c->severity), "value", c->value, "threshold",
                        c->threshold, "message", c->message, "created_at",
                        time_json(created), "updated_at", time_json(now),
                        "cleared_at", "model_version", (json_int_t)r->version,
                        "window", window_json(r));
  if (o) json_object_set_new(o, "cluster", c->cluster >= 0
                                               ? json_integer(c->cluster)
                                               : json_null());
  if (o && c->detail) json_object_set(o, "detail", c->detail);
  return o;
}

static int add_event(alert_op *op, sd_core *core, const char *event,
                     json_t *payload, int64_t now) {
  char *js = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
  json_decref(payload);
  if (!js) return SD_ENOMEM;
  int rc = sd_outbox_add(op->cfg, sd_core_db(core), "alerts", event, js, now);
  free(js);
  op->events += rc == 0;
  return rc;
}

static const char SQL_ALERT_OPEN[] =
    "INSERT INTO alerts(space,kind,method,cluster,severity,value,threshold,"
    "message,detail,window,centroid,model_version,created_at,updated_at) "
    "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?13)";

static int act_open(sd_core *core, alert_op *op, action *a, int64_t now) {
  const sd_drift_check *c = a->check;
  sqlite3_stmt *st = sd_store_stmt(sd_core_db(core), SQL_ALERT_OPEN);
  if (!st) return SD_EDB;
  char *detail = c->detail ? json_dumps(c->detail, JSON_COMPACT) : NULL;
  json_t *win = window_json(op->r);
  char *wjs = win ? json_dumps(win, JSON_COMPACT) : NULL;
  json_decref(win);
  sqlite3_bind_text(st, 1, SPACE_NAMES[op->r->space], -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, c->kind, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, c->method, -1, SQLITE_STATIC);
  if (c->cluster >= 0) sqlite3_bind_int64(st, 4, c->cluster);
  sqlite3_bind_text(st, 5, sev_name(c->severity), -1, SQLITE_STATIC);
  sqlite3_bind_double(st, 6, c->value);
  sqlite3_bind_double(st, 7, c->threshold);
  sqlite3_bind_text(st, 8, c->message, -1, SQLITE_STATIC);
  if (detail) sqlite3_bind_text(st, 9, detail, -1, free);
  if (wjs) sqlite3_bind_text(st, 10, wjs, -1, free);
  if (c->centroid)
    sqlite3_bind_blob(st, 11, c->centroid,
                      (int)(sizeof(float) * (size_t)op->r->dim), SQLITE_STATIC);
  sqlite3_bind_int64(st, 12, op->r->version);
  sqlite3_bind_int64(st, 13, now);
  if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
  a->id = sqlite3_last_insert_rowid(sd_store_db(sd_core_db(core)));
  a->created_at = now;
  return add_event(op, core, "alert.opened",
                   alert_json(a->id, op->r, c, now, now), now);
}

/* An open alert keeps the highest severity it reached. */
static const char SQL_ALERT_UPDATE[] =
    "UPDATE alerts SET severity=CASE WHEN ?6 THEN ?2 ELSE severity END,"
    "value=?3,message=?4,updated_at=?5,threshold=?7 WHERE id=?1";
static const char SQL_ALERT_CLEAR[] =
    "UPDATE alerts SET cleared_at=?2,updated_at=?2 WHERE id=?1 AND "
    "cleared_at IS NULL";

static int act_change(sd_core *core, alert_op *op, const action *a,
                      int64_t now) {
  int clear = a->kind == ACT_CLEAR;
  sqlite3_stmt *st = sd_store_stmt(sd_core_db(core),
                                   clear ? SQL_ALERT_CLEAR : SQL_ALERT_UPDATE);
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, a->id);
  if (clear) {
    sqlite3_bind_int64(st, 2, now);
  } else {
    sqlite3_bind_text(st, 2, sev_name(a->check->severity), -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 3, a->check->value);
    sqlite3_bind_text(st, 4, a->check->message, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_int(st, 6, a->kind == ACT_ESCALATE);
    sqlite3_bind_double(st, 7, a->check->threshold);
  }
  if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
  if (a->kind == ACT_ESCALATE)
    return add_event(op, core, "alert.escalated",
                     alert_json(a->id, op->r, a->check, a->created_at, now),
                     now);
  if (!clear) return 0;
  const open_alert *o = &a->alert;
  return add_event(op, core, "alert.cleared",
                   json_pack("{s:I,s:s,s:s,s:s,s:o,s:o}", "id", (json_int_t)o->id,
                             "space", SPACE_NAMES[o->space], "kind", o->kind,
                             "method", o->method, "cluster",
                             o->cluster >= 0 ? json_integer(o->cluster)
                                             : json_null(),
                             "cleared_at", time_json(now)),
                   now);
}

static int alerts_tx(sd_core *core, void *arg) {
  alert_op *op = arg;
  int64_t now = sd_now_ms();
  int rc = 0;
  for (size_t i = 0; i < op->n && rc == 0; i++)
    rc = op->acts[i].kind == ACT_OPEN ? act_open(core, op, &op->acts[i], now)
                                      : act_change(core, op, &op->acts[i], now);
  return rc;
}

/* ---- applying a report ---- */

/* After the commit: the cache follows the database. */
static int cache_follow(sd_watch *w, const alert_op *op) {
  int rc = 0;
  for (size_t i = 0; i < op->n && rc == 0; i++) {
    const action *a = &op->acts[i];
    size_t j = 0;
    while (j < w->n_open && w->open[j].id != a->id) j++;
    if (a->kind == ACT_CLEAR && j < w->n_open) cache_remove(w, j);
    else if (a->kind == ACT_ESCALATE && j < w->n_open)
      w->open[j].severity = a->check->severity;
    if (a->kind != ACT_OPEN) continue;
    const sd_drift_check *c = a->check;
    open_alert o = {a->id, op->r->space, c->severity, "", "", c->cluster, NULL,
                    a->created_at};
    snprintf(o.kind, sizeof(o.kind), "%s", c->kind);
    snprintf(o.method, sizeof(o.method), "%s", c->method);
    if (c->centroid && (o.centroid = malloc(sizeof(float) * (size_t)op->r->dim)))
      memcpy(o.centroid, c->centroid, sizeof(float) * (size_t)op->r->dim);
    rc = cache_add(w, &o);
    w->opened++;
    sd_log_warn("drift alert %lld (%s, %s): %s", (long long)o.id,
                SPACE_NAMES[o.space], sev_name(o.severity), c->message);
  }
  return rc;
}

/* --drift-recluster: the first alert of the round that opened or rose to
 * critical, or an opened emerging cluster, asks for a re-cluster of its
 * space. */
static void policy(sd_watch *w, const alert_op *op) {
  if (!w->cfg->drift_recluster || !w->maint) return;
  for (size_t i = 0; i < op->n; i++) {
    const action *a = &op->acts[i];
    int critical = a->check && a->check->severity == SD_SEV_CRITICAL &&
                   (a->kind == ACT_OPEN || a->kind == ACT_ESCALATE);
    int emerging = a->kind == ACT_OPEN && !strcmp(a->check->kind, "emerging_cluster");
    if (!critical && !emerging) continue;
    sd_recluster_req req = {op->r->space, SD_ALGO_KMEANS, 0,
                            op->r->space == SD_SPACE_INTENTS &&
                                !sd_config_remote(w->cfg),
                            0x5e9d, a->id};
    int64_t job;
    if (sd_maint_submit(w->maint, &req, NULL, NULL, &job) == 0)
      sd_log_info("drift alert %lld: re-clustering %s (job %lld)",
                  (long long)a->id, SPACE_NAMES[op->r->space], (long long)job);
    return;
  }
}

static int apply(sd_watch *w, const sd_drift_report *r) {
  alert_op op = {w->cfg, r, NULL, 0, 0};
  pthread_mutex_lock(&w->mu);
  int rc = plan(w, r, &op);
  pthread_mutex_unlock(&w->mu);
  if (rc == 0 && op.n > 0) rc = sd_core_run(w->core, alerts_tx, &op, 1);
  if (rc == 0) {
    pthread_mutex_lock(&w->mu);
    rc = cache_follow(w, &op);
    pthread_mutex_unlock(&w->mu);
    if (op.events && w->notify) sd_notify_kick(w->notify);
    policy(w, &op);
  }
  free(op.acts);
  return rc;
}

static int check_space(sd_watch *w, int space) {
  sd_drift_report r;
  int rc = sd_drift_run(sd_core_drift(w->core), space, &r);
  if (rc < 0) return rc;
  rc = apply(w, &r);
  json_t *j = sd_drift_report_json(&r);
  pthread_mutex_lock(&w->mu);
  json_decref(w->last[space]);
  w->last[space] = j;
  pthread_mutex_unlock(&w->mu);
  sd_drift_report_free(&r);
  return rc;
}

int sd_watch_check(sd_watch *w) {
  pthread_mutex_lock(&w->check_mu);
  int rc = 0;
  for (int s = 0; s < SD_SPACES && rc == 0; s++) rc = check_space(w, s);
  pthread_mutex_lock(&w->mu);
  w->last_check = sd_now_ms();
  pthread_mutex_unlock(&w->mu);
  pthread_mutex_unlock(&w->check_mu);
  if (rc < 0) sd_log_error("drift check failed: %s", sd_err_message(rc));
  return rc;
}

void sd_watch_tick(void *arg, int64_t now) {
  sd_watch *w = arg;
  pthread_mutex_lock(&w->mu);
  int due = w->cfg->drift_interval > 0 &&
            now - w->last_check >= w->cfg->drift_interval * 1000;
  pthread_mutex_unlock(&w->mu);
  if (due) sd_watch_check(w);
}

/* ---- reading ---- */

/* A space's last report with its baseline as it is now (drift.h). */
static json_t *space_json(const json_t *last, int s,
                          const sd_drift_base_info *base) {
  json_t *o = last ? json_copy((json_t *)last)
                   : json_pack("{s:s,s:n,s:[]}", "space", SPACE_NAMES[s],
                               "checked_at_ms", "checks");
  if (o)
    json_object_set_new(o, "baseline", sd_drift_base_info_json(base, SPACE_NAMES[s]));
  return o;
}

json_t *sd_watch_json(sd_watch *w) {
  json_t *spaces = json_array();
  int worst = SD_SEV_NONE;
  sd_drift_base_info base[SD_SPACES];
  for (int s = 0; s < SD_SPACES; s++)
    sd_drift_base_describe(sd_core_drift(w->core), s, &base[s]);
  pthread_mutex_lock(&w->mu);
  for (size_t i = 0; i < w->n_open; i++)
    if (w->open[i].severity > worst) worst = w->open[i].severity;
  for (int s = 0; s < SD_SPACES && spaces; s++)
    json_array_append_new(spaces, space_json(w->last[s], s, &base[s]));
  size_t n_open = w->n_open;
  int64_t last = w->last_check;
  pthread_mutex_unlock(&w->mu);
  const char *status = worst == SD_SEV_CRITICAL ? "alert"
                       : worst == SD_SEV_WARNING ? "warning" : "ok";
  return json_pack("{s:s,s:o,s:I,s:o,s:I}", "status", status, "spaces", spaces,
                   "open_alerts", (json_int_t)n_open, "last_check",
                   time_json(last), "interval_seconds",
                   (json_int_t)w->cfg->drift_interval);
}

void sd_watch_get_stats(sd_watch *w, sd_watch_stats *out) {
  memset(out, 0, sizeof(*out));
  for (int s = 0; s < SD_SPACES; s++)
    sd_drift_base_describe(sd_core_drift(w->core), s, &out->base[s]);
  pthread_mutex_lock(&w->mu);
  for (size_t i = 0; i < w->n_open; i++) {
    const open_alert *a = &w->open[i];
    int k = 0;
    while (k < SD_DRIFT_KINDS && strcmp(a->kind, sd_drift_kinds[k])) k++;
    if (a->severity >= SD_SEV_WARNING)
      out->open[a->space][k][a->severity == SD_SEV_CRITICAL]++;
  }
  out->opened = w->opened;
  out->last_check_ms = w->last_check;
  pthread_mutex_unlock(&w->mu);
}

static const char SQL_ALERTS[] =
    "SELECT id,space,kind,method,cluster,severity,value,threshold,message,"
    "detail,window,model_version,created_at,updated_at,cleared_at FROM alerts "
    "WHERE created_at>=?1 AND id<?2 ORDER BY id DESC LIMIT ?3";

static json_t *alert_row(sqlite3_stmt *st) {
  json_t *o = json_pack(
      "{s:I,s:s,s:s,s:s,s:s,s:f,s:f,s:s,s:I,s:o,s:o}", "id",
      (json_int_t)sqlite3_column_int64(st, 0), "space", sqlite3_column_text(st, 1),
      "kind", sqlite3_column_text(st, 2), "method", sqlite3_column_text(st, 3),
      "severity", sqlite3_column_text(st, 5), "value", sqlite3_column_double(st, 6),
      "threshold", sqlite3_column_double(st, 7), "message",
      sqlite3_column_text(st, 8), "model_version",
      (json_int_t)sqlite3_column_int64(st, 11), "created_at",
      time_json(sqlite3_column_int64(st, 12)), "updated_at",
      time_json(sqlite3_column_int64(st, 13)));
  if (!o) return NULL;
  json_object_set_new(o, "cluster", sqlite3_column_type(st, 4) == SQLITE_NULL
                                        ? json_null()
                                        : json_integer(sqlite3_column_int64(st, 4)));
  json_object_set_new(o, "cleared_at", sqlite3_column_type(st, 14) == SQLITE_NULL
                                           ? json_null()
                                           : time_json(sqlite3_column_int64(st, 14)));
  for (int col = 9; col <= 10; col++) {
    const char *js = (const char *)sqlite3_column_text(st, col);
    json_t *v = js ? json_loads(js, 0, NULL) : NULL;
    json_object_set_new(o, col == 9 ? "detail" : "window", v ? v : json_null());
  }
  return o;
}

json_t *sd_watch_alerts_json(int64_t since_ms, int64_t before, int limit,
                             int64_t *next) {
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(rd, SQL_ALERTS) : NULL;
  *next = 0;
  if (!st) return NULL;
  sqlite3_bind_int64(st, 1, since_ms);
  sqlite3_bind_int64(st, 2, before > 0 ? before : INT64_MAX);
  sqlite3_bind_int(st, 3, limit + 1);
  json_t *a = json_array();
  int rc, n = 0;
  while (a && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (n++ == limit) {
      *next = sqlite3_column_int64(st, 0) + 1; /* ids below the last shown */
      break;
    }
    json_array_append_new(a, alert_row(st));
  }
  sqlite3_reset(st);
  return a;
}
