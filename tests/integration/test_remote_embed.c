/*
 * test_remote_embed.c -- texts embedded by a remote OpenAI-compatible
 * embedder (the fake in tests/fake_embedder, over real HTTP on loopback):
 * nothing lost, nothing stored twice, whatever the embedder does.
 *
 * Phases, each ingesting texts and waiting for the queue to drain:
 *   clean path; every fault mode once (slow past the timeout, 429 with
 *   Retry-After, 503, 500, malformed JSON, wrong dimension, non-finite
 *   value, count mismatch, dropped connection), each seen in the failure
 *   counters; Retry-After honoured (the drain takes at least that long);
 *   a dead embedder opens the circuit breaker, which then sends only
 *   probes, and closes once it answers; a text the embedder rejects is
 *   isolated by splitting and marked failed, the rest of its batch
 *   embedded; kill -9 while texts are pending and while requests are in
 *   flight, then a restart.
 * At the end the database file is read directly: every acknowledged text
 * is stored once with exactly the fake's vector and an intent, the queue
 * holds only the rejected text (marked failed), and each user's text view
 * is the sum of their texts' unit vectors, so no embedding was added twice.
 * Bounded to about a minute.
 */
#include "check.h"
#include "harness.h"
#include "harness_fake.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIM 32
#define USERS 7
#define TS 1764237600000LL /* one time for every text: views add up exactly */

static const char *const TOPICS[3][5] = {
    {"card", "payment", "declined", "refund", "charge"},
    {"weather", "rain", "sunny", "forecast", "storm"},
    {"football", "match", "goal", "league", "score"}};

static json_t *g_acked; /* text id -> text, every acknowledged text */
static int g_next;      /* next text number */

/* Ingests n new texts (one of them containing "POISON" when poison);
 * returns the "pending" count of the answer, or -1. */
static long long ingest_texts(sd_server *srv, int n, int poison) {
  json_t *items = json_array();
  for (int i = 0; i < n; i++, g_next++) {
    char id[32], uid[16], text[160];
    const char *const *w = TOPICS[g_next % 3];
    snprintf(id, sizeof id, "rt-%d", g_next);
    snprintf(uid, sizeof uid, "ru-%d", g_next % USERS);
    snprintf(text, sizeof text, "%s %s %s %s %s%d", w[g_next % 5],
             w[(g_next + 1) % 5], w[(g_next + 3) % 5],
             poison && i == n / 2 ? "POISON" : "", "n", g_next);
    json_array_append_new(items, json_pack("{s:s,s:s,s:s,s:I}", "text_id", id,
                                           "user_id", uid, "text", text, "ts",
                                           (json_int_t)TS));
  }
  json_t *body = json_pack("{s:o}", "texts", items);
  long st;
  json_t *r = http_json_obj(srv, "POST", "/v1/texts", body, &st);
  long long pending = st == 200 ? json_path_int(r, "pending", -1) : -1;
  if (st == 200 && json_path_int(r, "accepted", -1) == n) {
    size_t k;
    json_t *it;
    json_array_foreach(items, k, it)
        json_object_set(g_acked, json_string_value(json_object_get(it, "text_id")),
                        json_object_get(it, "text"));
  }
  json_decref(r);
  json_decref(body);
  return pending;
}

/* GET /v1/info's embedder.queue (new reference) or NULL. */
static json_t *queue_info(sd_server *srv) {
  long st;
  json_t *info = http_json(srv, "GET", "/v1/info", NULL, &st);
  json_t *q = json_incref(json_path(info, "embedder.queue"));
  json_decref(info);
  return q;
}

/* Waits until no text is pending; the queue figures then, or NULL. */
static json_t *wait_drained(sd_server *srv, double timeout_s) {
  double t0 = now_s();
  while (now_s() - t0 < timeout_s) {
    json_t *q = queue_info(srv);
    if (q && json_path_int(q, "pending", -1) == 0 &&
        json_path_int(q, "in_flight", -1) == 0)
      return q;
    json_decref(q);
    sleep_ms(50);
  }
  fprintf(stderr, "queue did not drain within %.0f s\n", timeout_s);
  srv_dump_log(srv);
  return NULL;
}

static long long counter(sd_server *srv, const char *path) {
  json_t *q = queue_info(srv);
  long long v = json_path_int(q, path, -1);
  json_decref(q);
  return v;
}

/* ---- phases ---- */

static void phase_clean(sd_server *srv) {
  CHECK_INT(ingest_texts(srv, 120, 0), 120); /* all wait for the embedder */
  json_t *q = wait_drained(srv, 20);
  CHECK(q != NULL);
  CHECK(json_path_int(q, "texts_embedded", -1) >= 120);
  CHECK_INT(json_path_int(q, "requests_failed", -1), 0);
  json_decref(q);
}

typedef struct {
  const char *faults; /* POST /_faults body */
  const char *counter;/* the failure counter it must move */
} fault_case;

static const fault_case FAULTS[] = {
    {"{\"mode\":\"slow\",\"count\":1,\"delay_ms\":1500}", "failures.timeout"},
    {"{\"mode\":\"429\",\"count\":2,\"retry_after\":1}", "failures.busy"},
    {"{\"mode\":\"503\",\"count\":1,\"retry_after\":1}", "failures.busy"},
    {"{\"mode\":\"500\",\"count\":2}", "failures.http"},
    {"{\"mode\":\"malformed\",\"count\":2}", "failures.bad_reply"},
    {"{\"mode\":\"wrong_dim\",\"count\":2}", "failures.bad_reply"},
    {"{\"mode\":\"nan\",\"count\":2}", "failures.bad_reply"},
    {"{\"mode\":\"count_mismatch\",\"count\":2}", "failures.bad_reply"},
    /* curl itself retries a request once when a reused connection drops */
    {"{\"mode\":\"drop\",\"count\":8}", "failures.transport"},
};

static void phase_faults(sd_server *srv, fake_emb *fk) {
  for (size_t i = 0; i < sizeof(FAULTS) / sizeof(*FAULTS); i++) {
    long long before = counter(srv, FAULTS[i].counter);
    CHECK_INT(fake_faults(fk, FAULTS[i].faults), 0);
    CHECK_INT(ingest_texts(srv, 40, 0), 40);
    json_t *q = wait_drained(srv, 20);
    CHECK(q != NULL);
    long long after = json_path_int(q, FAULTS[i].counter, -1);
    if (after <= before)
      fprintf(stderr, "fault %s: %s stayed at %lld\n", FAULTS[i].faults,
              FAULTS[i].counter, after);
    CHECK(after > before);
    json_decref(q);
    fake_faults(fk, "{\"mode\":\"ok\"}");
  }
}

/* A 429 asking for 2 s: nothing is embedded sooner. */
static void phase_retry_after(sd_server *srv, fake_emb *fk) {
  CHECK_INT(fake_faults(fk, "{\"mode\":\"429\",\"count\":1,\"retry_after\":2}"), 0);
  double t0 = now_s();
  CHECK_INT(ingest_texts(srv, 8, 0), 8);
  json_decref(wait_drained(srv, 20));
  double took = now_s() - t0;
  if (took < 1.9) fprintf(stderr, "drained %.2f s after a 429 asking 2 s\n", took);
  CHECK(took >= 1.9);
  CHECK(took < 10);
}

/* A dead embedder: the breaker opens and only probes reach it. */
static void phase_breaker(sd_server *srv, fake_emb *fk) {
  CHECK_INT(fake_faults(fk, "{\"mode\":\"500\"}"), 0);
  CHECK_INT(ingest_texts(srv, 64, 0), 64);
  sleep_ms(1500);
  json_t *q = queue_info(srv);
  const char *state = json_string_value(json_path(q, "breaker.state"));
  CHECK(state && strcmp(state, "closed") != 0);
  CHECK(json_path_int(q, "breaker.opens", 0) >= 1);
  CHECK(json_path_int(q, "pending", 0) == 64);
  json_decref(q);
  json_t *s0 = fake_stats(fk);
  sleep_ms(1000); /* cooldown 400 ms: a handful of probes, not a storm */
  json_t *s1 = fake_stats(fk);
  long long probes = json_path_int(s1, "requests", 0) - json_path_int(s0, "requests", 0);
  if (probes > 4) fprintf(stderr, "%lld requests in 1 s with the breaker open\n", probes);
  CHECK(probes >= 1 && probes <= 4);
  json_decref(s0);
  json_decref(s1);
  fake_faults(fk, "{\"mode\":\"ok\"}");
  q = wait_drained(srv, 20);
  CHECK(q && !strcmp(json_string_value(json_path(q, "breaker.state")), "closed"));
  json_decref(q);
}

/* One text the embedder rejects: it alone is marked failed. */
static void phase_poison(sd_server *srv, fake_emb *fk) {
  long long failed0 = counter(srv, "failed");
  CHECK_INT(fake_faults(fk, "{\"mode\":\"poison\"}"), 0);
  CHECK_INT(ingest_texts(srv, 30, 1), 30);
  json_t *q = wait_drained(srv, 30);
  CHECK(q != NULL);
  CHECK_INT(json_path_int(q, "failed", -1), failed0 + 1);
  CHECK(json_path_int(q, "splits", 0) >= 1);
  json_decref(q);
  fake_faults(fk, "{\"mode\":\"ok\"}");
}

/* /metrics says what /v1/info says about the queue. */
static void phase_metrics(sd_server *srv) {
  http_resp r = http_req(srv, "GET", "/metrics", NULL, NULL, 0);
  CHECK_INT(r.status, 200);
  CHECK(strncmp(r.content_type, "text/plain", 10) == 0);
  CHECK(strstr(r.body, "\nsegmentd_embed_pending_texts 0\n") != NULL);
  CHECK(strstr(r.body, "\nsegmentd_embed_failed_texts 1\n") != NULL);
  CHECK(strstr(r.body, "segmentd_embed_request_failures_total{reason=\"busy\"}") != NULL);
  CHECK(strstr(r.body, "# TYPE segmentd_embed_requests_total counter") != NULL);
  http_resp_free(&r);
}

/* kill -9 with texts pending (the embedder stalls), and again with
 * requests in flight; the restarted server embeds what was left. */
static void phase_kill(sd_server *srv, fake_emb *fk) {
  CHECK_INT(fake_faults(fk, "{\"mode\":\"slow\",\"delay_ms\":3000}"), 0);
  CHECK_INT(ingest_texts(srv, 50, 0), 50);
  sleep_ms(200);
  CHECK(counter(srv, "pending") == 50);
  srv_kill9(srv);
  fake_faults(fk, "{\"mode\":\"ok\"}");
  CHECK_INT(srv_restart(srv), 0);
  json_decref(wait_drained(srv, 20));
  for (int round = 0; round < 3; round++) {
    CHECK_INT(fake_faults(fk, "{\"mode\":\"slow\",\"delay_ms\":100}"), 0);
    CHECK_INT(ingest_texts(srv, 200, 0), 200);
    sleep_ms(150 + 100 * round);
    srv_kill9(srv);
    fake_faults(fk, "{\"mode\":\"ok\"}");
    CHECK_INT(srv_restart(srv), 0);
  }
  json_decref(wait_drained(srv, 30));
}

/* ---- the database, read directly after a clean stop ---- */

static void unit(float *v) {
  double n = 0;
  for (int j = 0; j < DIM; j++) n += (double)v[j] * v[j];
  n = sqrt(n);
  for (int j = 0; j < DIM && n > 0; j++) v[j] = (float)(v[j] / n);
}

/* Every acknowledged text once, with the fake's vector and an intent,
 * except the rejected one (no vector, failed in the queue). */
static void verify_texts(sqlite3 *db, float *sums) {
  sqlite3_stmt *st;
  CHECK(sqlite3_prepare_v2(db, "SELECT text_id,user_id,text,embedding,cluster,"
                               "(SELECT failed_at FROM embed_queue WHERE "
                               "text_rowid=texts.id) FROM texts",
                           -1, &st, NULL) == SQLITE_OK);
  long long rows = 0, failed = 0, bad_vec = 0, unassigned = 0;
  float want[DIM];
  while (sqlite3_step(st) == SQLITE_ROW) {
    rows++;
    const char *id = (const char *)sqlite3_column_text(st, 0);
    const char *text = (const char *)sqlite3_column_text(st, 2);
    CHECK(json_object_get(g_acked, id) != NULL);
    if (strstr(text, "POISON")) {
      failed += sqlite3_column_type(st, 3) == SQLITE_NULL &&
                sqlite3_column_type(st, 5) != SQLITE_NULL;
      continue;
    }
    fake_embedding(text, strlen(text), DIM, want);
    const float *got = sqlite3_column_blob(st, 3);
    int ok = got && sqlite3_column_bytes(st, 3) == (int)sizeof(want);
    for (int j = 0; ok && j < DIM; j++) ok = fabsf(got[j] - want[j]) < 1e-6f;
    bad_vec += !ok;
    unassigned += sqlite3_column_type(st, 4) == SQLITE_NULL;
    int u = atoi((const char *)sqlite3_column_text(st, 1) + 3);
    unit(want);
    for (int j = 0; j < DIM; j++) sums[u * DIM + j] += want[j];
  }
  sqlite3_finalize(st);
  CHECK_INT(rows, (long long)json_object_size(g_acked));
  CHECK_INT(failed, 1);
  CHECK_INT(bad_vec, 0);
  CHECK_INT(unassigned, 0);
}

/* Each user's text view is the sum of their texts' unit vectors (one
 * time for all): an embedding added twice would show. */
static void verify_users(sqlite3 *db, const float *sums) {
  sqlite3_stmt *st;
  CHECK(sqlite3_prepare_v2(db, "SELECT user_id,text_sum FROM users", -1, &st,
                           NULL) == SQLITE_OK);
  int users = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    int u = atoi((const char *)sqlite3_column_text(st, 0) + 3);
    const float *got = sqlite3_column_blob(st, 1);
    CHECK(got && sqlite3_column_bytes(st, 1) == (int)(sizeof(float) * DIM));
    double err = 0;
    for (int j = 0; got && j < DIM; j++)
      err = fmax(err, fabs((double)got[j] - sums[u * DIM + j]));
    if (err > 1e-3) fprintf(stderr, "user %d: text view off by %g\n", u, err);
    CHECK(err <= 1e-3);
    users++;
  }
  sqlite3_finalize(st);
  CHECK_INT(users, USERS);
}

static void verify_db(const char *path) {
  sqlite3 *db;
  CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
  float *sums = calloc(USERS * DIM, sizeof(float));
  verify_texts(db, sums);
  verify_users(db, sums);
  sqlite3_stmt *st;
  CHECK(sqlite3_prepare_v2(db, "SELECT count(*),count(failed_at) FROM embed_queue",
                           -1, &st, NULL) == SQLITE_OK);
  CHECK(sqlite3_step(st) == SQLITE_ROW);
  CHECK_INT(sqlite3_column_int(st, 0), 1); /* only the rejected text */
  CHECK_INT(sqlite3_column_int(st, 1), 1);
  sqlite3_finalize(st);
  CHECK(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK);
  CHECK(sqlite3_step(st) == SQLITE_ROW &&
        !strcmp((const char *)sqlite3_column_text(st, 0), "ok"));
  sqlite3_finalize(st);
  sqlite3_close(db);
  free(sums);
}

/* Another embedder on this database is refused, with the way out named. */
static void verify_switch_refused(sd_server *srv) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "%s serve --db %s --listen 127.0.0.1:0 2>&1",
           getenv("SD_BIN"), srv->db);
  char out[4096];
  int status = run_capture(cmd, out, sizeof out);
  CHECK(status != 0);
  CHECK(strstr(out, "segmentd reembed") != NULL);
  CHECK(strstr(out, "openai:fake-model") != NULL);
}

int main(void) {
  double t0 = now_s();
  g_acked = json_object();
  fake_emb *fk = fake_start(DIM, NULL);
  CHECK(fk != NULL);
  if (!fk) return check_done("remote_embed");
  char dim[16];
  snprintf(dim, sizeof dim, "%d", DIM);
  const char *const args[] = {
      "--embedder", "openai", "--embed-url", fk->url, "--embed-model",
      "fake-model", "--dim", dim, "--embed-batch", "16", "--embed-inflight",
      "4", "--embed-timeout-ms", "500", "--embed-backoff-ms", "50",
      "--embed-backoff-max-ms", "400", "--embed-breaker-failures", "3",
      "--embed-breaker-cooldown-ms", "400", "--embed-retries", "2",
      "--train-min", "100", NULL};
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (srv) {
    phase_clean(srv);
    phase_faults(srv, fk);
    phase_retry_after(srv, fk);
    phase_breaker(srv, fk);
    phase_poison(srv, fk);
    phase_metrics(srv);
    phase_kill(srv, fk);
    CHECK(wait_model(srv, "intents", 20) == 0);
    CHECK_INT(srv_stop(srv), 0);
    verify_db(srv->db);
    verify_switch_refused(srv);
    srv_free(srv);
  }
  CHECK_INT(fake_stop(fk), 0);
  fprintf(stderr, "remote embed test: %zu texts in %.1f s\n",
          json_object_size(g_acked), now_s() - t0);
  json_decref(g_acked);
  http_thread_done();
  return check_done("remote_embed");
}
