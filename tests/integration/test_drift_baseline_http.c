/*
 * test_drift_baseline_http.c -- pinning a drift baseline by hand
 * (GET/POST /v1/spaces/{space}/drift/baseline, README "Drift and alerts").
 *
 * One server (intents; --drift-window 1000, so the baseline shares count
 * the same 500 assignments as the vector baseline), API keys on:
 *  - the model's baseline is described (source model, complete); pinning
 *    with fewer than --drift-baseline window points is 409; bad bodies are
 *    400/422, an unknown space 404, a space without a model 409, and none
 *    of them changes the baseline or writes an audit row;
 *  - after a stationary stream, "current" pins the latest 500 points
 *    (pinned_by names the key's line in the keys file; GET and GET
 *    /v1/drift agree);
 *  - a planted shift (30% of the texts about a new topic) raises MMD and
 *    emerging-cluster alerts against that baseline; the last check before
 *    the pin still finds it (the control). "current" is pinned on the
 *    shifted stream; the same stream then goes on: no emerging cluster,
 *    MMD statistics far below the pre-pin one, and every alert open at the
 *    pin clears;
 *  - a real restart keeps the pin, and checks run against it;
 *  - restarted without keys, "next" empties the baseline (pinned_by null),
 *    which completes again from the next 500 assignments and survives a
 *    restart;
 *  - a re-cluster (new model version) starts again from source model;
 *  - the audit table holds one drift_baseline row per pin.
 */
#include "check.h"
#include "harness.h"
#include "harness_db.h"
#include "harness_drift.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY "baseline-admin-key-0123456789abcdef"
#define SAMPLE 500

static json_t *base_get(sd_server *srv, const char *space) {
  char path[96];
  long st;
  snprintf(path, sizeof path, "/v1/spaces/%s/drift/baseline", space);
  json_t *b = http_json(srv, "GET", path, NULL, &st);
  CHECK_INT(st, 200);
  return b;
}

/* POST a pin (body NULL: none); the answer must have status want. */
static json_t *base_pin(sd_server *srv, const char *space, const char *body,
                        long want) {
  char path[96];
  long st;
  snprintf(path, sizeof path, "/v1/spaces/%s/drift/baseline", space);
  json_t *r = http_json(srv, "POST", path, body, &st);
  if (st != want) {
    char *d = json_dumps(r, JSON_COMPACT);
    fprintf(stderr, "pin %s %s -> %ld (want %ld) %s\n", space,
            body ? body : "(no body)", st, want, d ? d : "(not JSON)");
    free(d);
  }
  CHECK_INT(st, want);
  return r;
}

static const char *str_of(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static long long audit_pins(sd_server *srv) {
  json_t *c = db_key_counts(srv->db, "SELECT action, count(*) FROM audit "
                                     "WHERE action = 'drift_baseline' GROUP BY 1");
  long long n = json_path_int(c, "drift_baseline", 0);
  json_decref(c);
  return n;
}

/* One round of checks with 200 texts (share fresh new-topic) before it;
 * the whole GET /v1/drift answer. */
static json_t *interval(sd_server *srv, double fresh) {
  long st;
  json_t *all;
  CHECK_INT(drift_ingest_mix(srv, 200, fresh), 200);
  json_decref(drift_check(srv, 0, &st, &all));
  CHECK_INT(st, 200);
  return all;
}

static double mmd2_of(const json_t *drift) {
  return json_real_value(json_path(drift_check_of(drift, 0, "distribution_drift",
                                                  "mmd"), "detail.mmd2"));
}

static int drifted(const json_t *drift, const char *kind, const char *method) {
  return json_is_true(json_object_get(drift_check_of(drift, 0, kind, method),
                                      "drifted"));
}

/* Did any emerging_cluster check of intents (any method) drift? */
static int emerged(const json_t *drift) {
  json_t *c;
  size_t i;
  json_array_foreach(json_path(json_array_get(json_object_get(drift, "spaces"), 0),
                               "checks"), i, c)
    if (!strcmp(str_of(c, "kind"), "emerging_cluster") &&
        json_is_true(json_object_get(c, "drifted")))
      return 1;
  return 0;
}

/* /metrics agrees with the intents baseline: its source (one series per
 * source, 1 for the current one), points, completeness and pin time. */
static void check_metrics(sd_server *srv, const char *source, double points,
                          int complete, int pinned) {
  static const char *const sources[] = {"model", "current", "next"};
  for (int k = 0; k < 3; k++) {
    char s[128];
    snprintf(s, sizeof s, "segmentd_drift_baseline_source{space=\"intents\","
             "source=\"%s\"}", sources[k]);
    CHECK_INT(http_metric(srv, s), !strcmp(sources[k], source));
  }
  CHECK(http_metric(srv, "segmentd_drift_baseline_points{space=\"intents\"}") == points);
  CHECK_INT(http_metric(srv, "segmentd_drift_baseline_complete{space=\"intents\"}"),
            complete);
  double at = http_metric(srv, "segmentd_drift_baseline_pinned_timestamp_seconds"
                               "{space=\"intents\"}");
  CHECK(pinned ? at > 1.7e9 : at == 0);
}

/* Refusals: none changes the baseline or writes an audit row. */
static void refusals(sd_server *srv) {
  static const struct {
    const char *body;
    long status;
  } bad[] = {
      {"[]", 422},
      {"\"current\"", 422},
      {"{\"source\": \"later\"}", 422},
      {"{\"source\": 1}", 422},
      {"{\"source\": null}", 422},
      {"{\"source\": \"Current\"}", 422},
      {"{\"sauce\": \"current\"}", 422},
      {"{\"source\": \"current\", \"force\": true}", 422},
      {"{\"source\": ", 400},
      {"{\"source\": \"current\", \"source\": \"next\"}", 400},
  };
  json_t *before = base_get(srv, "intents");
  json_t *r = base_pin(srv, "intents", NULL, 409); /* 100 window points */
  CHECK(check_error_body(r, "conflict"));
  CHECK(strstr(json_string_value(json_path(r, "error.message")), "--drift-baseline") != NULL);
  json_decref(r);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    r = base_pin(srv, "intents", bad[i].body, bad[i].status);
    CHECK(check_error_body(r, bad[i].status == 400 ? "malformed_json" : "invalid_field"));
    json_decref(r);
  }
  r = base_pin(srv, "nowhere", "{}", 404);
  json_decref(r);
  long st;
  json_decref(http_json(srv, "GET", "/v1/spaces/nowhere/drift/baseline", NULL, &st));
  CHECK_INT(st, 404);
  r = base_pin(srv, "segments", "{\"source\": \"next\"}", 409); /* no model */
  CHECK(check_error_body(r, "conflict"));
  json_decref(r);
  json_t *seg = base_get(srv, "segments");
  CHECK_INT(json_path_int(seg, "model_version", -1), 0);
  CHECK(json_is_false(json_object_get(seg, "complete")));
  json_decref(seg);
  json_t *after = base_get(srv, "intents");
  CHECK(json_equal(before, after));
  CHECK_INT(audit_pins(srv), 0);
  json_decref(before);
  json_decref(after);
}

/* The model's baseline, then "current" pinned after a stationary stream. */
static void pin_stationary(sd_server *srv) {
  json_t *b = base_get(srv, "intents");
  CHECK(!strcmp(str_of(b, "source"), "model"));
  CHECK_INT(json_path_int(b, "points", -1), SAMPLE);
  CHECK_INT(json_path_int(b, "share_points", -1), SAMPLE);
  CHECK(json_is_true(json_object_get(b, "complete")));
  CHECK(json_is_null(json_object_get(b, "pinned_at")));
  CHECK(json_is_null(json_object_get(b, "pinned_by")));
  long long version = json_path_int(b, "model_version", 0);
  CHECK(version >= 1);
  json_decref(b);
  check_metrics(srv, "model", SAMPLE, 1, 0);
  refusals(srv);
  for (int k = 0; k < 2; k++) json_decref(interval(srv, 0));
  json_t *p = base_pin(srv, "intents", NULL, 200);
  CHECK(!strcmp(str_of(p, "space"), "intents"));
  CHECK(!strcmp(str_of(p, "source"), "current"));
  CHECK_INT(json_path_int(p, "model_version", -1), version);
  CHECK_INT(json_path_int(p, "points", -1), SAMPLE);
  CHECK_INT(json_path_int(p, "share_points", -1), SAMPLE);
  CHECK(json_is_true(json_object_get(p, "complete")));
  CHECK(json_is_string(json_object_get(p, "pinned_at")));
  CHECK(!strcmp(str_of(p, "pinned_by"), "--api-keys-file line 2"));
  check_metrics(srv, "current", SAMPLE, 1, 1);
  b = base_get(srv, "intents");
  CHECK(json_equal(p, b));
  long st;
  json_t *d = http_json(srv, "GET", "/v1/drift", NULL, &st);
  CHECK_INT(st, 200);
  CHECK(json_equal(json_path(json_array_get(json_object_get(d, "spaces"), 0), "baseline"), b));
  CHECK_INT(audit_pins(srv), 1);
  json_decref(d);
  json_decref(b);
  json_decref(p);
}

/* Ids of the intents alerts open now (a new array). */
static json_t *open_alert_ids(sd_server *srv) {
  long st;
  json_t *r = http_json(srv, "GET", "/v1/alerts?limit=1000", NULL, &st), *a;
  CHECK_INT(st, 200);
  json_t *ids = json_array();
  size_t i;
  json_array_foreach(json_object_get(r, "alerts"), i, a)
    if (!strcmp(str_of(a, "space"), "intents") && json_is_null(json_object_get(a, "cleared_at")))
      json_array_append(ids, json_object_get(a, "id"));
  json_decref(r);
  return ids;
}

/* The shifted stream against the stationary pin, then pinned itself. */
static double shift_then_pin(sd_server *srv, json_t **was_open) {
  int emerging = 0;
  json_t *last = NULL;
  for (int k = 0; k < 3; k++) {
    json_decref(last);
    last = interval(srv, 0.3);
    emerging |= emerged(last);
    fprintf(stderr, "shift %d against the stationary pin: mmd2 %.5f p %.4f\n", k,
            mmd2_of(last), json_real_value(json_object_get(
                drift_check_of(last, 0, "distribution_drift", "mmd"), "value")));
  }
  CHECK(emerging);
  CHECK(drifted(last, "distribution_drift", "mmd")); /* still found: the control */
  double pre = mmd2_of(last);
  json_decref(last);
  long st;
  json_t *em = drift_alerts_of(srv, "emerging_cluster", &st);
  CHECK(json_array_size(em) >= 1);
  json_decref(em);
  *was_open = open_alert_ids(srv);
  CHECK(json_array_size(*was_open) >= 2);
  json_decref(base_pin(srv, "intents", "{\"source\": \"current\"}", 200));
  return pre;
}

/* Was every alert of ids cleared? */
static int all_cleared(sd_server *srv, const json_t *ids) {
  long st;
  json_t *r = http_json(srv, "GET", "/v1/alerts?limit=1000", NULL, &st), *a, *id;
  size_t i, j, cleared = 0;
  json_array_foreach(ids, j, id)
    json_array_foreach(json_object_get(r, "alerts"), i, a)
      if (json_equal(json_object_get(a, "id"), id)) {
        int c = json_is_string(json_object_get(a, "cleared_at"));
        if (!c) fprintf(stderr, "still open: %s/%s\n", str_of(a, "kind"), str_of(a, "method"));
        cleared += (size_t)c;
      }
  json_decref(r);
  return cleared == json_array_size(ids);
}

/* The same shifted stream against the pin made on it. */
static void after_shift_pin(sd_server *srv, double pre, const json_t *was_open) {
  int mmd_drifted = 0, emerging = 0;
  double worst = 0;
  json_t *d = NULL;
  for (int k = 0; k < 3; k++) {
    json_decref(d);
    d = interval(srv, 0.3);
    double m = mmd2_of(d);
    worst = m > worst ? m : worst;
    mmd_drifted += drifted(d, "distribution_drift", "mmd");
    emerging += emerged(d);
    fprintf(stderr, "shift %d against its own pin: mmd2 %.5f (before the pin "
            "%.5f)\n", k, m, pre);
  }
  CHECK_INT(emerging, 0);
  CHECK(mmd_drifted <= 1);
  CHECK(worst < pre / 3);
  json_t *psi = drift_check_of(d, 0, "distribution_drift", "psi");
  CHECK(json_is_true(json_object_get(psi, "evaluated")));
  CHECK(json_is_false(json_object_get(psi, "drifted")));
  CHECK(all_cleared(srv, was_open));
  json_decref(d);
}

/* A real restart keeps the pin; checks run against it. */
static void restart_keeps(sd_server *srv, double pre) {
  json_t *before = base_get(srv, "intents");
  CHECK_INT(srv_stop(srv), 0);
  CHECK_INT(srv_restart(srv), 0);
  json_t *after = base_get(srv, "intents");
  CHECK(json_equal(before, after));
  CHECK(!strcmp(str_of(after, "source"), "current"));
  json_t *d = interval(srv, 0.3);
  json_t *mmd = drift_check_of(d, 0, "distribution_drift", "mmd");
  CHECK(json_is_true(json_object_get(mmd, "evaluated")));
  CHECK_INT(json_path_int(mmd, "detail.reference_points", -1), SAMPLE);
  CHECK(mmd2_of(d) < pre / 3);
  CHECK(!emerged(d));
  json_decref(d);
  json_decref(before);
  json_decref(after);
}

/* "next" without keys: collected again from the next assignments. */
static void pin_next(sd_server *srv) {
  const char *const args[] = {"--train-min", "400", "--drift-interval", "0",
                              "--drift-baseline", "500",
                              "--emerging-min-size", "20", "--drift-window",
                              "1000", NULL};
  CHECK_INT(srv_stop(srv), 0);
  CHECK_INT(srv_set_args(srv, args), 0);
  srv->bearer[0] = 0;
  CHECK_INT(srv_restart(srv), 0);
  json_t *p = base_pin(srv, "intents", "{\"source\": \"next\"}", 200);
  CHECK(!strcmp(str_of(p, "source"), "next"));
  CHECK_INT(json_path_int(p, "points", -1), 0);
  CHECK(json_is_false(json_object_get(p, "complete")));
  CHECK(json_is_null(json_object_get(p, "pinned_by")));
  check_metrics(srv, "next", 0, 0, 1);
  json_decref(base_pin(srv, "intents", "{}", 409)); /* nothing in the window */
  CHECK_INT(srv_stop(srv), 0); /* an empty baseline is stored as such */
  CHECK_INT(srv_restart(srv), 0);
  json_t *b = base_get(srv, "intents");
  CHECK(json_equal(b, p));
  json_decref(b);
  json_t *d = interval(srv, 0);
  CHECK(!json_is_true(json_object_get(drift_check_of(d, 0, "distribution_drift", "mmd"),
                                      "evaluated")));
  json_decref(d);
  b = base_get(srv, "intents");
  CHECK_INT(json_path_int(b, "points", -1), 200);
  CHECK(json_is_false(json_object_get(b, "complete")));
  json_decref(b);
  CHECK_INT(drift_ingest_mix(srv, 400, 0), 200);
  b = base_get(srv, "intents");
  CHECK_INT(json_path_int(b, "points", -1), SAMPLE);
  CHECK(json_is_true(json_object_get(b, "complete")));
  CHECK(!strcmp(str_of(b, "source"), "next"));
  CHECK(json_equal(json_object_get(b, "pinned_at"), json_object_get(p, "pinned_at")));
  CHECK_INT(srv_stop(srv), 0);
  CHECK_INT(srv_restart(srv), 0);
  json_t *again = base_get(srv, "intents");
  CHECK(json_equal(b, again));
  json_decref(again);
  json_decref(b);
  json_decref(p);
}

/* A new model starts from its own first assignments. */
static void new_model(sd_server *srv) {
  json_t *old = base_get(srv, "intents");
  long long v = json_path_int(old, "model_version", 0);
  long st;
  json_decref(http_json(srv, "POST", "/v1/spaces/intents/recluster", "{}", &st));
  CHECK_INT(st, 202);
  CHECK(drift_wait_version(srv, "intents", v + 1, 120) == 0);
  json_t *b = base_get(srv, "intents");
  CHECK(json_path_int(b, "model_version", 0) > json_path_int(old, "model_version", 0));
  CHECK(!strcmp(str_of(b, "source"), "model"));
  CHECK(json_is_null(json_object_get(b, "pinned_at")));
  CHECK(json_is_false(json_object_get(b, "complete")));
  json_decref(b);
  json_decref(old);
  json_t *by = db_key_counts(srv->db, "SELECT coalesce(json_extract(detail, "
                             "'$.source') || ' by ' || json_extract(detail, "
                             "'$.pinned_by'), json_extract(detail, '$.source')),"
                             " count(*) FROM audit WHERE action = "
                             "'drift_baseline' GROUP BY 1");
  CHECK_INT(json_path_int(by, "current by --api-keys-file line 2", 0), 2);
  CHECK_INT(json_path_int(by, "next", 0), 1);
  CHECK_INT(json_object_size(by), 2);
  json_decref(by);
}

static sd_server *start(const char *keys) {
  FILE *f = fopen(keys, "w");
  CHECK(f != NULL);
  if (!f) return NULL;
  fprintf(f, "# segmentd API keys\n" KEY ":ingest+read+admin\n");
  fclose(f);
  const char *const args[] = {"--train-min", "400", "--drift-interval", "0",
                              "--drift-baseline", "500",
                              "--emerging-min-size", "20", "--drift-window",
                              "1000", "--api-keys-file", keys, NULL};
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (!srv) return NULL;
  snprintf(srv->bearer, sizeof srv->bearer, "%s", KEY);
  CHECK_INT(drift_ingest_mix(srv, 600, 0), 200);
  CHECK(wait_model(srv, "intents", 60) == 0);
  sleep_ms(500);
  CHECK_INT(drift_ingest_mix(srv, 600, 0), 200); /* the baseline + 100 */
  return srv;
}

int main(void) {
  double t0 = now_s();
  char dir[] = "/tmp/sd-pin-XXXXXX", keys[64];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(keys, sizeof keys, "%s/keys", dir);
  sd_server *srv = start(keys);
  if (srv) {
    json_t *was_open = NULL;
    pin_stationary(srv);
    double pre = shift_then_pin(srv, &was_open);
    after_shift_pin(srv, pre, was_open);
    restart_keeps(srv, pre);
    pin_next(srv);
    new_model(srv);
    json_decref(was_open);
    CHECK_INT(srv_stop(srv), 0);
    if (check_failures) srv_dump_log(srv);
    srv_free(srv);
  }
  unlink(keys);
  rmdir(dir);
  fprintf(stderr, "drift baseline test: %.1f s\n", now_s() - t0);
  http_thread_done();
  return check_done("drift_baseline_http");
}
