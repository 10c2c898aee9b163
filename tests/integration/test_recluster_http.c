/*
 * test_recluster_http.c -- re-clustering over HTTP (POST .../recluster, GET
 * /v1/jobs/{id}, GET .../events, POST .../evaluate).
 *
 * 300 planted texts in 3 topics (enough for the encoder's LSA refit at
 * dim 64): every family recovers the topics; K chosen by the service is 3;
 * re-clustering twice keeps ids; a re-cluster swaps the model while other
 * threads ingest and read, with no error and nothing lost; bad requests
 * get 4xx.
 */
#include "check.h"
#include "harness.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPICS 3
#define PER_TOPIC 100

static void ingest_topics(sd_server *srv, const char *prefix, int from, int n) {
  json_t *items = planted_texts(prefix, from, n, NULL, 0);
  CHECK_INT(ingest(srv, "texts", items, NULL, NULL), 200);
  json_decref(items);
}

/* Share of texts whose cluster holds mostly their topic (noise skipped). */
static double purity(sd_server *srv, const char *prefix, int n, json_t **asg_out) {
  long st;
  char ct[64];
  int bad;
  json_t *asg = get_assignments(srv, "intents", &st, ct, sizeof(ct), &bad);
  int counts[256][TOPICS];
  memset(counts, 0, sizeof(counts));
  size_t i;
  json_t *o;
  json_array_foreach(asg, i, o) {
    const char *id = json_string_value(json_object_get(o, "id"));
    json_t *c = json_object_get(o, "cluster");
    if (!id || strncmp(id, prefix, strlen(prefix)) || !json_is_integer(c) ||
        json_integer_value(c) >= 256)
      continue;
    counts[json_integer_value(c)][atoi(id + strlen(prefix)) % TOPICS]++;
  }
  int good = 0, total = 0;
  for (int c = 0; c < 256; c++) {
    int best = 0, sum = 0;
    for (int t = 0; t < TOPICS; t++) {
      sum += counts[c][t];
      if (counts[c][t] > best) best = counts[c][t];
    }
    good += best, total += sum;
  }
  if (asg_out) *asg_out = asg;
  else json_decref(asg);
  (void)n;
  return total ? (double)good / total : 0;
}

static json_t *recluster(sd_server *srv, const char *body, long *status) {
  return http_json(srv, "POST", "/v1/spaces/intents/recluster", body, status);
}

static void test_families(sd_server *srv) {
  const char *bodies[] = {
      "{\"algorithm\":\"kmeans\",\"k\":3,\"wait\":true}",
      "{\"algorithm\":\"hierarchical\",\"k\":3,\"wait\":true}",
      "{\"algorithm\":\"density\",\"wait\":true}",
      "{\"algorithm\":\"kmeans\",\"wait\":true}"}; /* K chosen: 3 */
  for (int i = 0; i < 4; i++) {
    long st = 0;
    json_t *r = recluster(srv, bodies[i], &st);
    CHECK_INT(st, 200);
    long long k = json_path_int(r, "model.k", -1);
    if (i == 2) CHECK(k >= TOPICS && k <= 2 * TOPICS);
    else CHECK_INT(k, TOPICS);
    if (i == 3)
      CHECK_STR(json_string_value(json_path(r, "model.quality.k_selection.method")),
                "silhouette");
    double p = purity(srv, "p", TOPICS * PER_TOPIC, NULL);
    if (p < 0.95) fprintf(stderr, "family %d purity %.3f\n", i, p);
    CHECK(p >= 0.95);
    json_decref(r);
  }
}

/* Re-clustering the same data twice keeps (almost) every id. */
static void test_stable_ids(sd_server *srv) {
  long st;
  json_t *a = NULL, *b = NULL;
  json_decref(recluster(srv, "{\"k\":3,\"wait\":true}", &st));
  purity(srv, "p", 0, &a);
  json_t *r = recluster(srv, "{\"k\":3,\"wait\":true}", &st);
  CHECK_INT(st, 200);
  CHECK_INT(json_path_int(r, "model.lineage.born", -1), 0);
  CHECK_INT(json_path_int(r, "model.lineage.retired", -1), 0);
  purity(srv, "p", 0, &b);
  size_t i, same = 0;
  json_t *o;
  json_array_foreach(a, i, o) {
    json_t *x = json_array_get(b, i);
    same += json_equal(json_object_get(o, "cluster"), json_object_get(x, "cluster"));
  }
  CHECK(json_array_size(a) > 0 && same >= json_array_size(a) * 9 / 10);
  json_decref(a), json_decref(b), json_decref(r);
}

static void test_async_job(sd_server *srv) {
  long st;
  json_t *r = recluster(srv, "{\"k\":3}", &st);
  CHECK_INT(st, 202);
  char path[64];
  snprintf(path, sizeof(path), "/v1/jobs/%lld", json_path_int(r, "job_id", 0));
  json_decref(r);
  const char *state = NULL;
  for (int i = 0; i < 600; i++) {
    json_t *j = http_json(srv, "GET", path, NULL, &st);
    CHECK_INT(st, 200);
    state = json_string_value(json_object_get(j, "state"));
    int finished = state && (!strcmp(state, "done") || !strcmp(state, "failed"));
    if (finished) CHECK_STR(state, "done");
    json_decref(j);
    if (finished) break;
    sleep_ms(100);
  }
  json_decref(http_json(srv, "GET", "/v1/jobs/999999", NULL, &st));
  CHECK_INT(st, 404);
}

static void test_lineage_and_evaluate(sd_server *srv) {
  long st;
  json_t *ev = http_json(srv, "GET", "/v1/spaces/intents/events?limit=2", NULL, &st);
  CHECK_INT(st, 200);
  CHECK_INT(json_array_size(json_object_get(ev, "events")), 2);
  CHECK_STR(json_string_value(json_object_get(
                json_array_get(json_object_get(ev, "events"), 0), "kind")),
            "born");
  CHECK(json_object_get(ev, "next_cursor") != NULL);
  json_decref(ev);
  json_t *labels = json_object();
  char id[32];
  for (int i = 0; i < TOPICS * PER_TOPIC; i++) {
    snprintf(id, sizeof(id), "p%d", i);
    json_object_set_new(labels, id, json_string(planted_words[i % TOPICS][0]));
  }
  json_object_set_new(labels, "nope", json_string("x"));
  json_t *body = json_pack("{s:o}", "labels", labels);
  json_t *r = http_json_obj(srv, "POST", "/v1/spaces/intents/evaluate", body, &st);
  CHECK_INT(st, 200);
  CHECK(json_real_value(json_object_get(r, "nmi")) > 0.9);
  CHECK(json_real_value(json_object_get(r, "accuracy")) > 0.95);
  CHECK_INT(json_path_int(r, "unknown", -1), 1);
  CHECK_INT(json_path_int(r, "n", -1), TOPICS * PER_TOPIC);
  json_decref(r), json_decref(body);
}

static void test_bad_requests(sd_server *srv) {
  static const struct { const char *path, *body; long status; const char *code; } cases[] = {
      {"/v1/spaces/intents/recluster", "{\"algorithm\":\"nope\"}", 422, "invalid_field"},
      {"/v1/spaces/intents/recluster", "{\"k\":0}", 422, "invalid_field"},
      {"/v1/spaces/intents/recluster", "{\"k\":\"3\"}", 422, "invalid_field"},
      {"/v1/spaces/intents/recluster", "{\"wait\":1}", 422, "invalid_field"},
      {"/v1/spaces/intents/recluster", "{", 400, "malformed_json"},
      {"/v1/spaces/nope/recluster", "{}", 404, "not_found"},
      {"/v1/spaces/intents/evaluate", "{\"labels\":{}}", 422, "invalid_field"},
      {"/v1/spaces/intents/evaluate", "{\"labels\":{\"a\":1}}", 422, "invalid_field"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    long st;
    json_t *r = http_json(srv, "POST", cases[i].path, cases[i].body, &st);
    CHECK_INT(st, cases[i].status);
    CHECK(check_error_body(r, cases[i].code));
    json_decref(r);
  }
  long st;
  json_decref(http_json(srv, "GET", "/v1/spaces/intents/events?since=x", NULL, &st));
  CHECK_INT(st, 400);
}

/* ---- the swap under concurrent ingest and reads ---- */

typedef struct {
  sd_server *srv;
  int id;
  atomic_int *stop;
  int requests, failures, acked;
} worker;

static void *ingest_worker(void *arg) {
  worker *w = arg;
  char prefix[16];
  snprintf(prefix, sizeof(prefix), "w%d-", w->id);
  for (int b = 0; !atomic_load(w->stop); b++) {
    json_t *items = json_array();
    char id[64], text[128];
    for (int i = 0; i < 20; i++) {
      snprintf(id, sizeof(id), "%s%d", prefix, b * 20 + i);
      planted_text((b * 20 + i) % TOPICS, (unsigned)(b * 20 + i + 7 * w->id), text, sizeof(text));
      json_array_append_new(items, json_pack("{s:s,s:s,s:s}", "text_id", id,
                                             "user_id", prefix, "text", text));
    }
    long st = ingest(w->srv, "texts", items, NULL, NULL);
    json_decref(items);
    w->requests++;
    if (st == 200) w->acked += 20;
    else w->failures++;
  }
  http_thread_done();
  return NULL;
}

static void *read_worker(void *arg) {
  worker *w = arg;
  const char *paths[] = {"/v1/spaces/intents/clusters", "/v1/spaces",
                         "/v1/users/w0-/segment"};
  for (int i = 0; !atomic_load(w->stop); i++) {
    long st;
    json_t *r = i % 4 == 3
        ? http_json(w->srv, "POST", "/v1/assign", "{\"text\":\"goal in the match\"}", &st)
        : http_json(w->srv, "GET", paths[i % 3], NULL, &st);
    json_decref(r);
    w->requests++;
    if (st != 200 && st != 404) w->failures++;
  }
  http_thread_done();
  return NULL;
}

static void test_swap_under_load(sd_server *srv) {
  atomic_int stop = 0;
  worker w[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (worker){srv, i, &stop, 0, 0, 0};
    pthread_create(&th[i], NULL, i < 2 ? ingest_worker : read_worker, &w[i]);
  }
  json_t *sp0 = get_space(srv, "intents");
  long long v0 = json_path_int(sp0, "model_version", -1);
  json_decref(sp0);
  for (int r = 0; r < 2; r++) {
    long st;
    json_decref(recluster(srv, "{\"k\":3,\"wait\":true}", &st));
    CHECK_INT(st, 200);
  }
  atomic_store(&stop, 1);
  int acked = 0;
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    CHECK(w[i].requests > 0);
    CHECK_INT(w[i].failures, 0);
    acked += w[i].acked;
  }
  json_t *sp = get_space(srv, "intents");
  CHECK(json_path_int(sp, "model_version", -1) >= v0 + 2);
  CHECK_INT(json_path_int(sp, "points", -1), TOPICS * PER_TOPIC + acked);
  CHECK_INT(json_path_int(sp, "assigned", -1), TOPICS * PER_TOPIC + acked);
  json_decref(sp);
}

/* The refitted projection (stored in parts) and the model survive a
 * restart: the same text gets the same intent before and after. */
static void test_restart_keeps_projection(sd_server *srv) {
  long st;
  const char *q = "{\"text\":\"rain and storm in the forecast\"}";
  json_t *info = http_json(srv, "GET", "/v1/info", NULL, &st);
  long long pv = json_path_int(info, "embedder.projection_version", -1);
  /* installs and projection parts went through the writer's queue too:
     once idle, nothing is counted as waiting */
  CHECK_INT(json_path_int(info, "ingest.queue_depth", -1), 0);
  CHECK(pv >= 1); /* 300 texts >= --dim 64: the encoder was refitted */
  json_t *a = http_json(srv, "POST", "/v1/assign", q, &st);
  CHECK_INT(st, 200);
  CHECK_INT(srv_stop(srv), 0);
  CHECK_INT(srv_restart(srv), 0);
  json_t *info2 = http_json(srv, "GET", "/v1/info", NULL, &st);
  CHECK_INT(json_path_int(info2, "embedder.projection_version", -1), pv);
  json_t *b = http_json(srv, "POST", "/v1/assign", q, &st);
  CHECK_INT(st, 200);
  CHECK_INT(json_path_int(b, "intent.id", -2), json_path_int(a, "intent.id", -1));
  CHECK(fabs(json_real_value(json_path(a, "intent.similarity")) -
             json_real_value(json_path(b, "intent.similarity"))) < 1e-3);
  json_decref(info), json_decref(info2), json_decref(a), json_decref(b);
}

int main(void) {
  const char *args[] = {"--train-min", "60", "--dim", "64", "--k-max", "12",
                        "--stability-runs", "2", "--restarts", "3", NULL};
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (!srv) return check_done("test_recluster_http");
  ingest_topics(srv, "p", 0, TOPICS * PER_TOPIC);
  CHECK_INT(wait_model(srv, "intents", 60), 0);
  test_families(srv);
  test_stable_ids(srv);
  test_async_job(srv);
  test_lineage_and_evaluate(srv);
  test_bad_requests(srv);
  test_swap_under_load(srv);
  test_restart_keeps_projection(srv);
  CHECK_INT(srv_stop(srv), 0);
  if (check_failures) srv_dump_log(srv);
  srv_free(srv);
  return check_done("test_recluster_http");
}
