/*
 * test_clusters_http.c -- GET /v1/spaces/{space}/clusters/{id}/members and
 * GET /v1/spaces/{space}/map against the real server.
 *
 * 300 planted texts in 3 topics, spread over 120 users who each write about
 * one topic, so both spaces train a 3-cluster model (--k 3). Then: paging
 * through every cluster's members visits each entity exactly once and the
 * counts match the cluster sizes; the map has one centroid per cluster, the
 * requested number of points, all in live clusters, and each cluster's
 * points lie nearer (in 2-D) to their own centroid than to the others;
 * bad limits and cursors are 400, unknown spaces and clusters 404; before
 * any model the map is empty.
 */
#include "check.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPICS 3
#define PER_TOPIC 100
#define USERS 120

/* Text i has topic i % 3 and user u<i % 120>: each user keeps one topic. */
static void ingest_topics(sd_server *srv) {
  json_t *items = planted_texts("p", 0, TOPICS * PER_TOPIC, "u", USERS);
  CHECK_INT(ingest(srv, "texts", items, NULL, NULL), 200);
  json_decref(items);
}

/* Both spaces have a model, are not re-assigning, and their versions held
 * still over two polls 1.5 s apart. 0, or -1 on timeout. */
static int wait_settled(sd_server *srv, double timeout_s) {
  long long prev[2] = {-1, -1};
  const char *names[2] = {"intents", "segments"};
  int rc = -1;
  for (double t0 = now_s(); rc < 0 && now_s() - t0 < timeout_s; sleep_ms(1500)) {
    int ready = 1, same = 1;
    for (int s = 0; s < 2; s++) {
      json_t *sp = get_space(srv, names[s]);
      long long v = json_path_int(sp, "model_version", 0);
      ready &= v >= 1 && json_is_false(json_object_get(sp, "reassigning"));
      same &= v >= 1 && v == prev[s];
      prev[s] = v;
      json_decref(sp);
    }
    if (ready && same) rc = 0;
  }
  return rc;
}

static long get_status(sd_server *srv, const char *path, const char *code) {
  long st;
  json_t *r = http_json(srv, "GET", path, NULL, &st);
  if (code) CHECK(check_error_body(r, code));
  json_decref(r);
  return st;
}

/* Walks one cluster's members with limit 7, recording ids in seen. The
 * number of members visited, or -1 on a failed request. */
static long long walk_cluster(sd_server *srv, const char *space, long long id,
                              long long version, json_t *seen) {
  char path[256], cursor[64] = "";
  long long n = 0;
  for (int page = 0; page < 1000; page++) {
    snprintf(path, sizeof(path), "/v1/spaces/%s/clusters/%lld/members?limit=7%s%s",
             space, id, cursor[0] ? "&cursor=" : "", cursor);
    long st;
    json_t *r = http_json(srv, "GET", path, NULL, &st);
    CHECK_INT(st, 200);
    if (st != 200) return json_decref(r), -1;
    CHECK_STR(json_string_value(json_object_get(r, "space")), space);
    CHECK_INT(json_path_int(r, "cluster", -1), id);
    CHECK_INT(json_path_int(r, "model_version", -1), version);
    json_t *m = json_object_get(r, "members"), *e;
    size_t i;
    CHECK(json_array_size(m) <= 7);
    json_array_foreach(m, i, e) {
      const char *eid = json_string_value(json_object_get(e, "id"));
      CHECK(eid && !json_object_get(seen, eid));
      if (eid) json_object_set_new(seen, eid, json_integer(id));
      CHECK(json_is_number(json_object_get(e, "similarity")));
      CHECK(json_is_number(json_object_get(e, "confidence")));
      CHECK(json_is_string(json_object_get(e, "text")) == !strcmp(space, "intents"));
    }
    n += (long long)json_array_size(m);
    const char *next = json_string_value(json_object_get(r, "next_cursor"));
    CHECK(!next || json_array_size(m) == 7);
    snprintf(cursor, sizeof(cursor), "%s", next ? next : "");
    json_decref(r);
    if (!next) return n;
  }
  CHECK(!"members pagination did not end");
  return -1;
}

/* Every member of every cluster exactly once; counts equal the sizes. */
static void test_members_walk(sd_server *srv, const char *space, long long total) {
  char path[128];
  snprintf(path, sizeof(path), "/v1/spaces/%s/clusters", space);
  long st;
  json_t *cl = http_json(srv, "GET", path, NULL, &st);
  CHECK_INT(st, 200);
  long long version = json_path_int(cl, "model_version", -1);
  json_t *seen = json_object(), *c;
  size_t i;
  CHECK_INT(json_array_size(json_object_get(cl, "clusters")), TOPICS);
  json_array_foreach(json_object_get(cl, "clusters"), i, c) {
    long long id = json_path_int(c, "id", -1), size = json_path_int(c, "size", -2);
    long long n = walk_cluster(srv, space, id, version, seen);
    if (n != size) fprintf(stderr, "%s cluster %lld: %lld members, size %lld\n",
                           space, id, n, size);
    CHECK_INT(n, size);
  }
  CHECK_INT(json_object_size(seen), total);
  json_decref(seen);
  json_decref(cl);
}

/* One page with the default limit, and one page holding a whole cluster. */
static void test_members_pages(sd_server *srv) {
  long st;
  json_t *cl = http_json(srv, "GET", "/v1/spaces/intents/clusters", NULL, &st);
  json_t *c0 = json_array_get(json_object_get(cl, "clusters"), 0);
  long long id = json_path_int(c0, "id", -1), size = json_path_int(c0, "size", -1);
  char path[128];
  snprintf(path, sizeof(path), "/v1/spaces/intents/clusters/%lld/members", id);
  json_t *r = http_json(srv, "GET", path, NULL, &st);
  CHECK_INT(st, 200);
  long long want = size < 100 ? size : 100;
  CHECK_INT(json_array_size(json_object_get(r, "members")), want);
  CHECK((json_object_get(r, "next_cursor") != NULL) == (size > 100));
  json_decref(r);
  snprintf(path, sizeof(path), "/v1/spaces/intents/clusters/%lld/members?limit=1000", id);
  r = http_json(srv, "GET", path, NULL, &st);
  CHECK_INT(json_array_size(json_object_get(r, "members")), size);
  CHECK(json_object_get(r, "next_cursor") == NULL);
  json_decref(r);
  json_decref(cl);
}

static void test_members_errors(sd_server *srv) {
  static const struct { const char *query; long status; const char *code; } cases[] = {
      {"?limit=0", 400, "bad_request"},     {"?limit=1001", 400, "bad_request"},
      {"?limit=abc", 400, "bad_request"},   {"?limit=", 400, "bad_request"},
      {"?limit=-5", 400, "bad_request"},    {"?limit=5x", 400, "bad_request"},
      {"?cursor=abc", 400, "bad_request"},  {"?cursor=-1", 400, "bad_request"},
      {"?cursor=", 400, "bad_request"},
      {"?cursor=99999999999999999999", 400, "bad_request"},
      {"?limit=3&cursor=0", 200, NULL},
  };
  long st;
  json_t *cl = http_json(srv, "GET", "/v1/spaces/intents/clusters", NULL, &st);
  long long id = json_path_int(json_array_get(json_object_get(cl, "clusters"), 0), "id", -1);
  json_decref(cl);
  char path[160];
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    snprintf(path, sizeof(path), "/v1/spaces/intents/clusters/%lld/members%s", id,
             cases[i].query);
    CHECK_INT(get_status(srv, path, cases[i].code), cases[i].status);
  }
  CHECK_INT(get_status(srv, "/v1/spaces/nope/clusters/0/members", "not_found"), 404);
  CHECK_INT(get_status(srv, "/v1/spaces/intents/clusters/99999/members", "not_found"), 404);
  CHECK_INT(get_status(srv, "/v1/spaces/intents/clusters/x/members", "not_found"), 404);
  CHECK_INT(get_status(srv, "/v1/spaces/intents/clusters/-1/members", "not_found"), 404);
}

/* The centroid index of cluster id in the map's centroids, or -1. */
static int centroid_of(const json_t *cents, long long id) {
  for (size_t i = 0; i < json_array_size(cents); i++)
    if (json_path_int(json_array_get(cents, i), "id", -1) == id) return (int)i;
  return -1;
}

/* sqrt by Newton's method: the harness does not link libm. */
static double root(double v) {
  if (!(v > 0)) return 0;
  double r = v > 1 ? v : 1;
  for (int i = 0; i < 60; i++) r = 0.5 * (r + v / r);
  return r;
}

static double dist(const json_t *a, const json_t *b);

static double coord(const json_t *o, const char *k) {
  return json_number_value(json_object_get(o, k));
}

static double dist(const json_t *a, const json_t *b) {
  double dx = coord(a, "x") - coord(b, "x"), dy = coord(a, "y") - coord(b, "y");
  return root(dx * dx + dy * dy);
}

/* Mean 2-D distance of each cluster's points to every centroid: the own
 * centroid must be the nearest on average. */
static void check_separation(const json_t *cents, const json_t *pts) {
  double sum[TOPICS][TOPICS] = {{0}};
  int cnt[TOPICS] = {0};
  size_t i;
  json_t *p;
  json_array_foreach(pts, i, p) {
    int own = centroid_of(cents, json_path_int(p, "cluster", -1));
    CHECK(own >= 0 && own < TOPICS);
    if (own < 0 || own >= TOPICS) continue;
    cnt[own]++;
    for (int c = 0; c < TOPICS; c++) {
      const json_t *ce = json_array_get(cents, (size_t)c);
      sum[own][c] += dist(p, ce);
    }
  }
  for (int a = 0; a < TOPICS; a++) {
    CHECK(cnt[a] > 0);
    for (int c = 0; c < TOPICS && cnt[a] > 0; c++) {
      if (c == a) continue;
      if (!(sum[a][a] < sum[a][c]))
        fprintf(stderr, "cluster %d: mean distance %.4f to its own, %.4f to %d\n",
                a, sum[a][a] / cnt[a], sum[a][c] / cnt[a], c);
      CHECK(sum[a][a] < sum[a][c]);
    }
  }
}

static void test_map(sd_server *srv, const char *space, int limit, long long want) {
  char path[128];
  if (limit) snprintf(path, sizeof(path), "/v1/spaces/%s/map?limit=%d", space, limit);
  else snprintf(path, sizeof(path), "/v1/spaces/%s/map", space); /* 2000 */
  long st;
  json_t *sp = get_space(srv, space);
  json_t *r = http_json(srv, "GET", path, NULL, &st);
  CHECK_INT(st, 200);
  CHECK_STR(json_string_value(json_object_get(r, "space")), space);
  CHECK_STR(json_string_value(json_object_get(r, "method")), "pca_centroids");
  CHECK_INT(json_path_int(r, "model_version", -1), json_path_int(sp, "model_version", -2));
  json_t *ax = json_object_get(r, "axes_explained");
  CHECK_INT(json_array_size(ax), 2);
  double r1 = json_number_value(json_array_get(ax, 0)), r2 = json_number_value(json_array_get(ax, 1));
  CHECK(r1 >= r2 && r2 >= 0);
  CHECK(r1 + r2 > 0.99 && r1 + r2 < 1.0001); /* 3 centroids span a plane */
  json_t *cents = json_object_get(r, "centroids"), *pts = json_object_get(r, "points");
  CHECK_INT(json_array_size(cents), TOPICS);
  CHECK_INT(json_array_size(pts), want);
  size_t i;
  json_t *c;
  json_array_foreach(cents, i, c) {
    CHECK(json_is_number(json_object_get(c, "x")) && json_is_number(json_object_get(c, "y")));
    CHECK(json_path_int(c, "size", -1) > 0);
    CHECK(json_is_string(json_object_get(c, "label")));
  }
  json_t *ids = json_object();
  json_array_foreach(pts, i, c) {
    const char *id = json_string_value(json_object_get(c, "id"));
    CHECK(id && !json_object_get(ids, id));
    if (id) json_object_set_new(ids, id, json_true());
  }
  if (want >= 50) check_separation(cents, pts);
  json_decref(ids), json_decref(r), json_decref(sp);
}

/* The same request twice (no ingest between) gives the same answer. */
static void test_map_deterministic(sd_server *srv) {
  long st;
  json_t *a = http_json(srv, "GET", "/v1/spaces/intents/map?limit=50", NULL, &st);
  json_t *b = http_json(srv, "GET", "/v1/spaces/intents/map?limit=50", NULL, &st);
  CHECK(a && b && json_equal(a, b));
  json_decref(a), json_decref(b);
}

static void test_map_errors(sd_server *srv) {
  const char *bad[] = {"0", "10001", "abc", "", "-1", "2k"};
  char path[64];
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    snprintf(path, sizeof(path), "/v1/spaces/intents/map?limit=%s", bad[i]);
    CHECK_INT(get_status(srv, path, "bad_request"), 400);
  }
  CHECK_INT(get_status(srv, "/v1/spaces/nope/map", "not_found"), 404);
  CHECK_INT(get_status(srv, "/v1/spaces/segments/map?limit=10000", NULL), 200);
}

/* Before any model: an empty map and no clusters to list. */
static void test_no_model(sd_server *srv) {
  long st;
  json_t *r = http_json(srv, "GET", "/v1/spaces/intents/map", NULL, &st);
  CHECK_INT(st, 200);
  CHECK_INT(json_path_int(r, "model_version", -1), 0);
  CHECK_INT(json_array_size(json_object_get(r, "centroids")), 0);
  CHECK_INT(json_array_size(json_object_get(r, "points")), 0);
  CHECK_INT(json_array_size(json_object_get(r, "axes_explained")), 2);
  json_decref(r);
  CHECK_INT(get_status(srv, "/v1/spaces/intents/clusters/0/members", "not_found"), 404);
}

int main(void) {
  const char *args[] = {"--train-min", "60", "--dim", "64", "--k", "3",
                        "--stability-runs", "2", "--restarts", "3",
                        "--recluster-interval", "0", NULL};
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (!srv) return check_done("test_clusters_http");
  test_no_model(srv);
  ingest_topics(srv);
  CHECK_INT(wait_settled(srv, 120), 0);
  test_members_walk(srv, "intents", TOPICS * PER_TOPIC);
  test_members_walk(srv, "segments", USERS);
  test_members_pages(srv);
  test_members_errors(srv);
  test_map(srv, "intents", 0, TOPICS * PER_TOPIC);
  test_map(srv, "intents", 50, 50);
  test_map(srv, "segments", 0, USERS);
  test_map(srv, "segments", 7, 7);
  test_map_deterministic(srv);
  test_map_errors(srv);
  CHECK_INT(srv_stop(srv), 0);
  if (check_failures) srv_dump_log(srv);
  srv_free(srv);
  return check_done("test_clusters_http");
}
