/* Unit tests of drift_baseline.c: planning a pinned baseline from the
 * window (which points, in which order, with which shares and sums),
 * refusals, installing it as a reference of the same model, "next", and
 * the description of a space's baseline. */
#include "check.h"
#include "segmentd/config.h"
#include "segmentd/drift.h"
#include "segmentd/err.h"

#include <stdlib.h>
#include <string.h>

#define DIM 4
#define K 2
#define SAMPLE 20 /* --drift-sample */
#define WINDOW 60 /* --drift-window: shares count max(30, 20) = 30 */

static const int32_t IDS[K] = {7, 9};
static const float CENTROIDS[K * DIM] = {1, 0, 0, 0, 0, 1, 0, 0};
static int g_seq;

/* One observation of cluster idx; x[3] carries its sequence number. */
static int observe(sd_drift *d, int idx) {
  float x[DIM] = {idx == 0, idx == 1, 0, (float)++g_seq};
  return sd_drift_observe(d, 0, 1, idx, 0.5f + 0.001f * (float)(g_seq % 100), x,
                          NULL, NULL, 0);
}

static int install(sd_drift *d, const sd_drift_base *b) {
  int shares = b->level == 2;
  sd_drift_ref ref = {b->version, K, DIM, IDS, CENTROIDS, b->counts, b->x,
                      b->label, b->sim, b->n, shares ? b->base_sum : NULL,
                      shares ? b->base_sim : NULL, b->level, &b->pin};
  return sd_drift_set_reference(d, 0, &ref);
}

static sd_drift_base_info describe(sd_drift *d) {
  sd_drift_base_info b;
  sd_drift_base_describe(d, 0, &b);
  return b;
}

/* The model's baseline: collected from the first assignments. */
static void model_baseline(sd_drift *d) {
  const float counts[K] = {100, 50};
  sd_drift_ref ref = {1, K, DIM, IDS, CENTROIDS, counts, NULL, NULL, NULL, 0,
                      NULL, NULL, 0, NULL};
  CHECK_INT(sd_drift_set_reference(d, 0, &ref), 0);
  sd_drift_base_info b = describe(d);
  CHECK_INT(b.version, 1);
  CHECK_INT(b.source, SD_DRIFT_BASE_MODEL);
  CHECK_INT(b.points, 0);
  CHECK(!b.complete);
  int done = 0;
  for (int i = 0; i < 30; i++) done |= observe(d, i % 2);
  CHECK_INT(done, 3); /* the points, then the shares */
  b = describe(d);
  CHECK_INT(b.points, SAMPLE);
  CHECK_INT(b.share_points, 30);
  CHECK(b.complete);
  CHECK_INT(b.pinned_at, 0);
}

static void refusals(sd_drift *d) {
  sd_drift_pin pin = {SD_DRIFT_BASE_CURRENT, 1234, "key"};
  sd_drift_base b;
  char msg[192];
  for (int i = 0; i < SAMPLE - 1 - 10; i++) observe(d, 0); /* 10 are there */
  CHECK_INT(sd_drift_pin_plan(d, 0, 1, &pin, &b, msg, sizeof msg), SD_ECONFLICT);
  CHECK(strstr(msg, "holds 19 points") && strstr(msg, "at least 20"));
  CHECK_INT(sd_drift_pin_plan(d, 0, 2, &pin, &b, msg, sizeof msg), SD_ECONFLICT);
  CHECK(strstr(msg, "model v2 has no drift reference") != NULL);
  CHECK(b.x == NULL && b.counts == NULL);
}

/* 19 points are in the window; 51 more wrap the 60-row ring: the last 30
 * are all cluster 1, and the shares count them only. */
static void pin_current(sd_drift *d) {
  for (int i = 0; i < 21; i++) observe(d, 0);
  for (int i = 0; i < 30; i++) observe(d, 1);
  sd_drift_pin pin = {SD_DRIFT_BASE_CURRENT, 1234, "SEGMENTD_API_KEYS entry 1"};
  sd_drift_base b;
  char msg[192] = "";
  CHECK_INT(sd_drift_pin_plan(d, 0, 1, &pin, &b, msg, sizeof msg), 0);
  CHECK_INT(b.n, SAMPLE);
  CHECK_INT(b.level, 2);
  int ordered = 1;
  for (int t = 0; t < SAMPLE; t++)
    ordered &= b.x[t * DIM + 3] == (float)(g_seq - SAMPLE + 1 + t) && b.label[t] == 1;
  CHECK(ordered); /* the latest 20, oldest first */
  CHECK_NEAR(b.counts[0], 0, 0);
  CHECK_NEAR(b.counts[1], 30, 0);
  double markers = 0, sims = 0;
  for (int t = 0; t < 30; t++)
    markers += g_seq - t, sims += 0.5 + 0.001 * ((g_seq - t) % 100);
  CHECK_NEAR(b.base_sum[1 * DIM + 3], markers, 1e-3);
  CHECK_NEAR(b.base_sum[1 * DIM + 1], 30, 1e-4);
  CHECK_NEAR(b.base_sim[1], sims, 1e-3);
  CHECK(describe(d).source == SD_DRIFT_BASE_MODEL); /* planning changed nothing */
  CHECK_INT(install(d, &b), 0);
  sd_drift_base_free(&b);
  sd_drift_base_info i = describe(d);
  CHECK_INT(i.source, SD_DRIFT_BASE_CURRENT);
  CHECK_INT(i.points, SAMPLE);
  CHECK_INT(i.share_points, 30);
  CHECK(i.complete);
  CHECK_INT(i.pinned_at, 1234);
  CHECK(!strcmp(i.pinned_by, "SEGMENTD_API_KEYS entry 1"));
  /* the window restarted: nothing to pin again yet */
  CHECK_INT(sd_drift_pin_plan(d, 0, 1, &pin, &b, msg, sizeof msg), SD_ECONFLICT);
  CHECK(strstr(msg, "holds 0 points") != NULL);
}

static void pin_next(sd_drift *d) {
  sd_drift_pin pin = {SD_DRIFT_BASE_NEXT, 5678, ""};
  sd_drift_base b;
  char msg[192];
  CHECK_INT(sd_drift_pin_plan(d, 0, 1, &pin, &b, msg, sizeof msg), 0);
  CHECK_INT(b.n, 0);
  CHECK_INT(b.level, 0);
  CHECK_INT(install(d, &b), 0);
  sd_drift_base_free(&b);
  sd_drift_base_info i = describe(d);
  CHECK_INT(i.source, SD_DRIFT_BASE_NEXT);
  CHECK_INT(i.points, 0);
  CHECK(!i.complete);
  int done = 0;
  for (int k = 0; k < 30; k++) done |= observe(d, 0);
  CHECK_INT(done, 3);
  i = describe(d);
  CHECK(i.complete && i.points == SAMPLE && i.pinned_at == 5678);
  sd_drift_base copy;
  CHECK_INT(sd_drift_baseline(d, 0, &copy), 0);
  CHECK_INT(copy.pin.source, SD_DRIFT_BASE_NEXT); /* what is stored keeps it */
  CHECK_INT(copy.level, 2);
  CHECK_NEAR(copy.counts[0], 30, 0);
  sd_drift_base_free(&copy);
  json_t *j = sd_drift_base_info_json(&i, "intents");
  CHECK(!strcmp(json_string_value(json_object_get(j, "source")), "next"));
  CHECK(json_is_null(json_object_get(j, "pinned_by")));
  CHECK(json_is_string(json_object_get(j, "pinned_at")));
  json_decref(j);
}

int main(void) {
  sd_config cfg;
  sd_config_defaults(&cfg);
  cfg.drift_sample = SAMPLE;
  cfg.drift_window = WINDOW;
  /* the default vector baseline is 4 x --drift-sample, never below it */
  CHECK_INT(sd_drift_baseline_size(&cfg), 4 * SAMPLE);
  cfg.drift_baseline = SAMPLE / 2;
  CHECK_INT(sd_drift_baseline_size(&cfg), SAMPLE);
  cfg.drift_baseline = SAMPLE; /* the checks below count SAMPLE points */
  const int dims[2] = {DIM, DIM};
  sd_drift *d = sd_drift_new(&cfg, dims);
  CHECK(d != NULL);
  if (d) {
    model_baseline(d);
    refusals(d);
    pin_current(d);
    pin_next(d);
  }
  sd_drift_free(d);
  sd_drift_base_free(NULL);
  return check_done("drift_baseline");
}
