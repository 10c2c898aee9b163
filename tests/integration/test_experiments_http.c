/*
 * test_experiments_http.c -- outcomes per segment and segment-aware
 * experiments, end to end on the real server.
 *
 * 4,000 planted-segment users (harness_gen.h: 4 segments, no noise users,
 * 12 events and 2 texts each, seed 20261127) are ingested and clustered
 * (k = 4). Experiment "promo" (control/treatment 50/50, stratified by
 * segment, outcome "purchase" within 7 days) and "layout" (30/70,
 * unstratified) assign every user. Then the test plays the outcome: every
 * user converts (a "purchase" sent now, after the assignment) with
 * probability 0.20, and 0.40 for treatment users of planted segment
 * EFFECT_SEG: a true +20 point effect there and none elsewhere. Decoys
 * that must not count: purchases before the assignment (10% of users, at
 * the generator's first day) and after the window (10%, now + 8 days).
 *
 * Power (fixed seed, so the run is deterministic; the figures say how
 * likely another seed is to pass; also checked by a 4,000-run simulation
 * of this design with Debian's /usr/bin/python3):
 *  - the effect segment's 95% Newcombe interval excludes 0: about 500 per
 *    arm, SE of the difference sqrt(.2*.8/500 + .4*.6/500) = 0.028, so
 *    z = 7.1 and power 1 - 1e-8;
 *  - each of the 3 null segments excludes 0 with probability 0.05 (the
 *    false-positive rate of a 95% interval); the test allows at most 1 of
 *    3, which a correct server fails with probability 0.007;
 *  - Cochran's Q (df 3) at p < 0.01: noncentrality about 39, power 0.999;
 *  - the pooled effect is the diluted one (the effect segment's share of
 *    treatment users times 0.20, about 0.05) within 4 standard errors.
 * Also: the server's counts equal the test's own per (pinned segment,
 * variant) exactly; the balance within every segment (|control - treatment|
 * <= 1: blocks of 2); the unstratified split within 4 SE of 30/70;
 * stickiness across repeat lookups and a restart; outcomes per segment
 * (first_seen anchor, window edges); stop; erasure; bad definitions.
 */
#include "check.h"
#include "harness.h"
#include "harness_gen.h"

#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define USERS 4000
#define SEGMENTS 4
#define EFFECT_SEG 2
#define P_BASE 0.20
#define EFFECT 0.20
#define BASE_MS 1794787200000LL /* the generator's first day, 2026-11-16 */
#define DAY_MS 86400000LL

static const char *const SERVER_ARGS[] = {"--train-min", "100000", "--dim", "64",
                                          "--stability-runs", "0", NULL};

/* What the test knows about each user. */
typedef struct {
  int planted, variant, layout; /* variant of promo (0 control), of layout */
  long long segment;            /* pinned segment, -1 = null */
  int converted, decoy_before, decoy_after;
} user_t;

static user_t users[USERS];

static long long wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A user's own deterministic stream (splitmix64). */
static double unit(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return (double)((z ^ (z >> 31)) >> 11) * 0x1p-53;
}

static void uid(int i, char *out, size_t cap) { snprintf(out, cap, "u%06d", i); }

/* Ingests events in batches of GEN_BATCH_MAX; items stolen. */
static void ingest_events(sd_server *srv, json_t *items) {
  json_t *batch = json_array();
  for (size_t i = 0; i <= json_array_size(items); i++) {
    if (i == json_array_size(items) || json_array_size(batch) == GEN_BATCH_MAX) {
      if (json_array_size(batch)) CHECK_INT(ingest(srv, "events", batch, NULL, NULL), 200);
      json_decref(batch);
      batch = json_array();
    }
    if (i < json_array_size(items)) json_array_append(batch, json_array_get(items, i));
  }
  json_decref(batch);
  json_decref(items);
}

static json_t *purchase(const char *id, const char *user, long long ts) {
  json_t *e = json_pack("{s:s,s:s,s:s}", "event_id", id, "user_id", user, "type", "purchase");
  if (ts) json_object_set_new(e, "ts", json_integer(ts));
  return e;
}

/* ---- set-up ---- */

static sd_server *start_clustered(const gen_conf *c) {
  sd_server *srv = srv_start(SERVER_ARGS);
  CHECK(srv != NULL);
  if (!srv) return NULL;
  CHECK_INT(gen_ingest(srv, c), 200);
  long st;
  json_decref(http_json(srv, "POST", "/v1/spaces/segments/recluster",
                        "{\"k\":4,\"wait\":true,\"seed\":7}", &st));
  CHECK_INT(st, 200);
  for (double t0 = now_s(); now_s() - t0 < 60; sleep_ms(100)) {
    json_t *sp = get_space(srv, "segments");
    int done = sp && !json_is_true(json_object_get(sp, "reassigning")) &&
               json_path_int(sp, "assigned", -1) == USERS;
    json_decref(sp);
    if (done) break;
  }
  /* decoys before any assignment (also makes "purchase" a known type) */
  json_t *pre = json_array();
  char id[32], ev[48];
  for (int i = 0; i < USERS; i++) {
    uint64_t s = 0x5eedULL * (uint64_t)(i + 1);
    users[i].planted = gen_segment(c, i);
    users[i].decoy_before = unit(&s) < 0.10;
    users[i].decoy_after = unit(&s) < 0.10;
    if (!users[i].decoy_before) continue;
    uid(i, id, sizeof(id));
    snprintf(ev, sizeof(ev), "pre-%s", id);
    json_array_append_new(pre, purchase(ev, id, BASE_MS));
  }
  ingest_events(srv, pre);
  return srv;
}

/* ---- definitions ---- */

static void expect_bad(sd_server *srv, const char *body, long status, const char *code) {
  long st;
  json_t *r = http_json(srv, "POST", "/v1/experiments", body, &st);
  if (st != status) fprintf(stderr, "  body %s: %ld\n", body, st);
  CHECK_INT(st, status);
  CHECK(check_error_body(r, code));
  json_decref(r);
}

#define DEF(name, rest) "{\"name\":\"" name "\",\"variants\":[\"control\",\"treatment\"]" rest "}"
#define OUT7 ",\"outcome\":{\"event_type\":\"purchase\",\"window_days\":7}"

static void test_definitions(sd_server *srv) {
  expect_bad(srv, "{\"name\":", 400, "malformed_json");
  expect_bad(srv, "{\"variants\":[\"a\",\"b\"]" OUT7 "}", 422, "invalid_field");
  expect_bad(srv, DEF("has space", OUT7), 422, "invalid_field");
  expect_bad(srv, DEF("a/b", OUT7), 422, "invalid_field");
  expect_bad(srv, "{\"name\":\"x\",\"variants\":[\"a\"]" OUT7 "}", 422, "invalid_field");
  expect_bad(srv, "{\"name\":\"x\",\"variants\":[\"a\",\"a\"]" OUT7 "}", 422, "invalid_field");
  expect_bad(srv, "{\"name\":\"x\",\"variants\":[\"a\",\"\"]" OUT7 "}", 422, "invalid_field");
  expect_bad(srv, DEF("x", ",\"weights\":[0.5,0.4]" OUT7), 422, "invalid_field");
  expect_bad(srv, DEF("x", ",\"weights\":[0.5,0.6]" OUT7), 422, "invalid_field");
  expect_bad(srv, DEF("x", ",\"weights\":[1]" OUT7), 422, "invalid_field");
  expect_bad(srv, DEF("x", ",\"weights\":[1.5,-0.5]" OUT7), 422, "invalid_field");
  expect_bad(srv, DEF("x", ",\"weights\":[\"0.5\",0.5]" OUT7), 422, "invalid_field");
  expect_bad(srv, DEF("x", ",\"stratify\":\"cohorts\"" OUT7), 422, "invalid_field");
  expect_bad(srv, DEF("x", ""), 422, "invalid_field");
  expect_bad(srv, DEF("x", ",\"outcome\":{\"event_type\":\"purchased\"}"), 422, "invalid_field");
  expect_bad(srv, DEF("x", ",\"outcome\":{\"event_type\":\"purchase\",\"window_days\":0}"), 422,
             "invalid_field");
  expect_bad(srv, DEF("x", ",\"outcome\":{\"event_type\":\"purchase\",\"window_days\":\"7\"}"),
             422, "invalid_field");
  expect_bad(srv, DEF("x", ",\"colour\":1" OUT7), 422, "invalid_field");
  long st;
  json_t *r = http_json(srv, "POST", "/v1/experiments",
                        DEF("promo", ",\"weights\":[0.5,0.5],\"stratify\":\"segments\"" OUT7), &st);
  CHECK_INT(st, 201);
  CHECK_STR(json_string_value(json_object_get(r, "status")), "running");
  CHECK_INT(json_path_int(r, "block_size", -1), 2);
  json_decref(r);
  expect_bad(srv, DEF("promo", OUT7), 409, "conflict");
  r = http_json(srv, "POST", "/v1/experiments",
                DEF("layout", ",\"weights\":[0.3,0.7],\"stratify\":\"none\"" OUT7), &st);
  CHECK_INT(st, 201);
  CHECK(json_is_null(json_object_get(r, "block_size"))); /* no blocks unstratified */
  json_decref(r);
  r = http_json(srv, "GET", "/v1/experiments", NULL, &st);
  CHECK_INT(st, 200);
  CHECK_INT(json_array_size(json_object_get(r, "experiments")), 2); /* nothing else stored */
  json_decref(r);
  json_decref(http_json(srv, "GET", "/v1/experiments/nope", NULL, &st));
  CHECK_INT(st, 404);
  json_decref(http_json(srv, "GET", "/v1/experiments/nope/results", NULL, &st));
  CHECK_INT(st, 404);
  json_decref(http_json(srv, "GET", "/v1/experiments/promo/assignment/nobody", NULL, &st));
  CHECK_INT(st, 404);
}

/* ---- assignment ---- */

/* GET the assignment: variant index (by name) and segment; -2 on error. */
static int assignment(sd_server *srv, const char *exp, int i, long long *segment) {
  char path[128], id[32];
  uid(i, id, sizeof(id));
  snprintf(path, sizeof(path), "/v1/experiments/%s/assignment/%s", exp, id);
  long st;
  json_t *r = http_json(srv, "GET", path, NULL, &st);
  const char *v = json_string_value(json_object_get(r, "variant"));
  json_t *seg = json_object_get(r, "segment");
  int out = st != 200 || !v ? -2 : !strcmp(v, "control") ? 0 : !strcmp(v, "treatment") ? 1 : -2;
  if (segment) *segment = json_is_integer(seg) ? json_integer_value(seg) : -1;
  CHECK(st == 200 && json_is_string(json_object_get(r, "assigned_at")));
  json_decref(r);
  return out;
}

static void assign_all(sd_server *srv) {
  double t0 = now_s();
  for (int i = 0; i < USERS; i++) {
    users[i].variant = assignment(srv, "promo", i, &users[i].segment);
    users[i].layout = assignment(srv, "layout", i, NULL);
    CHECK(users[i].variant >= 0 && users[i].layout >= 0);
  }
  double t1 = now_s();
  int same = 0;
  for (int i = 0; i < USERS; i++) {
    long long seg;
    same += assignment(srv, "promo", i, &seg) == users[i].variant && seg == users[i].segment;
  }
  fprintf(stderr, "  first assignments %.0f/s, repeat lookups %.0f/s (one client)\n",
          2 * USERS / (t1 - t0), USERS / (now_s() - t1));
  CHECK_INT(same, USERS); /* sticky */
}

/* Within every pinned segment control and treatment differ by at most one
 * (blocks of 2); the unstratified 30/70 split within 4 standard errors. */
static void check_balance(void) {
  long long seg_ids[64];
  int n_seg = 0, count[64][2] = {{0}}, layout1 = 0;
  for (int i = 0; i < USERS; i++) {
    int s = 0;
    while (s < n_seg && seg_ids[s] != users[i].segment) s++;
    if (s == n_seg && n_seg < 64) seg_ids[n_seg++] = users[i].segment;
    if (s < 64) count[s][users[i].variant]++;
    layout1 += users[i].layout == 1;
  }
  CHECK(n_seg >= SEGMENTS);
  for (int s = 0; s < n_seg; s++) {
    fprintf(stderr, "  segment %lld: control %d treatment %d\n", seg_ids[s], count[s][0],
            count[s][1]);
    CHECK(abs(count[s][0] - count[s][1]) <= 1);
  }
  double share = (double)layout1 / USERS, se = sqrt(0.3 * 0.7 / USERS);
  fprintf(stderr, "  layout: treatment share %.4f (weight 0.7)\n", share);
  CHECK(fabs(share - 0.7) < 4 * se);
}

/* ---- outcomes ---- */

static void play_outcomes(sd_server *srv) {
  json_t *ev = json_array();
  char id[32], eid[48];
  long long later = wall_ms() + 8 * DAY_MS;
  for (int i = 0; i < USERS; i++) {
    uint64_t s = 0xc0ffeeULL * (uint64_t)(i + 1);
    double p = P_BASE + (users[i].planted == EFFECT_SEG && users[i].variant == 1 ? EFFECT : 0);
    users[i].converted = unit(&s) < p;
    uid(i, id, sizeof(id));
    snprintf(eid, sizeof(eid), "buy-%s", id);
    if (users[i].converted) json_array_append_new(ev, purchase(eid, id, 0));
    snprintf(eid, sizeof(eid), "late-%s", id);
    if (users[i].decoy_after) json_array_append_new(ev, purchase(eid, id, later));
  }
  ingest_events(srv, ev);
}

/* The planted segment most users of a pinned segment have. */
static int planted_of(long long seg) {
  int n[SEGMENTS] = {0}, best = 0;
  for (int i = 0; i < USERS; i++)
    if (users[i].segment == seg && users[i].planted >= 0) n[users[i].planted]++;
  for (int s = 1; s < SEGMENTS; s++) if (n[s] > n[best]) best = s;
  return best;
}

/* The server's users/converted per (segment, variant) equal the test's. */
static void check_counts(json_t *o, long long seg) {
  for (int v = 0; v < 2; v++) {
    long long n = 0, x = 0;
    for (int i = 0; i < USERS; i++)
      if (users[i].segment == seg && users[i].variant == v) n++, x += users[i].converted;
    json_t *row = json_array_get(json_object_get(o, "variants"), (size_t)v);
    CHECK_INT(json_path_int(row, "users", -1), n);
    CHECK_INT(json_path_int(row, "converted", -1), x);
  }
}

static double num(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

static void check_results(sd_server *srv) {
  long st;
  json_t *res = http_json(srv, "GET", "/v1/experiments/promo/results", NULL, &st);
  CHECK_INT(st, 200);
  int excluding_null = 0, effect_found = 0;
  size_t i;
  json_t *o;
  json_array_foreach(json_object_get(res, "by_segment"), i, o) {
    long long seg = json_is_integer(json_object_get(o, "segment"))
                        ? json_integer_value(json_object_get(o, "segment")) : -1;
    int planted = planted_of(seg);
    check_counts(o, seg);
    double lo = num(o, "ci_low"), hi = num(o, "ci_high"), d = num(o, "effect");
    fprintf(stderr, "  segment %lld (planted %d): effect %+.4f [%+.4f, %+.4f]\n", seg,
            planted, d, lo, hi);
    CHECK(lo <= d && d <= hi);
    if (planted == EFFECT_SEG) {
      effect_found++;
      CHECK(lo > 0);
    } else {
      excluding_null += lo > 0 || hi < 0;
    }
  }
  CHECK_INT(effect_found, 1);
  CHECK(excluding_null <= 1); /* P(>= 2 of 3 at 5% each) = 0.007 */
  json_t *het = json_object_get(res, "heterogeneity");
  fprintf(stderr, "  heterogeneity: Q %.2f df %lld p %.3g I2 %.3f\n", num(het, "statistic"),
          json_path_int(het, "df", -1), num(het, "p_value"), num(het, "i2"));
  CHECK_INT(json_path_int(het, "df", -1), SEGMENTS - 1);
  CHECK(num(het, "p_value") < 0.01);
  json_t *pooled = json_object_get(res, "pooled");
  double nt = 0, ne = 0, pt = 0, pc = 0, nc = 0;
  for (int k = 0; k < USERS; k++) {
    nt += users[k].variant == 1, nc += users[k].variant == 0;
    ne += users[k].variant == 1 && users[k].planted == EFFECT_SEG;
    pt += users[k].variant == 1 && users[k].converted;
    pc += users[k].variant == 0 && users[k].converted;
  }
  pt /= nt, pc /= nc;
  double expect = EFFECT * ne / nt, se = sqrt(pt * (1 - pt) / nt + pc * (1 - pc) / nc);
  double d = num(pooled, "effect");
  fprintf(stderr, "  pooled effect %+.4f [%+.4f, %+.4f], diluted expectation %+.4f\n", d,
          num(pooled, "ci_low"), num(pooled, "ci_high"), expect);
  CHECK_NEAR(d, pt - pc, 1e-9);
  CHECK(fabs(d - expect) < 4 * se);
  CHECK(d < EFFECT / 2);
  json_decref(res);
}

/* Outcomes anchored on first_seen: with a window past every purchase all
 * purchasers count; with 1 day only the decoys sent at the first day. */
static void check_outcomes(sd_server *srv) {
  long long all = 0, first_day = 0;
  for (int i = 0; i < USERS; i++) {
    all += users[i].converted || users[i].decoy_before || users[i].decoy_after;
    first_day += users[i].decoy_before;
  }
  long long days = (wall_ms() + 9 * DAY_MS - BASE_MS) / DAY_MS + 1;
  char path[128];
  long st;
  snprintf(path, sizeof(path), "/v1/spaces/segments/outcomes?event_type=purchase&window_days=%lld",
           days);
  json_t *r = http_json(srv, "GET", path, NULL, &st);
  CHECK_INT(st, 200);
  CHECK_INT(json_path_int(r, "population.users", -1), USERS);
  CHECK_INT(json_path_int(r, "population.converted", -1), all);
  double pop = json_number_value(json_path(r, "population.rate"));
  long long sum = 0;
  size_t i;
  json_t *o;
  json_array_foreach(json_object_get(r, "segments"), i, o) {
    sum += json_path_int(o, "users", 0);
    double rate = num(o, "rate");
    CHECK(num(o, "ci_low") <= rate && rate <= num(o, "ci_high"));
    CHECK_NEAR(num(o, "lift"), rate / pop, 1e-9);
  }
  CHECK_INT(sum, USERS);
  json_decref(r);
  r = http_json(srv, "GET", "/v1/spaces/segments/outcomes?event_type=purchase&window_days=1",
                NULL, &st);
  CHECK_INT(json_path_int(r, "population.converted", -1), first_day);
  json_decref(r);
  json_decref(http_json(srv, "GET", "/v1/spaces/segments/outcomes?event_type=nope", NULL, &st));
  CHECK_INT(st, 400);
  json_decref(http_json(srv, "GET",
                        "/v1/spaces/segments/outcomes?event_type=purchase&window_days=0",
                        NULL, &st));
  CHECK_INT(st, 400);
  json_decref(http_json(srv, "GET", "/v1/spaces/segments/outcomes", NULL, &st));
  CHECK_INT(st, 400);
}

/* ---- restart, stop, erasure ---- */

static void check_after_restart(sd_server *srv) {
  CHECK_INT(srv_stop(srv), 0);
  CHECK_INT(srv_restart(srv), 0);
  int same = 0;
  for (int i = 0; i < USERS; i++) {
    long long seg;
    same += assignment(srv, "promo", i, &seg) == users[i].variant && seg == users[i].segment &&
            assignment(srv, "layout", i, NULL) == users[i].layout;
  }
  CHECK_INT(same, USERS);
  check_results(srv); /* the same counts from the stored assignments */
}

static void check_stop(sd_server *srv) {
  long st;
  json_t *r = http_json(srv, "DELETE", "/v1/experiments/promo", NULL, &st);
  CHECK_INT(st, 200);
  CHECK_STR(json_string_value(json_object_get(r, "status")), "stopped");
  CHECK_INT(json_path_int(r, "users", -1), USERS);
  json_decref(r);
  json_decref(http_json(srv, "DELETE", "/v1/experiments/promo", NULL, &st));
  CHECK_INT(st, 200); /* stopping is idempotent */
  json_decref(http_json(srv, "DELETE", "/v1/experiments/nope", NULL, &st));
  CHECK_INT(st, 404);
  json_t *late = json_pack("[{s:s,s:s,s:s}]", "event_id", "newcomer-e0", "user_id",
                           "newcomer", "type", "page_view");
  CHECK_INT(ingest(srv, "events", late, NULL, NULL), 200);
  json_decref(late);
  json_t *a = http_json(srv, "GET", "/v1/experiments/promo/assignment/newcomer", NULL, &st);
  CHECK_INT(st, 409);
  CHECK(check_error_body(a, "conflict"));
  json_decref(a);
  json_decref(http_json(srv, "GET", "/v1/experiments/layout/assignment/newcomer", NULL, &st));
  CHECK_INT(st, 200); /* the other experiment runs on */
  CHECK(assignment(srv, "promo", 5, NULL) == users[5].variant); /* still served */
  json_decref(http_json(srv, "GET", "/v1/experiments/promo/results", NULL, &st));
  CHECK_INT(st, 200);
}

static long long stored_assignments(const char *db_path, const char *user) {
  sqlite3 *db;
  sqlite3_stmt *q;
  long long n = -1;
  if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) return -1;
  if (sqlite3_prepare_v2(db, "SELECT count(*) FROM experiment_assignments WHERE user_id=?1",
                         -1, &q, NULL) == SQLITE_OK) {
    sqlite3_bind_text(q, 1, user, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW) n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
  }
  sqlite3_close(db);
  return n;
}

static void check_erasure(sd_server *srv) {
  long st;
  json_t *r = http_json(srv, "DELETE", "/v1/users/u000007", NULL, &st);
  CHECK_INT(st, 200);
  CHECK_INT(json_path_int(r, "deleted.experiment_assignments", -1), 2);
  json_decref(r);
  json_decref(http_json(srv, "GET", "/v1/experiments/layout/assignment/u000007", NULL, &st));
  CHECK_INT(st, 404);
  r = http_json(srv, "GET", "/v1/experiments/promo", NULL, &st);
  CHECK_INT(json_path_int(r, "users", -1), USERS - 1);
  json_decref(r);
  CHECK_INT(srv_stop(srv), 0);
  CHECK_INT(stored_assignments(srv->db, "u000007"), 0);
  CHECK_INT(stored_assignments(srv->db, "u000008"), 2);
}

/* Two event types in one behaviour hash bucket ("share" and "add_to_cart"):
 * both are known outcomes, not only the first one ingested. */
static void check_bucket_sharing(sd_server *srv) {
  long st;
  const char *body =
      "{\"events\": [{\"event_id\": \"bk-1\", \"user_id\": \"u-bucket\", "
      "\"type\": \"share\", \"ts\": \"2026-11-01T10:00:00Z\"}, "
      "{\"event_id\": \"bk-2\", \"user_id\": \"u-bucket\", "
      "\"type\": \"add_to_cart\", \"ts\": \"2026-11-01T10:01:00Z\"}]}";
  json_decref(http_json(srv, "POST", "/v1/events", body, &st));
  CHECK_INT(st, 200);
  json_decref(http_json(srv, "GET", "/v1/spaces/segments/outcomes?event_type=add_to_cart",
                        NULL, &st));
  CHECK_INT(st, 200);
  json_decref(http_json(srv, "GET", "/v1/spaces/segments/outcomes?event_type=share",
                        NULL, &st));
  CHECK_INT(st, 200);
}

int main(void) {
  const gen_conf c = {.n_users = USERS, .n_segments = SEGMENTS, .events_per_user = 12,
                      .texts_per_user = 2, .noise_share = 0, .seed = 20261127};
  double t0 = now_s();
  sd_server *srv = start_clustered(&c);
  if (!srv) return check_done("test_experiments_http");
  fprintf(stderr, "  set-up %.1f s\n", now_s() - t0);
  test_definitions(srv);
  assign_all(srv);
  check_balance();
  play_outcomes(srv);
  check_results(srv);
  check_outcomes(srv);
  check_bucket_sharing(srv);
  check_after_restart(srv);
  check_stop(srv);
  check_erasure(srv);
  if (check_failures) srv_dump_log(srv);
  srv_free(srv);
  return check_done("test_experiments_http");
}
