/*
 * test_drift_http.c -- drift detection over HTTP (GET /v1/drift?refresh=
 * true is one check interval; GET /v1/alerts the history).
 *
 * Intents: a model of the 3 planted topics and its baseline (the first
 * 500 texts after it, and the shares of the first 1,000); 12 stationary
 * intervals of
 * the same topics raise no critical alert and at most 3 MMD warnings
 * (each interval's test has a 5% false-alarm rate: more than 3 of 12 has
 * a probability near 0.2%); then a new topic (30% of each interval's
 * texts) raises an emerging_cluster alert within 2 intervals whose top
 * terms and representatives come from the new topic; repeated checks keep
 * one open alert for it; alerts survive a restart; when the new topic
 * stops, the MMD alert clears.
 * Segments: planted user segments; after a model, one segment's users
 * change behaviour (a new event type dominates their events): a
 * centroid_shift or share_shift alert names that segment's cluster.
 */
#include "check.h"
#include "harness.h"
#include "harness_drift.h"
#include "harness_gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long ingest_mix(sd_server *srv, int n, double fresh) {
  return drift_ingest_mix(srv, n, fresh);
}

/* One check interval: the intents space's drifted checks (new ref). */
static json_t *check_now(sd_server *srv, json_t **all) {
  long st;
  json_t *out = drift_check(srv, 0, &st, all);
  CHECK_INT(st, 200);
  return out ? out : json_array();
}

/* Alerts of a kind (all pages). */
static json_t *alerts_of(sd_server *srv, const char *kind) {
  long st;
  json_t *out = drift_alerts_of(srv, kind, &st);
  CHECK_INT(st, 200);
  return out ? out : json_array();
}

static void stationary(sd_server *srv) {
  int warnings = 0, critical = 0;
  for (int k = 0; k < 12; k++) {
    CHECK_INT(ingest_mix(srv, 150, 0), 200);
    json_t *d = check_now(srv, NULL), *c;
    size_t i;
    json_array_foreach(d, i, c) {
      const char *sev = json_string_value(json_object_get(c, "severity"));
      critical += sev && !strcmp(sev, "critical");
      warnings += !strcmp(json_string_value(json_object_get(c, "method")), "mmd");
      fprintf(stderr, "stationary interval %d: %s/%s %s (%s)\n", k,
              json_string_value(json_object_get(c, "kind")),
              json_string_value(json_object_get(c, "method")), sev,
              json_string_value(json_object_get(c, "message")));
    }
    json_decref(d);
  }
  fprintf(stderr, "stationary: %d MMD warnings in 12 intervals, %d critical\n",
          warnings, critical);
  CHECK_INT(critical, 0);
  CHECK(warnings <= 3);
}

static void emerging(sd_server *srv) {
  int found_at = -1;
  for (int k = 0; k < 3 && found_at < 0; k++) {
    CHECK_INT(ingest_mix(srv, 200, 0.3), 200);
    json_t *all, *d = check_now(srv, &all), *c;
    if (drift_has_kind(d, "emerging_cluster", NULL)) found_at = k + 1;
    size_t i;
    json_array_foreach(json_path(json_array_get(json_object_get(all, "spaces"), 0),
                                 "checks"), i, c)
      if (json_is_true(json_object_get(c, "drifted")) ||
          !strcmp(json_string_value(json_object_get(c, "kind")), "emerging_cluster"))
        fprintf(stderr, "emerging interval %d: %s/%s %s\n", k + 1,
                json_string_value(json_object_get(c, "kind")),
                json_string_value(json_object_get(c, "method")),
                json_string_value(json_object_get(c, "message")));
    json_decref(all);
    json_decref(d);
  }
  fprintf(stderr, "emerging cluster found after %d interval(s)\n", found_at);
  CHECK(found_at >= 1 && found_at <= 2);
  json_t *a = alerts_of(srv, "emerging_cluster");
  CHECK_INT(json_array_size(a), 1);
  json_t *terms = json_path(json_array_get(a, 0), "detail.top_terms"), *t;
  size_t i, new_terms = 0;
  json_array_foreach(terms, i, t) new_terms += drift_is_new_word(json_string_value(t));
  CHECK(json_array_size(terms) >= 3 && new_terms == json_array_size(terms));
  json_array_foreach(json_path(json_array_get(a, 0), "detail.representatives"), i, t)
    CHECK(drift_is_new_word(json_string_value(json_object_get(t, "text"))));
  json_decref(a);
  for (int k = 0; k < 2; k++) { /* the same group: still one open alert */
    CHECK_INT(ingest_mix(srv, 200, 0.3), 200);
    json_decref(check_now(srv, NULL));
  }
  a = alerts_of(srv, "emerging_cluster");
  CHECK_INT(json_array_size(a), 1);
  json_decref(a);
}

/* History survives a restart; the MMD alert clears once the stream is back
 * to the planted topics only. */
static void restart_and_clear(sd_server *srv) {
  json_t *before = alerts_of(srv, "distribution_drift");
  CHECK_INT(srv_stop(srv), 0);
  CHECK_INT(srv_restart(srv), 0);
  json_t *after = alerts_of(srv, "distribution_drift");
  CHECK(json_equal(before, after));
  json_decref(before);
  json_decref(after);
  int cleared = 0;
  for (int k = 0; k < 4 && !cleared; k++) {
    CHECK_INT(ingest_mix(srv, 300, 0), 200);
    json_decref(check_now(srv, NULL));
    json_t *a = alerts_of(srv, "distribution_drift"), *x;
    size_t i;
    json_array_foreach(a, i, x)
      cleared |= !strcmp(json_string_value(json_object_get(x, "method")), "mmd") &&
                 json_is_string(json_object_get(x, "cleared_at"));
    json_decref(a);
  }
  CHECK(cleared);
}

static void intents_drift(void) {
  const char *const args[] = {"--train-min", "400", "--drift-interval", "0",
                              "--drift-baseline", "500",
                              "--emerging-min-size", "20", "--drift-window",
                              "2000", NULL};
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (!srv) return;
  CHECK_INT(ingest_mix(srv, 600, 0), 200);
  CHECK(wait_model(srv, "intents", 60) == 0);
  sleep_ms(500);
  CHECK_INT(ingest_mix(srv, 600, 0), 200); /* the baseline (500 points) */
  json_decref(check_now(srv, NULL));
  stationary(srv);
  emerging(srv);
  restart_and_clear(srv);
  CHECK_INT(srv_stop(srv), 0);
  srv_free(srv);
}

/* ---- segments: one planted segment changes behaviour ---- */

#define SEG_USERS 1200
#define SEG_N 4

/* n events of `type` for users [from, to) of c that belong to segment
 * seg (seg < 0: every user), at ts. */
static json_t *events_for(const gen_conf *c, int seg, const char *type,
                          int n, int round) {
  json_t *items = json_array();
  for (int u = 0; u < c->n_users; u++) {
    if (seg >= 0 && gen_segment(c, u) != seg) continue;
    for (int j = 0; j < n; j++) {
      char id[64], uid[32];
      snprintf(uid, sizeof uid, "%s%06d", c->prefix, u);
      snprintf(id, sizeof id, "%s-r%d-%d", uid, round, j);
      json_array_append_new(items, json_pack(
          "{s:s,s:s,s:s,s:I}", "event_id", id, "user_id", uid, "type",
          type ? type : gen_planted_type(gen_segment(c, u) < 0 ? 0 : gen_segment(c, u), j % 3),
          "ts", (json_int_t)(1794787200000LL + 86400000LL * 4 + round * 3600000LL + j)));
    }
  }
  return items;
}

/* The cluster most of segment seg's users are in. */
static long long cluster_of_segment(sd_server *srv, const gen_conf *c, int seg) {
  long long votes[64] = {0}, best = -1;
  for (int u = 0, seen = 0; u < c->n_users && seen < 40; u++) {
    if (gen_segment(c, u) != seg) continue;
    char path[96];
    long st;
    snprintf(path, sizeof path, "/v1/users/%s%06d/segment", c->prefix, u);
    json_t *r = http_json(srv, "GET", path, NULL, &st);
    long long id = json_path_int(r, "segment.id", -1);
    json_decref(r);
    if (id >= 0 && id < 64) votes[id]++;
    seen++;
  }
  for (int i = 0; i < 64; i++)
    if (votes[i] && (best < 0 || votes[i] > votes[best])) best = i;
  return best;
}

static void segments_shift(void) {
  const char *const args[] = {"--train-min", "1000", "--drift-interval", "0",
                              "--drift-baseline", "500",
                              "--dim", "64", "--k", "4", "--drift-window",
                              "1000", NULL};
  gen_conf c = {SEG_USERS, SEG_N, 10, 1, 0.0, 7, 0, 0, 0, 0, "ds"};
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (!srv) return;
  CHECK_INT(gen_ingest(srv, &c), 200);
  CHECK(wait_model(srv, "segments", 60) == 0);
  /* the first intents model refits the encoder, which re-clusters the
   * segments: v2 resets their drift baseline, so the rounds below wait
   * for it (under load it used to land between them) */
  CHECK(drift_wait_version(srv, "segments", 2, 60) == 0);
  sleep_ms(1000);
  long long target = cluster_of_segment(srv, &c, 0);
  CHECK(target >= 0);
  json_t *ev = events_for(&c, -1, NULL, 2, 1); /* a normal round */
  CHECK_INT(ingest(srv, "events", ev, NULL, NULL), 200);
  json_decref(ev);
  long st;
  json_decref(http_json(srv, "GET", "/v1/drift?refresh=true", NULL, &st));
  ev = events_for(&c, 0, "cancel_subscription", 12, 2); /* segment 0 moves */
  CHECK_INT(ingest(srv, "events", ev, NULL, NULL), 200);
  json_decref(ev);
  ev = events_for(&c, -1, NULL, 1, 3);
  CHECK_INT(ingest(srv, "events", ev, NULL, NULL), 200);
  json_decref(ev);
  json_t *d = http_json(srv, "GET", "/v1/drift?refresh=true", NULL, &st), *x;
  int named = 0;
  size_t i;
  json_array_foreach(json_path(json_array_get(json_object_get(d, "spaces"), 1),
                               "checks"), i, x) {
    const char *kind = json_string_value(json_object_get(x, "kind"));
    if (!json_is_true(json_object_get(x, "drifted"))) {
      fprintf(stderr, "segments shift, quiet: %s %.3f (%s)\n", kind,
              json_real_value(json_object_get(x, "value")),
              json_string_value(json_object_get(x, "message")));
      continue;
    }
    fprintf(stderr, "segments shift: %s cluster %lld (%s)\n", kind,
            json_path_int(x, "cluster", -1),
            json_string_value(json_object_get(x, "message")));
    named |= (!strcmp(kind, "centroid_shift") || !strcmp(kind, "share_shift")) &&
             json_path_int(x, "cluster", -1) == target;
  }
  fprintf(stderr, "segment 0 is cluster %lld: %s\n", target,
          named ? "named" : "NOT named");
  CHECK(named);
  json_decref(d);
  CHECK_INT(srv_stop(srv), 0);
  srv_free(srv);
}

int main(void) {
  double t0 = now_s();
  intents_drift();
  segments_shift();
  fprintf(stderr, "drift test: %.1f s\n", now_s() - t0);
  http_thread_done();
  return check_done("drift_http");
}
