/*
 * test_metrics_http.c -- GET /metrics on a live server, after traffic.
 *
 * Scrapes, sends a known amount of traffic (segment lookups, ingest
 * batches with duplicates, unmatched paths, a wrong method, a
 * re-cluster), scrapes again and checks that each counter moved by
 * exactly what was sent, that labels carry route patterns and never raw
 * paths, and that `promtool check metrics` (Debian package prometheus)
 * accepts the scrape: the test fails when promtool is missing or
 * complains. Then, restarted with --queue-max 1, ingest from several
 * threads: every 429 a client saw is one segmentd_writer_queue_full_total
 * and one 429 in the request counts.
 */
#include "check.h"
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOOKUPS 7
#define BATCH 5
#define STRESS_THREADS 4
#define STRESS_BATCHES 12
#define STRESS_ITEMS 1500

static sd_server *srv;

/* The value of one series ("name{labels}") in a scrape; 0 when absent (a
 * series appears once it has seen a request) or unparsable. */
static double series(const char *text, const char *name) {
  double v = metrics_series(text, name);
  return v < 0 ? 0 : v; /* every value here is a count, a size or a time */
}

static char *scrape(void) {
  http_resp r = http_req(srv, "GET", "/metrics", NULL, NULL, 0);
  CHECK_INT(r.status, 200);
  CHECK(strstr(r.content_type, "text/plain") != NULL);
  CHECK(strstr(r.content_type, "version=0.0.4") != NULL);
  return r.body; /* the caller frees it */
}

/* promtool check metrics on a scrape: 0 when it is clean. */
static int promtool_clean(const char *text) {
  char path[400], cmd[600], out[4096];
  snprintf(path, sizeof(path), "%s/scrape.txt", srv->dir);
  FILE *f = fopen(path, "w");
  if (!f || fputs(text, f) < 0) {
    if (f) fclose(f);
    return -1;
  }
  fclose(f);
  if (run_capture("command -v promtool >/dev/null 2>&1", out, sizeof(out))) {
    fprintf(stderr, "promtool is missing: install the Debian package "
                    "prometheus (scripts/deps.sh does)\n");
    return -1;
  }
  snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
  int rc = run_capture(cmd, out, sizeof(out));
  if (rc != 0 || out[0]) fprintf(stderr, "promtool (exit %d): %s\n", rc, out);
  return rc != 0 || out[0] ? -1 : 0;
}

static json_t *events(const char *prefix, int from, int n, int users) {
  json_t *a = json_array();
  char id[64], user[32];
  for (int i = from; i < from + n; i++) {
    snprintf(id, sizeof(id), "%s%d", prefix, i);
    snprintf(user, sizeof(user), "u-%d", i % users);
    json_array_append_new(a, json_pack("{s:s,s:s,s:s}", "event_id", id,
                                       "user_id", user, "type",
                                       i % 2 ? "checkout" : "refund"));
  }
  return a;
}

#define FITS(space) \
  "segmentd_recluster_duration_seconds_count{space=\"" space "\",result=\"done\"}"

/* A fit is counted when its job ends, after its model is visible and its
 * points re-assigned (maint.c): wait for both first fits to be counted. */
static void wait_first_fits(void) {
  double deadline = now_s() + 60 * harness_timeout_scale();
  int counted = 0;
  while (!counted && now_s() < deadline) {
    char *m = scrape();
    counted = series(m, FITS("intents")) >= 1 &&
              series(m, FITS("segments")) >= 1;
    free(m);
    if (!counted) sleep_ms(100);
  }
  CHECK(counted);
}

static void seed_models(void) {
  json_t *ev = events("seed-", 0, 24, 24);
  json_t *tx = planted_texts("t-", 0, 24, "u-", 24);
  CHECK_INT(ingest(srv, "events", ev, NULL, NULL), 200);
  CHECK_INT(ingest(srv, "texts", tx, NULL, NULL), 200);
  json_decref(ev);
  json_decref(tx);
  CHECK(wait_model(srv, "segments", 60) == 0);
  CHECK(wait_model(srv, "intents", 60) == 0);
  wait_first_fits();
}

static void traffic(void) {
  for (int i = 0; i < LOOKUPS; i++) {
    http_resp r = http_req(srv, "GET", "/v1/users/u-1/segment", NULL, NULL, 0);
    CHECK_INT(r.status, 200);
    http_resp_free(&r);
  }
  json_t *ev = events("more-", 0, BATCH, 3);
  long long acc = -1, dup = -1;
  CHECK_INT(ingest(srv, "events", ev, &acc, &dup), 200);
  CHECK_INT(acc, BATCH);
  CHECK_INT(ingest(srv, "events", ev, &acc, &dup), 200);
  CHECK_INT(dup, BATCH);
  json_decref(ev);
  for (int i = 0; i < 3; i++) {
    http_resp r = http_req(srv, "GET", "/v1/nope/x", NULL, NULL, 0);
    CHECK_INT(r.status, 404);
    http_resp_free(&r);
  }
  for (int i = 0; i < 2; i++) {
    http_resp r = http_req(srv, "DELETE", "/v1/events", NULL, NULL, 0);
    CHECK_INT(r.status, 405);
    http_resp_free(&r);
  }
  long st = 0;
  json_t *j = http_json(srv, "POST", "/v1/spaces/intents/recluster",
                        "{\"wait\": true, \"k\": 3}", &st);
  CHECK_INT(st, 200);
  json_decref(j);
}

#define DELTA(name) (series(b, name) - series(a, name))

/* The change of a request series between scrapes a and b. */
static double req_delta(const char *a, const char *b, const char *family,
                        const char *method, const char *route,
                        const char *code) {
  char name[256];
  snprintf(name, sizeof(name), "%s{method=\"%s\",route=\"%s\",code=\"%s\"}",
           family, method, route, code);
  return DELTA(name);
}

#define REQS "segmentd_http_requests_total"
#define DURS "segmentd_http_request_duration_seconds_count"
#define ITEMS(kind, result) \
  "segmentd_ingest_items_total{kind=\"" kind "\",result=\"" result "\"}"
#define BATCHES(suffix) "segmentd_ingest_batch_items_" suffix

static void check_deltas(const char *a, const char *b) {
  const char *seg = "/v1/users/{}/segment";
  CHECK_INT(req_delta(a, b, REQS, "GET", seg, "200"), LOOKUPS);
  CHECK_INT(req_delta(a, b, DURS, "GET", seg, "200"), LOOKUPS);
  CHECK_INT(req_delta(a, b, REQS, "GET", "/metrics", "200"), 1);
  CHECK_INT(req_delta(a, b, REQS, "POST", "/v1/events", "200"), 2);
  CHECK_INT(req_delta(a, b, REQS, "GET", "unmatched", "404"), 3);
  CHECK_INT(req_delta(a, b, REQS, "DELETE", "unmatched", "405"), 2);
  CHECK_INT(req_delta(a, b, REQS, "POST", "/v1/spaces/{}/recluster", "200"), 1);
  CHECK_INT(DELTA(ITEMS("events", "accepted")), BATCH);
  CHECK_INT(DELTA(ITEMS("events", "duplicate")), BATCH);
  CHECK_INT(DELTA(ITEMS("texts", "accepted")), 0);
  CHECK_INT(DELTA(BATCHES("count{kind=\"events\"}")), 2);
  CHECK_INT(DELTA(BATCHES("bucket{kind=\"events\",le=\"10\"}")), 2);
  CHECK_INT(DELTA(BATCHES("bucket{kind=\"events\",le=\"1\"}")), 0);
  CHECK(DELTA("segmentd_sqlite_commit_duration_seconds_count") >= 2);
  /* every commit sets the WAL gauge; the checkpoint counters are there */
  CHECK(series(b, "segmentd_sqlite_wal_pages") > 0);
  CHECK(metrics_series(b, "segmentd_sqlite_checkpoints_total{by=\"thread\"}") >= 0);
  CHECK(metrics_series(b, "segmentd_sqlite_checkpoints_total{by=\"writer\"}") >= 0);
  /* the explicit re-cluster, and any the server ran by itself meanwhile
   * (the first model's encoder refit may finish late on a loaded machine):
   * each finished one installed a model version */
  double installed = series(b, "segmentd_model_version{space=\"intents\"}") -
                     series(a, "segmentd_model_version{space=\"intents\"}");
  CHECK(installed >= 1);
  CHECK_INT(DELTA("segmentd_recluster_duration_seconds_count"
                  "{space=\"intents\",result=\"done\"}"), (long)installed);
  CHECK(series(b, "segmentd_model_version{space=\"intents\"}") >= 2);
  CHECK_INT(series(b, "segmentd_model_clusters{space=\"intents\"}"), 3);
  CHECK(series(b, "segmentd_space_points{space=\"segments\"}") >= 24);
  CHECK(series(b, "process_resident_memory_bytes") > 1e6);
  CHECK(series(b, "segmentd_uptime_seconds") > 0);
  CHECK_INT(series(b, "segmentd_drift_status{space=\"intents\"}"), 0);
  CHECK(strstr(b, "\nsegmentd_webhook_outbox_pending ") != NULL);
  CHECK(strstr(b, "\nsegmentd_embed_pending_texts 0\n") != NULL);
  CHECK(strstr(b, "u-1/segment") == NULL); /* patterns, never raw paths */
  CHECK(strstr(b, "/v1/nope") == NULL);
}

/* ---- 429s under --queue-max 1 ---- */

static void *stress(void *arg) {
  long t = (long)arg, *busy = calloc(1, sizeof(long));
  char prefix[32];
  for (int i = 0; i < STRESS_BATCHES && busy; i++) {
    snprintf(prefix, sizeof(prefix), "s%ld-%d-", t, i);
    json_t *ev = events(prefix, 0, STRESS_ITEMS, 50);
    long st = ingest(srv, "events", ev, NULL, NULL);
    json_decref(ev);
    if (st == 429) (*busy)++;
    else CHECK_INT(st, 200);
  }
  http_thread_done();
  return busy;
}

static void check_queue_full(void) {
  char *a = scrape();
  pthread_t th[STRESS_THREADS];
  long busy = 0;
  for (long t = 0; t < STRESS_THREADS; t++)
    CHECK(pthread_create(&th[t], NULL, stress, (void *)t) == 0);
  for (int t = 0; t < STRESS_THREADS; t++) {
    long *n = NULL;
    pthread_join(th[t], (void **)&n);
    CHECK(n != NULL);
    if (n) busy += *n;
    free(n);
  }
  char *b = scrape();
  fprintf(stderr, "queue-max 1: %ld of %d batches got 429\n", busy,
          STRESS_THREADS * STRESS_BATCHES);
  CHECK_INT(DELTA("segmentd_writer_queue_full_total"), busy);
  CHECK_INT(req_delta(a, b, REQS, "POST", "/v1/events", "429"), busy);
  CHECK_INT(DELTA(BATCHES("count{kind=\"events\"}")),
            STRESS_THREADS * STRESS_BATCHES - busy);
  CHECK_INT(series(b, "segmentd_ingest_queue_capacity"), 1);
  CHECK(promtool_clean(b) == 0);
  free(a);
  free(b);
}

int main(void) {
  const char *args[] = {"--train-min", "20", "--k", "2", NULL};
  const char *tight[] = {"--train-min", "20", "--k", "2", "--queue-max", "1",
                         NULL};
  srv = srv_start(args);
  CHECK(srv != NULL);
  if (!srv) return check_done("test_metrics_http");
  seed_models();
  char *a = scrape();
  traffic();
  char *b = scrape();
  check_deltas(a, b);
  CHECK(promtool_clean(b) == 0);
  free(a);
  free(b);
  CHECK_INT(srv_stop(srv), 0);
  CHECK(srv_set_args(srv, tight) == 0 && srv_restart(srv) == 0);
  if (srv->pid > 0) check_queue_full();
  CHECK_INT(srv_stop(srv), 0);
  if (check_failures) srv_dump_log(srv);
  srv_free(srv);
  http_thread_done();
  return check_done("test_metrics_http");
}
