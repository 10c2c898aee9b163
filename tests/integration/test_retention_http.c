/*
 * test_retention_http.c -- --retention-days (README "Retention").
 *
 * A server keeping 30 days gets events and texts from 100 days ago and
 * from the last days (client timestamps), among them 3,000 old events of
 * 300 users that have nothing newer, while another thread keeps ingesting
 * new events the whole time. Then, read from the HTTP API and from the
 * database file:
 * - every row older than the cut-off is gone and every newer one is kept;
 * - the audit table's retention rows add up to exactly what was deleted;
 * - users left with nothing are gone (404); a user with old and new rows
 *   has the counts of the new ones, and their stored views equal those
 *   of a twin user who only ever sent the same new rows (so the views
 *   were recomputed from what is left, not kept);
 * - every concurrent ingest was answered 200 and is stored.
 */
#include "check.h"
#include "harness.h"
#include "harness_db.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY 86400000LL
#define BULK_USERS 300
#define BULK_EVENTS 10
#define OLD_EVENTS (BULK_USERS * BULK_EVENTS + 6 + 4)
#define OLD_TEXTS 5
#define LIVE_MAX 2000 /* batches at most; it runs until the retention ends */
#define LIVE_PER 20

static int64_t now_ms(void) { return (int64_t)time(NULL) * 1000; }

static void add_event(json_t *a, const char *id, const char *user,
                      const char *type, int64_t ts) {
  json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:I,s:{s:s,s:b}}", "event_id",
                                     id, "user_id", user, "type", type, "ts",
                                     (json_int_t)ts, "properties", "device",
                                     ts % 2 ? "ios" : "web", "pro", ts % 3 == 0));
}

static void add_text(json_t *a, const char *id, const char *user, int seed,
                     int64_t ts) {
  json_t *v = json_array();
  for (int i = 0; i < 256; i++)
    json_array_append_new(v, json_real(((i * 7 + seed * 13) % 17) / 17.0 - 0.4));
  json_t *t = json_pack("{s:s,s:s,s:I,s:o}", "text_id", id, "text",
                        "a text about refunds", "ts", (json_int_t)ts, "embedding", v);
  if (user) json_object_set_new(t, "user_id", json_string(user));
  json_array_append_new(a, t);
}

static void post(sd_server *srv, const char *kind, json_t *items) {
  long long acc = -1;
  CHECK_INT(ingest(srv, kind, items, &acc, NULL), 200);
  CHECK_INT(acc, (long long)json_array_size(items));
  json_decref(items);
}

/* The new rows of "mixed" and of its twin: events, then texts, in time
 * order, with the same timestamps, types, properties and vectors. */
static void new_rows(sd_server *srv, const char *user, int64_t now) {
  json_t *ev = json_array(), *tx = json_array();
  char id[64];
  for (int i = 0; i < 3; i++) {
    snprintf(id, sizeof id, "%s-new-e%d", user, i);
    add_event(ev, id, user, i ? "view" : "buy", now - 3 * DAY + i * 3600000LL);
  }
  for (int i = 0; i < 2; i++) {
    snprintf(id, sizeof id, "%s-new-t%d", user, i);
    add_text(tx, id, user, i, now - DAY + i * 3600000LL);
  }
  post(srv, "events", ev);
  post(srv, "texts", tx);
}

static void old_rows(sd_server *srv, int64_t now) {
  int64_t old = now - 100 * DAY;
  json_t *ev = json_array(), *tx = json_array();
  char id[64], user[32];
  for (int i = 0; i < 6; i++) {
    snprintf(id, sizeof id, "oo-e%d", i);
    add_event(ev, id, "old-only", "view", old + i);
  }
  for (int i = 0; i < 4; i++) {
    snprintf(id, sizeof id, "mixed-old-e%d", i);
    add_event(ev, id, "mixed", "refund", old + i * 1000);
  }
  post(srv, "events", ev);
  for (int u = 0; u < BULK_USERS; u += 50) {
    ev = json_array();
    for (int k = u; k < u + 50; k++)
      for (int i = 0; i < BULK_EVENTS; i++) {
        snprintf(id, sizeof id, "bulk-%d-%d", k, i);
        snprintf(user, sizeof user, "bulk-%d", k);
        add_event(ev, id, user, i % 2 ? "view" : "cart", old - i * 3600000LL);
      }
    post(srv, "events", ev);
  }
  add_text(tx, "mixed-old-t0", "mixed", 5, old);
  add_text(tx, "mixed-old-t1", "mixed", 6, old + 5);
  for (int i = 0; i < 3; i++) {
    snprintf(id, sizeof id, "anon-old-t%d", i);
    add_text(tx, id, NULL, 7 + i, old - i);
  }
  add_text(tx, "anon-new-t", NULL, 11, now - DAY);
  post(srv, "texts", tx);
}

/* ---- the concurrent ingest ---- */

typedef struct {
  sd_server *srv;
  _Atomic int ok, failed, stop;
} live_ctx;

static void *live(void *arg) {
  live_ctx *l = arg;
  char id[64], user[32];
  for (int b = 0; b < LIVE_MAX && !l->stop; b++) {
    json_t *ev = json_array();
    for (int i = 0; i < LIVE_PER; i++) {
      snprintf(id, sizeof id, "live-%d-%d", b, i);
      snprintf(user, sizeof user, "live-%d", i);
      add_event(ev, id, user, "view", now_ms() - 2 * DAY + b);
    }
    long long acc = -1;
    long st = ingest(l->srv, "events", ev, &acc, NULL);
    json_decref(ev);
    if (st == 200 && acc == LIVE_PER) l->ok++;
    else l->failed++;
    sleep_ms(20);
  }
  http_thread_done();
  return NULL;
}

/* ---- reading the database ---- */

static long long q_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st = NULL;
  long long v = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

/* The users rows of a and b hold the same counters and views. */
static void check_twins(sqlite3 *db, const char *a, const char *b) {
  static const char *const ints[] = {"n_events", "n_texts", "first_seen",
                                     "last_seen", "text_t", "beh_t",
                                     "time_t", "ctx_t", "last_act"};
  static const char *const blobs[] = {"text_sum", "beh_sum", "time_sum", "ctx_sum"};
  char sql[256];
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    snprintf(sql, sizeof sql, "SELECT (SELECT %s FROM users WHERE user_id='%s') "
             "= (SELECT %s FROM users WHERE user_id='%s')", ints[i], a, ints[i], b);
    if (q_int(db, sql) != 1) fprintf(stderr, "twins differ in %s\n", ints[i]);
    CHECK_INT(q_int(db, sql), 1);
  }
  for (size_t i = 0; i < sizeof blobs / sizeof blobs[0]; i++) {
    sqlite3_stmt *st = NULL;
    snprintf(sql, sizeof sql, "SELECT (SELECT %s FROM users WHERE user_id='%s'), "
             "(SELECT %s FROM users WHERE user_id='%s')", blobs[i], a, blobs[i], b);
    CHECK(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
          sqlite3_step(st) == SQLITE_ROW);
    int n = sqlite3_column_bytes(st, 0);
    CHECK(n > 0 && n == sqlite3_column_bytes(st, 1));
    const float *x = sqlite3_column_blob(st, 0), *y = sqlite3_column_blob(st, 1);
    double diff = 0;
    for (int k = 0; x && y && k < n / 4; k++)
      diff = fmax(diff, fabs((double)x[k] - (double)y[k]));
    if (diff > 1e-4) fprintf(stderr, "twins differ in %s by %g\n", blobs[i], diff);
    CHECK(diff <= 1e-4);
    sqlite3_finalize(st);
  }
}

static long long audit_sum(sqlite3 *db, const char *field) {
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT COALESCE(SUM(json_extract(detail,'$.%s')),0) "
           "FROM audit WHERE action='retention'", field);
  return q_int(db, sql);
}

/* The sum of the live clusters' sizes of a space (0 without a model). */
static long long cluster_sizes(sd_server *srv, const char *space) {
  char path[96];
  long st;
  snprintf(path, sizeof path, "/v1/spaces/%s/clusters", space);
  json_t *j = http_json(srv, "GET", path, NULL, &st);
  long long sum = 0;
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(j, "clusters"), i, c)
    sum += json_integer_value(json_object_get(c, "size"));
  json_decref(j);
  return sum;
}

static void check_after(sd_server *srv, sqlite3 *db, int64_t now, int lives) {
  char sql[200];
  snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM events WHERE ts < %lld",
           (long long)(now - 30 * DAY));
  CHECK_INT(q_int(db, sql), 0);
  snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM texts WHERE ts < %lld",
           (long long)(now - 30 * DAY));
  CHECK_INT(q_int(db, sql), 0);
  CHECK_INT(q_int(db, "SELECT COUNT(*) FROM texts"), 2 + 2 + 1);
  CHECK_INT(audit_sum(db, "events"), OLD_EVENTS);
  CHECK_INT(audit_sum(db, "texts"), OLD_TEXTS);
  CHECK_INT(audit_sum(db, "users_removed"), BULK_USERS + 1);
  CHECK(q_int(db, "SELECT COUNT(*) FROM audit WHERE action='retention'") >= 1);
  long long e = -1, t = -1;
  CHECK_INT(get_user_counts(srv, "old-only", &e, &t), 404);
  CHECK_INT(get_user_counts(srv, "bulk-0", &e, &t), 404);
  CHECK_INT(get_user_counts(srv, "bulk-299", &e, &t), 404);
  CHECK_INT(get_user_counts(srv, "mixed", &e, &t), 0);
  CHECK_INT(e, 3);
  CHECK_INT(t, 2);
  check_twins(db, "mixed", "twin");
  /* memory agrees with what is left: points and cluster sizes */
  CHECK_INT(space_points(srv, "intents"),
            q_int(db, "SELECT COUNT(*) FROM texts WHERE embedding IS NOT NULL"));
  CHECK_INT(space_points(srv, "segments"), q_int(db, "SELECT COUNT(*) FROM users"));
  CHECK_INT(cluster_sizes(srv, "segments"),
            q_int(db, "SELECT COUNT(*) FROM users WHERE cluster IS NOT NULL"));
  CHECK_INT(cluster_sizes(srv, "intents"),
            q_int(db, "SELECT COUNT(*) FROM texts WHERE cluster IS NOT NULL"));
  for (int i = 0; i < LIVE_PER; i += 7) {
    char user[32];
    snprintf(user, sizeof user, "live-%d", i);
    CHECK_INT(get_user_counts(srv, user, &e, &t), 0);
    CHECK_INT(e, lives);
  }
}

/* The per-type counts the events table's triggers keep (event_types.n)
 * equal the events stored, after retention and after an erasure. */
static void check_type_counts(sd_server *srv) {
  json_t *kept = db_key_counts(srv->db, "SELECT type, n FROM event_types "
                                        "WHERE n != 0");
  json_t *real = db_key_counts(srv->db, "SELECT type, count(*) FROM events "
                                        "GROUP BY type");
  CHECK(kept && real && json_object_size(real) > 0 && json_equal(kept, real));
  json_decref(kept);
  json_decref(real);
}

int main(void) {
  /* small --train-min: both spaces get models, so deletions also move
     cluster members */
  const char *args[] = {"--retention-days", "30", "--retention-interval", "1",
                        "--retention-batch", "20", "--train-min", "8", NULL};
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (!srv) return check_done("test_retention_http");
  int64_t now = now_ms();
  live_ctx lc = {srv, 0, 0, 0};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, live, &lc) == 0);
  new_rows(srv, "mixed", now);
  new_rows(srv, "twin", now);
  old_rows(srv, now);
  sqlite3 *db = NULL;
  CHECK(sqlite3_open_v2(srv->db, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  double t0 = now_s();
  int mid_ok = -1; /* live batches answered when the run was half way */
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM events WHERE ts < %lld",
           (long long)(now - 30 * DAY));
  while (now_s() - t0 < 120 && (audit_sum(db, "events") < OLD_EVENTS ||
                                audit_sum(db, "texts") < OLD_TEXTS)) {
    long long left = q_int(db, sql);
    if (mid_ok < 0 && left > 0 && left < OLD_EVENTS) mid_ok = lc.ok;
    sleep_ms(20);
  }
  int end_ok = lc.ok;
  sleep_ms(300);
  lc.stop = 1;
  pthread_join(th, NULL);
  fprintf(stderr, "retention deleted %lld events, %lld texts in %.1f s; live "
          "ingest batches answered: %d when half way, %d at the end, %d in all\n",
          audit_sum(db, "events"), audit_sum(db, "texts"), now_s() - t0,
          mid_ok, end_ok, (int)lc.ok);
  CHECK(mid_ok >= 0 && end_ok > mid_ok); /* ingest went on during the run */
  CHECK_INT(lc.failed, 0);
  check_after(srv, db, now, lc.ok);
  sqlite3_close(db);
  check_type_counts(srv);
  long st;
  json_decref(http_json(srv, "DELETE", "/v1/users/twin", NULL, &st));
  CHECK_INT(st, 200);
  check_type_counts(srv);
  CHECK_INT(srv_stop(srv), 0);
  if (check_failures) srv_dump_log(srv);
  srv_free(srv);
  http_thread_done();
  return check_done("test_retention_http");
}
