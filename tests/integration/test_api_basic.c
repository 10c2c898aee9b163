/*
 * test_api_basic.c -- the happy path of the HTTP contract (docs/API.md).
 *
 * Starts segmentd with --train-min 40 --k 3, checks /healthz, /readyz and
 * /v1/info, ingest counting (accepted / duplicates, retries and duplicate
 * ids inside one batch), users and their segments before and after the
 * first model, spaces, clusters (sizes, shares, top terms), /v1/assign, the
 * NDJSON assignments stream, read-your-writes, clustering purity on planted
 * topics, a graceful SIGTERM and a restart that keeps the model.
 */
#include "check.h"
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#define N_TOPICS 3
#define USERS_PER_TOPIC 15
#define TEXTS_PER_USER 2
#define EVENTS_PER_USER 4
#define MAX_CLUSTER_IDS 64

static const char *const TOPIC_WORDS[N_TOPICS][10] = {
    {"refund", "card", "payment", "charge", "bank", "account", "money",
     "transfer", "fee", "declined"},
    {"weather", "rain", "sunny", "forecast", "cloud", "temperature", "storm",
     "wind", "snow", "humid"},
    {"football", "match", "goal", "score", "team", "player", "league",
     "referee", "stadium", "penalty"}};
static const char *const FILLER[] = {"please", "today", "about", "my",
                                     "the",    "what",  "how",   "need"};
static const char *const GROUP_TYPES[N_TOPICS][2] = {
    {"add_to_cart", "checkout"},
    {"view_article", "share"},
    {"open_ticket", "chat_support"}};
static const char *const GROUP_DEVICE[N_TOPICS] = {"ios", "android", "web"};
static const char *const GROUP_COUNTRY[N_TOPICS] = {"DE", "US", "FR"};
static const int GROUP_HOUR[N_TOPICS] = {8, 14, 21};

static unsigned lcg(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return (*s >> 16) & 0x7fff;
}

/* A short text about `topic`, varied by `seed`: 6 topic words, 2 fillers. */
static void make_text(int topic, unsigned seed, char *out, size_t cap) {
  unsigned s = seed * 7919u + (unsigned)topic * 104729u + 1u;
  size_t used = 0;
  out[0] = '\0';
  for (int w = 0; w < 8; w++) {
    const char *word = (w == 2 || w == 5) ? FILLER[lcg(&s) % 8]
                                          : TOPIC_WORDS[topic][lcg(&s) % 10];
    int n = snprintf(out + used, cap - used, "%s%s", w ? " " : "", word);
    if (n < 0 || (size_t)n >= cap - used)
      return;
    used += (size_t)n;
  }
}

static json_t *text_item(const char *text_id, const char *user_id, int topic,
                         unsigned seed) {
  char text[256];
  make_text(topic, seed, text, sizeof text);
  json_t *t = json_pack("{s:s, s:s}", "text_id", text_id, "text", text);
  if (t && user_id)
    json_object_set_new(t, "user_id", json_string(user_id));
  return t;
}

static json_t *event_item(const char *event_id, const char *user_id, int g,
                          int j) {
  char ts[64];
  snprintf(ts, sizeof ts, "2026-11-%02dT%02d:%02d:00Z", 20 + j % 5,
           GROUP_HOUR[g], (j * 7) % 60);
  return json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s, s:f}}", "event_id",
                   event_id, "user_id", user_id, "type", GROUP_TYPES[g][j % 2],
                   "ts", ts, "properties", "device", GROUP_DEVICE[g], "country",
                   GROUP_COUNTRY[g], "price", 10.0 + g);
}

/* ---- operations endpoints ---- */

static void test_health(sd_server *srv) {
  http_resp r = http_req(srv, "GET", "/healthz", NULL, NULL, 0);
  CHECK_INT(r.status, 200);
  CHECK(strstr(r.content_type, "application/json") != NULL);
  json_t *j = json_loadb(r.body, r.len, 0, NULL);
  CHECK_STR(json_string_value(json_object_get(j, "status")), "ok");
  json_decref(j);
  http_resp_free(&r);
  r = http_req(srv, "GET", "/readyz", NULL, NULL, 0);
  CHECK_INT(r.status, 200);
  http_resp_free(&r);
}

static int has_uptime(const json_t *info) {
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)info, key, v) {
    if (strncmp(key, "uptime", 6) == 0 && json_is_number(v))
      return 1;
  }
  return 0;
}

static void test_info(sd_server *srv) {
  long st = 0;
  json_t *info = http_json(srv, "GET", "/v1/info", NULL, &st);
  CHECK_INT(st, 200);
  CHECK(json_is_string(json_object_get(info, "version")));
  const json_t *emb = json_object_get(info, "embedder");
  CHECK(json_is_object(emb));
  CHECK(json_is_string(json_object_get(emb, "kind")));
  CHECK(json_object_get(emb, "model") != NULL);
  CHECK_INT(json_path_int(emb, "dimension", -1), 256);
  CHECK(json_is_object(json_object_get(info, "config")));
  CHECK(has_uptime(info));
  json_decref(info);
}

/* ---- ingest counting ---- */

/* Posts items (stolen) and expects 200 with these counts. */
static void expect_counts(sd_server *srv, const char *kind, json_t *items,
                          long long acc, long long dup) {
  long long a = -1, d = -1;
  CHECK_INT(ingest(srv, kind, items, &a, &d), 200);
  CHECK_INT(a, acc);
  CHECK_INT(d, dup);
  json_decref(items);
}

static void test_duplicates(sd_server *srv) {
  json_t *ev = json_array();
  char id[32];
  for (int i = 0; i < 3; i++) {
    snprintf(id, sizeof id, "e-a%d", i);
    json_array_append_new(ev, event_item(id, "u-a", 0, i));
  }
  expect_counts(srv, "events", json_deep_copy(ev), 3, 0);
  expect_counts(srv, "events", ev, 0, 3); /* retry of the same batch */
  expect_counts(srv, "events",
                json_pack("[o,o]", event_item("e-a9", "u-a", 0, 1),
                          event_item("e-a9", "u-a", 0, 1)),
                1, 1); /* the same id twice in one batch */
  expect_counts(srv, "events",
                json_pack("[o,o]", event_item("e-a0", "u-a", 0, 0),
                          event_item("e-a8", "u-a", 0, 2)),
                1, 1); /* one old, one new */
  json_t *tx = json_pack("[o,o]", text_item("t-a-1", "u-a", 0, 901),
                         text_item("t-a-2", "u-a", 0, 902));
  expect_counts(srv, "texts", json_deep_copy(tx), 2, 0);
  expect_counts(srv, "texts", tx, 0, 2);
  expect_counts(srv, "texts",
                json_pack("[o,o]", text_item("t-a-3", "u-a", 0, 903),
                          text_item("t-a-3", "u-a", 0, 903)),
                1, 1);
  long long ne = -1, nt = -1;
  CHECK_INT(get_user_counts(srv, "u-a", &ne, &nt), 0);
  CHECK_INT(ne, 5);
  CHECK_INT(nt, 3);
}

/* ---- users and segments before a model ---- */

static void test_unknown_user(sd_server *srv) {
  long st = 0;
  json_t *j = http_json(srv, "GET", "/v1/users/nobody-here/segment", NULL, &st);
  CHECK_INT(st, 404);
  CHECK(check_error_body(j, "not_found"));
  json_decref(j);
  j = http_json(srv, "GET", "/v1/users/nobody-here", NULL, &st);
  CHECK_INT(st, 404);
  CHECK(check_error_body(j, "not_found"));
  json_decref(j);
}

static void test_segment_before_model(sd_server *srv) {
  long st = 0;
  json_t *j = http_json(srv, "GET", "/v1/users/u-a/segment", NULL, &st);
  CHECK_INT(st, 200);
  CHECK_STR(json_string_value(json_object_get(j, "user_id")), "u-a");
  CHECK(json_object_get(j, "segment") != NULL);
  CHECK(json_is_null(json_object_get(j, "segment")));
  json_decref(j);
}

static void test_spaces_empty(sd_server *srv) {
  const char *names[2] = {"intents", "segments"};
  const char *entity[2] = {"text", "user"};
  for (int i = 0; i < 2; i++) {
    json_t *s = get_space(srv, names[i]);
    CHECK(s != NULL);
    const char *e = json_string_value(json_object_get(s, "entity"));
    CHECK(e && strstr(e, entity[i]));
    CHECK(json_is_integer(json_object_get(s, "points")));
    CHECK(json_object_get(s, "model_version") != NULL);
    CHECK(!model_present(json_object_get(s, "model_version")));
    json_decref(s);
  }
}

/* ---- planted data ---- */

static void ingest_planted(sd_server *srv) {
  json_t *tx = json_array(), *ev = json_array();
  char tid[64], uid[64], eid[64];
  for (int g = 0; g < N_TOPICS; g++) {
    for (int u = 0; u < USERS_PER_TOPIC; u++) {
      snprintf(uid, sizeof uid, "u-g%d-%d", g, u);
      for (int k = 0; k < TEXTS_PER_USER; k++) {
        int i = u * TEXTS_PER_USER + k;
        snprintf(tid, sizeof tid, "t-%d-%d", g, i);
        json_array_append_new(tx, text_item(tid, uid, g, (unsigned)i));
      }
      for (int j = 0; j < EVENTS_PER_USER; j++) {
        snprintf(eid, sizeof eid, "e-g%d-%d-%d", g, u, j);
        json_array_append_new(ev, event_item(eid, uid, g, j));
      }
    }
  }
  size_t nt = json_array_size(tx), ne = json_array_size(ev);
  expect_counts(srv, "texts", tx, (long long)nt, 0);
  expect_counts(srv, "events", ev, (long long)ne, 0);
}

/* Topic of a planted id "t-<g>-<i>" / "u-g<g>-<u>", or -1. */
static int topic_of(const char *id) {
  if (strncmp(id, "t-", 2) == 0 && id[2] >= '0' && id[2] < '0' + N_TOPICS &&
      id[3] == '-')
    return id[2] - '0';
  if (strncmp(id, "u-g", 3) == 0 && id[3] >= '0' && id[3] < '0' + N_TOPICS)
    return id[3] - '0';
  return -1;
}

/* Cluster purity of id->cluster (a JSON object) against topic_of(), and
 * each topic's majority cluster in major[] (-1 when none). */
static double purity(const json_t *map, long long major[N_TOPICS]) {
  long long ids[MAX_CLUSTER_IDS];
  int cnt[MAX_CLUSTER_IDS][N_TOPICS] = {{0}}, nc = 0, total = 0;
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)map, key, v) {
    int t = topic_of(key), c = 0;
    if (t < 0 || !json_is_integer(v))
      continue;
    while (c < nc && ids[c] != json_integer_value(v))
      c++;
    if (c == nc && nc == MAX_CLUSTER_IDS)
      continue;
    if (c == nc)
      ids[nc++] = json_integer_value(v);
    cnt[c][t]++;
    total++;
  }
  int pure = 0;
  for (int c = 0; c < nc; c++) {
    int m = 0;
    for (int t = 0; t < N_TOPICS; t++)
      m = cnt[c][t] > m ? cnt[c][t] : m;
    pure += m;
  }
  for (int t = 0; t < N_TOPICS; t++) {
    int best = 0;
    major[t] = -1;
    for (int c = 0; c < nc; c++)
      if (cnt[c][t] > best)
        best = cnt[c][t], major[t] = ids[c];
  }
  return total ? (double)pure / total : 0.0;
}

static void check_distinct(const long long major[N_TOPICS]) {
  for (int a = 0; a < N_TOPICS; a++) {
    CHECK(major[a] >= 0);
    for (int b = a + 1; b < N_TOPICS; b++)
      CHECK(major[a] != major[b]);
  }
}

/* ---- the intents space after training ---- */

/* Fetches the assignments as an id->cluster object, checking each line. */
static json_t *assignment_map(sd_server *srv, size_t *lines) {
  long st = 0;
  int bad = 0;
  char ctype[128];
  json_t *arr = get_assignments(srv, "intents", &st, ctype, sizeof ctype, &bad);
  CHECK_INT(st, 200);
  CHECK(strstr(ctype, "ndjson") != NULL);
  CHECK_INT(bad, 0);
  json_t *map = json_object();
  size_t i;
  json_t *line;
  json_array_foreach(arr, i, line) {
    const char *id = json_string_value(json_object_get(line, "id"));
    const json_t *c = json_object_get(line, "cluster");
    const json_t *conf = json_object_get(line, "confidence");
    CHECK(id && json_is_integer(c) && json_is_number(conf));
    CHECK(json_number_value(conf) >= 0.0 && json_number_value(conf) <= 1.0);
    if (!id)
      continue;
    CHECK(json_object_get(map, id) == NULL); /* one line per text */
    json_object_set(map, id, c ? (json_t *)c : json_null());
  }
  *lines = json_array_size(arr);
  json_decref(arr);
  return map;
}

static void test_assignments(sd_server *srv, long long n_texts,
                             long long major[N_TOPICS]) {
  size_t lines = 0;
  json_t *map = assignment_map(srv, &lines);
  CHECK_INT(lines, n_texts);
  CHECK_INT(json_object_size(map), n_texts);
  double p = purity(map, major);
  fprintf(stderr, "intents purity %.3f\n", p);
  CHECK(p >= 0.9);
  check_distinct(major);
  json_decref(map);
}

/* The topic that most of a cluster's top terms come from, or -1. */
static int terms_topic(const json_t *terms) {
  int hits[N_TOPICS] = {0}, best = -1, most = 0;
  for (size_t i = 0; i < json_array_size(terms) && i < 5; i++) {
    const char *s = json_string_value(json_array_get(terms, i));
    for (int t = 0; s && t < N_TOPICS; t++)
      for (int w = 0; w < 10; w++)
        hits[t] += strstr(s, TOPIC_WORDS[t][w]) != NULL;
  }
  for (int t = 0; t < N_TOPICS; t++)
    if (hits[t] > most)
      most = hits[t], best = t;
  return best;
}

static void check_cluster(const json_t *c, const char *terms_key) {
  CHECK(json_integer_value(json_object_get(c, "id")) >= 0);
  CHECK(json_is_integer(json_object_get(c, "id")));
  CHECK(json_is_string(json_object_get(c, "label")));
  CHECK_STR(json_string_value(json_object_get(c, "label_source")), "auto");
  CHECK(json_is_number(json_object_get(c, "cohesion")));
  CHECK(json_object_get(c, "stability") != NULL);
  CHECK(json_is_array(json_object_get(c, "representatives")));
  CHECK(json_is_string(json_object_get(c, "created_at")));
  const json_t *terms = json_object_get(c, terms_key);
  CHECK(json_array_size(terms) > 0);
  for (size_t i = 0; i < json_array_size(terms); i++) {
    const json_t *t = json_array_get(terms, i);
    CHECK(strcmp(terms_key, "top_terms") == 0
              ? json_is_string(t)
              : (json_is_string(t) || json_is_object(t)));
  }
}

/* Checks /v1/spaces/<space>/clusters against the space's point count;
 * returns the topics named by the top terms as a bit set (intents). */
static unsigned test_clusters(sd_server *srv, const char *space,
                              const char *terms_key) {
  char path[64];
  long st = 0;
  long long points = space_points(srv, space);
  snprintf(path, sizeof path, "/v1/spaces/%s/clusters", space);
  json_t *j = http_json(srv, "GET", path, NULL, &st);
  CHECK_INT(st, 200);
  CHECK_STR(json_string_value(json_object_get(j, "space")), space);
  CHECK(model_present(json_object_get(j, "model_version")));
  const json_t *cl = json_object_get(j, "clusters");
  CHECK_INT(json_array_size(cl), 3);
  long long sizes = 0;
  double shares = 0.0;
  unsigned topics = 0;
  for (size_t i = 0; i < json_array_size(cl); i++) {
    const json_t *c = json_array_get(cl, i);
    check_cluster(c, terms_key);
    sizes += json_path_int(c, "size", -1000000);
    shares += json_number_value(json_object_get(c, "share"));
    int t = terms_topic(json_object_get(c, terms_key));
    if (t >= 0)
      topics |= 1u << t;
  }
  CHECK_INT(sizes, points);
  CHECK_NEAR(shares, 1.0, 0.02);
  json_decref(j);
  return topics;
}

static void test_spaces_trained(sd_server *srv, long long n_texts,
                                long long n_users) {
  const char *names[2] = {"intents", "segments"};
  long long points[2] = {n_texts, n_users};
  for (int i = 0; i < 2; i++) {
    json_t *s = get_space(srv, names[i]);
    CHECK(s != NULL);
    CHECK(model_present(json_object_get(s, "model_version")));
    CHECK_INT(json_path_int(s, "k", -1), 3);
    CHECK_INT(json_path_int(s, "points", -1), points[i]);
    CHECK(json_is_string(json_object_get(s, "algorithm")));
    CHECK(json_is_object(json_object_get(s, "quality")));
    CHECK(json_is_string(json_object_get(s, "trained_at")));
    json_decref(s);
  }
}

/* ---- segments of users ---- */

static void check_alternatives(const json_t *alts, const char *score) {
  CHECK(json_is_array(alts));
  for (size_t i = 0; i < json_array_size(alts); i++) {
    const json_t *a = json_array_get(alts, i);
    CHECK(json_is_integer(json_object_get(a, "id")));
    CHECK(json_object_get(a, "label") != NULL);
    CHECK(json_is_number(json_object_get(a, score)));
  }
}

/* Checks one GET /v1/users/{id}/segment answer with a model; returns the
 * segment id, or -1. */
static long long check_segment_answer(const json_t *j, const char *uid) {
  CHECK_STR(json_string_value(json_object_get(j, "user_id")), uid);
  const json_t *seg = json_object_get(j, "segment");
  CHECK(json_is_object(seg));
  CHECK(json_is_integer(json_object_get(seg, "id")));
  CHECK(json_is_string(json_object_get(seg, "label")));
  double conf = json_number_value(json_object_get(seg, "confidence"));
  CHECK(json_is_number(json_object_get(seg, "confidence")));
  CHECK(conf >= 0.0 && conf <= 1.0);
  CHECK(json_is_number(json_object_get(seg, "similarity")));
  CHECK(model_present(json_object_get(j, "model_version")));
  check_alternatives(json_object_get(j, "alternatives"), "similarity");
  check_alternatives(json_object_get(j, "intents"), "share");
  CHECK(json_is_string(json_object_get(j, "updated_at")));
  CHECK(json_is_string(json_object_get(j, "computed_at")));
  return json_path_int(j, "segment.id", -1);
}

static long long get_segment_id(sd_server *srv, const char *uid) {
  char path[128];
  long st = 0;
  snprintf(path, sizeof path, "/v1/users/%s/segment", uid);
  json_t *j = http_json(srv, "GET", path, NULL, &st);
  CHECK_INT(st, 200);
  long long id = check_segment_answer(j, uid);
  json_decref(j);
  return id;
}

static void test_user_segments(sd_server *srv) {
  json_t *map = json_object();
  char uid[64];
  for (int g = 0; g < N_TOPICS; g++) {
    for (int u = 0; u < USERS_PER_TOPIC; u++) {
      snprintf(uid, sizeof uid, "u-g%d-%d", g, u);
      json_object_set_new(map, uid, json_integer(get_segment_id(srv, uid)));
    }
  }
  long long major[N_TOPICS];
  double p = purity(map, major);
  fprintf(stderr, "segments purity %.3f\n", p);
  CHECK(p >= 0.9);
  check_distinct(major);
  json_decref(map);
}

/* ---- assign, read-your-writes ---- */

static void test_assign(sd_server *srv, const long long major[N_TOPICS]) {
  long long before = space_points(srv, "intents");
  char text[256];
  for (int t = 0; t < N_TOPICS; t++) {
    long st = 0;
    make_text(t, 5000u + (unsigned)t, text, sizeof text);
    json_t *req = json_pack("{s:s}", "text", text);
    json_t *j = http_json_obj(srv, "POST", "/v1/assign", req, &st);
    CHECK_INT(st, 200);
    CHECK_INT(json_path_int(j, "intent.id", -1), major[t]);
    CHECK(json_is_string(json_path(j, "intent.label")));
    CHECK(json_is_number(json_path(j, "intent.confidence")));
    CHECK(json_is_array(json_object_get(j, "alternatives")));
    json_decref(req);
    json_decref(j);
  }
  json_t *vec = json_array();
  for (int i = 0; i < 256; i++)
    json_array_append_new(vec, json_real(i % 2 ? 0.0625 : -0.0625));
  json_t *req = json_pack("{s:o}", "embedding", vec);
  long st = 0;
  json_t *j = http_json_obj(srv, "POST", "/v1/assign", req, &st);
  CHECK_INT(st, 200);
  CHECK(json_is_integer(json_path(j, "intent.id")));
  json_decref(req);
  json_decref(j);
  CHECK_INT(space_points(srv, "intents"), before); /* nothing stored */
}

static void test_read_your_writes(sd_server *srv,
                                  const long long major[N_TOPICS]) {
  expect_counts(srv, "texts",
                json_pack("[o]", text_item("t-ryw-1", "u-ryw", 1, 777)), 1, 0);
  size_t lines = 0;
  json_t *map = assignment_map(srv, &lines);
  CHECK_INT(json_path_int(map, "t-ryw-1", -1), major[1]);
  json_decref(map);
  long long ne = -1, nt = -1;
  CHECK_INT(get_user_counts(srv, "u-ryw", &ne, &nt), 0);
  CHECK_INT(nt, 1);
  get_segment_id(srv, "u-ryw");
  expect_counts(srv, "events",
                json_pack("[o,o]", event_item("e-ryw-1", "u-ryw2", 2, 0),
                          event_item("e-ryw-2", "u-ryw2", 2, 1)),
                2, 0);
  CHECK_INT(get_user_counts(srv, "u-ryw2", &ne, &nt), 0);
  CHECK_INT(ne, 2);
  get_segment_id(srv, "u-ryw2");
}

/* ---- graceful stop and restart ---- */

static json_t *segment_snapshot(sd_server *srv, const char *uid) {
  char path[128];
  long st = 0;
  snprintf(path, sizeof path, "/v1/users/%s/segment", uid);
  json_t *j = http_json(srv, "GET", path, NULL, &st);
  CHECK_INT(st, 200);
  return j;
}

static void test_restart_keeps_model(sd_server *srv) {
  json_t *before = segment_snapshot(srv, "u-g0-0");
  size_t lines_before = 0, lines_after = 0;
  json_t *map = assignment_map(srv, &lines_before);
  json_decref(map);
  CHECK_INT(srv_stop(srv), 0); /* SIGTERM -> exit 0 */
  CHECK_INT(srv_restart(srv), 0);
  json_t *after = segment_snapshot(srv, "u-g0-0");
  CHECK(json_equal(json_object_get(before, "model_version"),
                   json_object_get(after, "model_version")));
  CHECK_INT(json_path_int(after, "segment.id", -1),
            json_path_int(before, "segment.id", -2));
  map = assignment_map(srv, &lines_after);
  CHECK_INT(lines_after, lines_before);
  json_decref(map);
  json_decref(before);
  json_decref(after);
}

static void run_all(sd_server *srv) {
  long long major[N_TOPICS] = {-1, -1, -1};
  test_health(srv);
  test_info(srv);
  test_spaces_empty(srv);
  test_unknown_user(srv);
  test_duplicates(srv);
  test_segment_before_model(srv);
  ingest_planted(srv);
  long long n_texts = N_TOPICS * USERS_PER_TOPIC * TEXTS_PER_USER + 3;
  long long n_users = N_TOPICS * USERS_PER_TOPIC + 1;
  int trained = wait_model(srv, "intents", 60) == 0 &&
                wait_model(srv, "segments", 60) == 0;
  CHECK(trained);
  if (!trained)
    return;
  test_spaces_trained(srv, n_texts, n_users);
  CHECK_INT(test_clusters(srv, "intents", "top_terms"), 0x7);
  test_clusters(srv, "segments", "top_features");
  test_assignments(srv, n_texts, major);
  test_user_segments(srv);
  test_assign(srv, major);
  test_read_your_writes(srv, major);
  test_restart_keeps_model(srv);
}

int main(void) {
  const char *const args[] = {"--train-min", "40", "--k", "3", NULL};
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (srv) {
    run_all(srv);
    CHECK_INT(srv_stop(srv), 0);
    if (check_failures)
      srv_dump_log(srv);
    srv_free(srv);
  }
  http_thread_done();
  return check_done("test_api_basic");
}
