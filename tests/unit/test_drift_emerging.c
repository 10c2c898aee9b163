/* Unit test of drift_emerging.c's neighbourhood method through the public
 * drift API: a new group of recent points is a candidate, and recent points
 * amid it that have a twin in the baseline (a copy of a baseline point) are
 * not its members, although their neighbourhoods are mostly recent. */
#include "check.h"
#include "segmentd/config.h"
#include "segmentd/drift.h"
#include "segmentd/rng.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define DIM 16
#define SAMPLE 100          /* --drift-sample: the recent ring */
#define BASE (4 * SAMPLE)   /* the vector baseline */
#define TWINS 8             /* baseline points inside the new group's region */

static const int32_t IDS[2] = {3, 5};
static float g_cent[2 * DIM];

static double gauss(sd_rng *r) {
  double u1 = sd_rng_unit(r) + 1e-300, u2 = sd_rng_unit(r);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* A unit vector near axis a (the new group: a = -1, between axes 2 and 3). */
static void point(sd_rng *r, int a, float *x) {
  double s = 0;
  for (int j = 0; j < DIM; j++) {
    double base = a >= 0 ? (j == a) : (j == 2 || j == 3) * 0.7;
    x[j] = (float)(base + (a >= 0 ? 0.35 : 0.08) * gauss(r));
    s += (double)x[j] * x[j];
  }
  for (int j = 0; j < DIM; j++) x[j] = (float)(x[j] / sqrt(s));
}

static void observe(sd_drift *d, const float *x, const char *id) {
  float s0 = 0, s1 = 0;
  for (int j = 0; j < DIM; j++) s0 += x[j] * g_cent[j], s1 += x[j] * g_cent[DIM + j];
  int idx = s1 > s0;
  CHECK_INT(sd_drift_observe(d, 0, 1, idx, idx ? s1 : s0, x, id, NULL, 0) >= 0, 1);
}

static const sd_drift_check *neighbourhood(const sd_drift_report *r) {
  for (size_t i = 0; i < r->n; i++)
    if (!strcmp(r->checks[i].kind, "emerging_cluster") &&
        !strcmp(r->checks[i].method, "neighbourhood"))
      return &r->checks[i];
  return NULL;
}

static void twins_are_not_members(sd_drift *d) {
  sd_rng r;
  sd_rng_init(&r, 42);
  float twin[TWINS][DIM], x[DIM];
  char id[32];
  for (int i = 0; i < BASE; i++) { /* the baseline: two known clusters */
    if (i < TWINS) point(&r, -1, twin[i]);
    else point(&r, i % 2, x);
    observe(d, i < TWINS ? twin[i] : x, NULL);
  }
  for (int i = 0; i < SAMPLE; i++) { /* shuffled: every 12th is a twin */
    int kind = i % 12 == 5 && i / 12 < TWINS ? 2 : i % 5 < 2 ? 0 : 1;
    snprintf(id, sizeof(id), "%s%d", kind == 2 ? "twin" : kind ? "new" : "known", i);
    if (kind == 2) memcpy(x, twin[i / 12], sizeof(x));
    else if (kind == 1) point(&r, -1, x);
    else point(&r, i % 2, x);
    observe(d, x, id);
  }
  sd_drift_report rep;
  CHECK_INT(sd_drift_run(d, 0, &rep), 0);
  const sd_drift_check *c = neighbourhood(&rep);
  CHECK(c != NULL && c->drifted);
  json_t *members = c && c->detail ? json_object_get(c->detail, "members_sample") : NULL;
  size_t n = json_array_size(members), fresh = 0, twins = 0, known = 0;
  for (size_t i = 0; i < n; i++) {
    const char *s = json_string_value(json_array_get(members, i));
    fresh += s && !strncmp(s, "new", 3);
    twins += s && !strncmp(s, "twin", 4);
    known += s && !strncmp(s, "known", 5);
  }
  fprintf(stderr, "candidate: %zu members: %zu new, %zu twins, %zu known\n", n,
          fresh, twins, known);
  CHECK(n == (size_t)(c ? c->value : 0)); /* under 50: every member listed */
  CHECK(fresh >= 20);
  CHECK_INT((long)twins, 0);
  CHECK_INT((long)known, 0);
  sd_drift_report_free(&rep);
}

int main(void) {
  sd_config cfg;
  sd_config_defaults(&cfg);
  cfg.drift_sample = SAMPLE;
  cfg.drift_min_points = 50;
  cfg.drift_window = 2 * SAMPLE; /* baseline shares: the first BASE points */
  const int dims[2] = {DIM, DIM};
  g_cent[0] = 1, g_cent[DIM + 1] = 1;
  const float counts[2] = {200, 200};
  sd_drift_ref ref = {1, 2, DIM, IDS, g_cent, counts, NULL, NULL, NULL, 0,
                      NULL, NULL, 0, NULL};
  sd_drift *d = sd_drift_new(&cfg, dims);
  CHECK(d != NULL);
  if (d && sd_drift_set_reference(d, 0, &ref) == 0) twins_are_not_members(d);
  sd_drift_free(d);
  return check_done("drift_emerging");
}
