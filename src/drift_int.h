/*
 * drift_int.h -- internals shared by drift.c (windows) and drift_detect.c
 * (detectors).
 */
#ifndef SEGMENTD_DRIFT_INT_H
#define SEGMENTD_DRIFT_INT_H

#include <pthread.h>

#include "segmentd/drift.h"

#define DRIFT_SPACES 2
#define DRIFT_MIN_RADIUS_MEMBERS 10 /* fewer sampled members: pooled radius */

typedef struct {
  int64_t version; /* 0: no reference yet */
  int k;
  size_t n;
  int32_t *ids;
  float *centroids; /* k x dim */
  double *counts;   /* k */
  float *x;         /* n x dim */
  int32_t *label;   /* n */
  float *sim;       /* n */
  float *radius;    /* k: outlier threshold */
  float *cohesion;  /* k: mean similarity of sampled members */
  size_t cap;       /* rows of x/label/sim (the baseline's size) */
  int baseline;     /* x holds the complete baseline (n == cap) */
  double *base;     /* k: clusters of the first base_cap assignments */
  float *base_sum;  /* k x dim: their vectors summed per cluster */
  double *base_sim; /* k: their similarities summed per cluster */
  size_t base_n, base_cap;
  int base_done;    /* base holds them all: shares compare with it */
} drift_ref;

typedef struct {
  int index, dim;
  pthread_mutex_t mu;       /* guards everything below */
  pthread_mutex_t check_mu; /* one check of this space at a time */
  drift_ref ref;
  float *win_x;             /* win_cap x dim ring */
  int32_t *win_label;
  float *win_sim;
  size_t win_cap, win_n, win_pos;
  int64_t new_points;       /* observed since the last check */
  float *out_x;             /* out_cap x dim ring of outliers */
  char **out_id, **out_text;
  uint64_t *out_hash;       /* of the id: one slot per entity */
  size_t *out_len;
  size_t out_cap, out_n, out_pos;
  int mmd_streak;           /* drifted MMD checks in a row */
} drift_space;

struct sd_drift {
  const sd_config *cfg;
  sd_drift_encode_fn encode[DRIFT_SPACES]; /* set before checks run */
  void *encode_ud[DRIFT_SPACES];
  int encode_dim[DRIFT_SPACES];
  drift_space spaces[DRIFT_SPACES];
};

#endif
