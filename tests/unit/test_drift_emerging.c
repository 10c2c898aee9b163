/* Unit tests of drift_emerging.c's neighbourhood method through the public
 * drift API: a new group of recent points is a candidate, and recent points
 * amid it that have a twin in the baseline (a copy of a baseline point) are
 * not its members, although their neighbourhoods are mostly recent; a burst
 * of copies of one point is a group even when the baseline holds a copy. */
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

/* The neighbourhood candidate's members by id prefix (counts[j] for
 * prefix[j]); its size, or -1 when there is none. */
static long members(sd_drift *d, const char *const *prefix, size_t *counts,
                    size_t np) {
  sd_drift_report rep;
  CHECK_INT(sd_drift_run(d, 0, &rep), 0);
  const sd_drift_check *c = neighbourhood(&rep);
  long size = c && c->drifted ? (long)c->value : -1;
  json_t *ids = c && c->detail ? json_object_get(c->detail, "members_sample") : NULL;
  memset(counts, 0, sizeof(size_t) * np);
  for (size_t i = 0; i < json_array_size(ids); i++) {
    const char *s = json_string_value(json_array_get(ids, i));
    for (size_t j = 0; s && j < np; j++)
      counts[j] += !strncmp(s, prefix[j], strlen(prefix[j]));
  }
  if (size >= 0 && size <= 50) /* every member listed */
    CHECK_INT((long)json_array_size(ids), size);
  sd_drift_report_free(&rep);
  return size;
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
  static const char *const kinds[3] = {"new", "twin", "known"};
  size_t got[3];
  long size = members(d, kinds, got, 3);
  fprintf(stderr, "twins: candidate of %ld: %zu new, %zu twins, %zu known\n",
          size, got[0], got[1], got[2]);
  CHECK(size >= 20 && size <= 50);
  CHECK(got[0] >= 20);
  CHECK_INT((long)got[1], 0);
  CHECK_INT((long)got[2], 0);
}

/* 30 recent copies of one point, one more copy in the baseline: each copy's
 * nearest are the others and the baseline's, all at cosine 1. */
static void copies_are_a_group(sd_drift *d) {
  sd_rng r;
  sd_rng_init(&r, 7);
  float v[DIM], x[DIM];
  char id[32];
  point(&r, -1, v);
  for (int i = 0; i < BASE; i++) {
    if (i) point(&r, i % 2, x);
    observe(d, i ? x : v, NULL);
  }
  for (int i = 0; i < SAMPLE; i++) {
    int copy = i % 10 < 3;
    snprintf(id, sizeof(id), "%s%d", copy ? "copy" : "known", i);
    if (!copy) point(&r, i % 2, x);
    observe(d, copy ? v : x, id);
  }
  static const char *const kinds[2] = {"copy", "known"};
  size_t got[2];
  long size = members(d, kinds, got, 2);
  fprintf(stderr, "copies: candidate of %ld: %zu copies, %zu known\n", size,
          got[0], got[1]);
  CHECK_INT(size, 30);
  CHECK_INT((long)got[0], 30);
}

static sd_drift *fresh(const sd_config *cfg) {
  const int dims[2] = {DIM, DIM};
  const float counts[2] = {200, 200};
  sd_drift_ref ref = {1, 2, DIM, IDS, g_cent, counts, NULL, NULL, NULL, 0,
                      NULL, NULL, 0, NULL};
  sd_drift *d = sd_drift_new(cfg, dims);
  CHECK(d != NULL);
  if (d && sd_drift_set_reference(d, 0, &ref) != 0) {
    sd_drift_free(d);
    return NULL;
  }
  return d;
}

int main(void) {
  sd_config cfg;
  sd_config_defaults(&cfg);
  cfg.drift_sample = SAMPLE;
  cfg.drift_min_points = 50;
  cfg.drift_window = 2 * SAMPLE; /* baseline shares: the first BASE points */
  g_cent[0] = 1, g_cent[DIM + 1] = 1;
  sd_drift *d = fresh(&cfg);
  if (d) twins_are_not_members(d);
  sd_drift_free(d);
  d = fresh(&cfg);
  if (d) copies_are_a_group(d);
  sd_drift_free(d);
  return check_done("drift_emerging");
}
