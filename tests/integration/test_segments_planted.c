/*
 * test_segments_planted.c -- acceptance of the segments space: planted
 * user segments are recovered from the users' multi-view vectors.
 *
 * 5000 users (4% noise users with no pattern, left out of the evaluation)
 * in 8 planted segments, 12 events and 2 texts each (harness_gen.h), on a
 * server with --train-min 100000 (no automatic first model), --dim 64 and
 * --stability-runs 0; POST /v1/spaces/segments/recluster {"k":8,"wait":true},
 * then POST .../evaluate with the truth: ARI >= 0.9 (the acceptance bar).
 * Then four ablations, each on a fresh server with one view's signal
 * removed (every user draws that view from the same mix): the three other
 * views must still recover the segments, ARI >= 0.9 again. NMI, ARI,
 * accuracy and timings of every run go to stderr, and for the full run the
 * mean per-view contribution to the users' similarity (explain=true).
 * Under valgrind memcheck (vg_test_segments_planted) the users are 1,000,
 * with the same bars: the same code paths at a fifth of the data. Memcheck
 * ran test_drift_baseline_http 125 times slower than the sanitizer build
 * (3,135 s against 25 s); at 5,000 users this test (56 s there) would need
 * about 2 hours, past the vg_ tests' hour.
 */
#include "check.h"
#include "harness.h"
#include "harness_gen.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USERS 5000
#define USERS_MEMCHECK 1000
#define SEGMENTS 8

static const char *const SERVER_ARGS[] = {"--train-min", "100000", "--dim", "64",
                                          "--stability-runs", "0", NULL};

/* Waits until every point of the space sits on the live model. */
static int wait_assigned(sd_server *srv, const char *space, double timeout_s) {
  for (double t0 = now_s(); now_s() - t0 < timeout_s; sleep_ms(100)) {
    json_t *sp = get_space(srv, space);
    int done = sp && !json_is_true(json_object_get(sp, "reassigning")) &&
               json_path_int(sp, "assigned", -1) == json_path_int(sp, "points", -2);
    json_decref(sp);
    if (done) return 0;
  }
  return -1;
}

/* POST .../evaluate with the truth; the answer (new reference) or NULL. */
static json_t *evaluate(sd_server *srv, const gen_conf *c) {
  long st = 0;
  json_t *body = json_pack("{s:o}", "labels", gen_labels(c));
  json_t *r = http_json_obj(srv, "POST", "/v1/spaces/segments/evaluate", body, &st);
  CHECK_INT(st, 200);
  CHECK_INT(json_path_int(r, "n", -1), json_object_size(json_object_get(body, "labels")));
  json_decref(body);
  return r;
}

/* Mean contribution of each view to the similarity of `n` users to their
 * segment (GET /v1/users/{id}/segment?explain=true), printed to stderr. */
static void print_view_shares(sd_server *srv, const gen_conf *c, int n) {
  double sum[8] = {0};
  char names[8][16] = {{0}};
  int got = 0;
  for (int u = 0; u < n; u++) {
    char path[96];
    long st;
    snprintf(path, sizeof(path), "/v1/users/%s%06d/segment?explain=true",
             c->prefix ? c->prefix : "u", u * (c->n_users / n));
    json_t *r = http_json(srv, "GET", path, NULL, &st);
    json_t *views = json_path(r, "explanation.views");
    double parts = 0;
    for (size_t i = 0; i < json_array_size(views) && i < 8; i++) {
      json_t *v = json_array_get(views, i);
      const char *nm = json_string_value(json_object_get(v, "view"));
      if (!names[i][0] && nm) snprintf(names[i], sizeof(names[i]), "%s", nm);
      sum[i] += json_number_value(json_object_get(v, "contribution"));
      parts += json_number_value(json_object_get(v, "contribution"));
    }
    if (views) /* the explanation adds up to the similarity */
      CHECK_NEAR(parts, json_number_value(json_path(r, "segment.similarity")), 1e-5);
    got += st == 200 && views;
    json_decref(r);
  }
  fprintf(stderr, "  mean view contributions over %d users:", got);
  for (int i = 0; i < 8 && names[i][0]; i++)
    fprintf(stderr, " %s %.3f", names[i], got ? sum[i] / got : 0.0);
  fprintf(stderr, "\n");
  CHECK(got == n);
}

/* Each segment's cluster (the one its users dominate, from the evaluation's
 * purity table) names at least two of the segment's three planted event
 * types among its top features. */
static void check_labels(sd_server *srv, json_t *ev) {
  long st;
  json_t *cl = http_json(srv, "GET", "/v1/spaces/segments/clusters", NULL, &st);
  size_t i;
  json_t *c;
  int checked = 0;
  json_array_foreach(json_object_get(cl, "clusters"), i, c) {
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)json_integer_value(json_object_get(c, "id")));
    const char *lab = json_string_value(json_path(json_object_get(json_object_get(ev, "purity"), key), "label"));
    if (!lab || strncmp(lab, "seg-", 4)) continue;
    int seg = atoi(lab + 4), named = 0;
    json_t *tf = json_object_get(c, "top_features");
    for (int j = 0; j < 3; j++)
      for (size_t f = 0; f < json_array_size(tf); f++)
        named += !strcmp(json_string_value(json_array_get(tf, f)), gen_planted_type(seg, j));
    if (named < 2) fprintf(stderr, "  cluster for %s names %d planted types\n", lab, named);
    CHECK(named >= 2);
    checked++;
  }
  CHECK(checked >= SEGMENTS);
  json_decref(cl);
}

/* With an intents model too, each segment's dominant intent (counted in
 * the background) holds most of its members' texts: every planted segment
 * writes about one topic 85% of the time. */
static void check_dominant_intents(sd_server *srv) {
  long st;
  json_decref(http_json(srv, "POST", "/v1/spaces/intents/recluster",
                        "{\"k\":8,\"wait\":true}", &st));
  CHECK_INT(st, 200);
  json_t *cl = NULL;
  /* counted once the maintenance thread is idle: after the segments
   * re-cluster the intents model's encoder refit queues, which on a loaded
   * machine takes a while (bounded by the test's timeout) */
  double t0 = now_s(), limit = 150 * harness_timeout_scale();
  for (; now_s() - t0 < limit; sleep_ms(250)) {
    json_decref(cl);
    cl = http_json(srv, "GET", "/v1/spaces/segments/clusters", NULL, &st);
    json_t *first = json_array_get(json_object_get(cl, "clusters"), 0);
    if (json_array_size(json_object_get(first, "dominant_intents")) > 0) break;
  }
  fprintf(stderr, "  dominant intents after %.1f s\n", now_s() - t0);
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(cl, "clusters"), i, c) {
    json_t *top = json_array_get(json_object_get(c, "dominant_intents"), 0);
    double share = json_number_value(json_object_get(top, "share"));
    if (share < 0.5) fprintf(stderr, "  segment %zu: top intent share %.2f\n", i, share);
    CHECK(share >= 0.5);
  }
  json_decref(cl);
}

/* Polls the job until it leaves "queued": 1 when it is running. */
static int job_running(sd_server *srv, long long id) {
  char path[64];
  snprintf(path, sizeof(path), "/v1/jobs/%lld", id);
  for (int i = 0; i < 3000; i++) {
    long st;
    json_t *j = http_json(srv, "GET", path, NULL, &st);
    const char *state = json_string_value(json_object_get(j, "state"));
    int queued = st == 200 && state && !strcmp(state, "queued");
    int running = st == 200 && state && !strcmp(state, "running");
    json_decref(j);
    if (!queued) return running;
    sleep_ms(1);
  }
  return 0;
}

/* SIGTERM while a re-cluster is fitting: the server drains (the fit runs to
 * its end) and meanwhile answers requests, on the kept-alive connection
 * too, with 503 shutting_down, Retry-After and Connection: close; then it
 * exits 0. */
static void stop_while_fitting(sd_server *srv) {
  long st;
  json_t *r = http_json(srv, "POST", "/v1/spaces/segments/recluster",
                        "{\"k\":8}", &st);
  CHECK_INT(st, 202);
  long long job = json_path_int(r, "job_id", 0);
  json_decref(r);
  if (!job_running(srv, job)) {
    fprintf(stderr, "  re-cluster job %lld never ran: drain not checked\n", job);
    CHECK(0);
  }
  CHECK_INT(kill(srv->pid, SIGTERM), 0);
  http_resp a = {0};
  for (int i = 0; i < 100000; i++) { /* until the signal is taken */
    http_resp_free(&a);
    a = http_req(srv, "GET", "/readyz", NULL, NULL, 0);
    if (a.status != 200) break;
  }
  CHECK_INT(a.status, 503);
  CHECK(a.body && strstr(a.body, "\"shutting_down\""));
  CHECK(a.retry_after[0] != 0);
  CHECK_STR(a.connection, "close");
  http_resp_free(&a);
  CHECK_INT(srv_stop(srv), 0);
}

/* One run on a fresh server: ingest, re-cluster with k, evaluate. */
static void run_case(const char *name, const gen_conf *c, int explain) {
  double t0 = now_s();
  sd_server *srv = srv_start(SERVER_ARGS);
  CHECK(srv != NULL);
  if (!srv) return;
  CHECK_INT(gen_ingest(srv, c), 200);
  CHECK_INT(space_points(srv, "segments"), c->n_users);
  double t1 = now_s();
  long st = 0;
  char body[64];
  snprintf(body, sizeof(body), "{\"k\":%d,\"wait\":true}", c->n_segments);
  json_decref(http_json(srv, "POST", "/v1/spaces/segments/recluster", body, &st));
  CHECK_INT(st, 200);
  CHECK_INT(wait_assigned(srv, "segments", 60), 0);
  double t2 = now_s();
  json_t *ev = evaluate(srv, c);
  double ari = json_number_value(json_object_get(ev, "ari"));
  double nmi = json_number_value(json_object_get(ev, "nmi"));
  fprintf(stderr, "segments %-12s users %d: ARI %.4f NMI %.4f accuracy %.4f "
          "(ingest %.1f s, re-cluster %.1f s)\n", name, c->n_users, ari, nmi,
          json_number_value(json_object_get(ev, "accuracy")), t1 - t0, t2 - t1);
  CHECK(ari >= 0.9);
  if (explain) print_view_shares(srv, c, 40);
  if (explain) check_labels(srv, ev);
  if (explain) check_dominant_intents(srv);
  json_decref(ev);
  if (explain)
    stop_while_fitting(srv);
  else
    CHECK_INT(srv_stop(srv), 0);
  if (check_failures) srv_dump_log(srv);
  srv_free(srv);
}

int main(void) {
  const gen_conf base = {.n_users = memcheck_valgrind() ? USERS_MEMCHECK : USERS,
                         .n_segments = SEGMENTS,
                         .events_per_user = 12, .texts_per_user = 2,
                         .noise_share = 0.04, .seed = 20261127};
  run_case("all views", &base, 1);
  gen_conf c = base;
  c.no_text_signal = 1;
  run_case("no text", &c, 0);
  c = base, c.no_behaviour_signal = 1;
  run_case("no behaviour", &c, 0);
  c = base, c.no_time_signal = 1;
  run_case("no time", &c, 0);
  c = base, c.no_context_signal = 1;
  run_case("no context", &c, 0);
  return check_done("test_segments_planted");
}
