/*
 * test_reassign_crash.c -- moving entities onto a new model survives
 * kill -9: the server is killed at several moments after a re-cluster was
 * asked for (in the fit, during the install, during the chunked
 * re-assignment), restarted, and in the end every text is assigned to a
 * cluster of the live model and the space's counts agree.
 */
#include "check.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_TEXTS 600

static void ingest_all(sd_server *srv) {
  json_t *items = planted_texts("c", 0, N_TEXTS, "c", 0);
  CHECK_INT(ingest(srv, "texts", items, NULL, NULL), 200);
  json_decref(items);
}

/* Waits until the space has a model and every point is assigned. */
static int settled(sd_server *srv, double timeout_s) {
  double t0 = now_s();
  while (now_s() - t0 < timeout_s) {
    json_t *sp = get_space(srv, "intents");
    long long pts = json_path_int(sp, "points", -1);
    long long asg = json_path_int(sp, "assigned", -2);
    long long v = json_path_int(sp, "model_version", 0);
    int moving = json_is_true(json_object_get(sp, "reassigning"));
    json_decref(sp);
    if (v >= 1 && pts == N_TEXTS && asg == N_TEXTS && !moving) return 1;
    sleep_ms(100);
  }
  return 0;
}

/* Polls until the intents space reports a re-assignment in progress. */
static void wait_reassigning(sd_server *srv, double timeout_s) {
  for (double t0 = now_s(); now_s() - t0 < timeout_s;) {
    json_t *sp = get_space(srv, "intents");
    int moving = json_is_true(json_object_get(sp, "reassigning"));
    json_decref(sp);
    if (moving) return;
  }
}

/* Every assignment names a cluster of the live model. */
static void check_assignments(sd_server *srv) {
  long st;
  char ct[64];
  int bad = 0;
  json_t *cl = http_json(srv, "GET", "/v1/spaces/intents/clusters", NULL, &st);
  json_t *asg = get_assignments(srv, "intents", &st, ct, sizeof(ct), &bad);
  CHECK_INT(json_array_size(asg), N_TEXTS);
  size_t i, j, ok = 0;
  json_t *o, *c;
  json_array_foreach(asg, i, o) {
    json_array_foreach(json_object_get(cl, "clusters"), j, c)
      if (json_equal(json_object_get(c, "id"), json_object_get(o, "cluster"))) {
        ok++;
        break;
      }
  }
  CHECK_INT(ok, N_TEXTS);
  json_decref(cl), json_decref(asg);
}

int main(void) {
  const char *args[] = {"--train-min", "50", "--dim", "64", "--k", "3",
                        "--reassign-chunk", "5", "--stability-runs", "0", NULL};
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (!srv) return check_done("test_reassign_crash");
  ingest_all(srv);
  CHECK(settled(srv, 60));
  /* kills at fixed delays after the request (in the fit, in the
     install), then right after the re-assignment is seen running */
  const long delays[] = {0, 40, 150, -1, -1, -1};
  for (size_t d = 0; d < sizeof(delays) / sizeof(delays[0]); d++) {
    long st;
    char body[64];
    snprintf(body, sizeof(body), "{\"k\":3,\"seed\":%zu}", d + 1);
    json_decref(http_json(srv, "POST", "/v1/spaces/intents/recluster", body, &st));
    CHECK_INT(st, 202);
    if (delays[d] >= 0) sleep_ms(delays[d]);
    else wait_reassigning(srv, 20);
    srv_kill9(srv);
    CHECK_INT(srv_restart(srv), 0);
    CHECK(settled(srv, 60));
    check_assignments(srv);
  }
  /* at least one kill landed inside a re-assignment, which then resumed */
  char cmd[400];
  snprintf(cmd, sizeof(cmd), "grep -q 'resuming the re-assignment' %s", srv->log);
  CHECK_INT(system(cmd), 0);
  CHECK_INT(srv_stop(srv), 0);
  if (check_failures) srv_dump_log(srv);
  srv_free(srv);
  return check_done("test_reassign_crash");
}
