/*
 * drift_int.h -- internals shared by drift.c (windows), drift_detect.c
 * (distribution and per-cluster detectors), drift_emerging.c (emerging
 * clusters) and drift_baseline.c (baselines pinned by hand).
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
  sd_drift_pin pin; /* where the baseline comes from (drift_baseline.c) */
} drift_ref;

/* A ring of points with their entity's id and text, one slot per entity
 * (an entity observed again replaces its slot). */
typedef struct {
  float *x;                 /* cap x dim */
  char **id, **text;        /* owned, may be NULL */
  uint64_t *hash;           /* of the id */
  size_t cap, n, pos;
} drift_ring;

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
  drift_ring out;           /* outliers: below their cluster's radius */
  drift_ring recent;        /* the latest --drift-sample window points */
  int mmd_streak;           /* drifted MMD checks in a row */
  unsigned epoch;           /* bumped by every new reference (a new model
                               or a pinned baseline) */
} drift_space;

struct sd_drift {
  const sd_config *cfg;
  sd_drift_encode_fn encode[DRIFT_SPACES]; /* set before checks run */
  void *encode_ud[DRIFT_SPACES];
  int encode_dim[DRIFT_SPACES];
  drift_space spaces[DRIFT_SPACES];
};

/* Points a check works on: owned copies of a ring. */
typedef struct {
  size_t n;
  float *x; /* n x dim */
  char **text, **id;
} drift_pool;

/* What a check works on: copies, owned (drift_detect.c takes them). */
typedef struct {
  drift_ref ref;      /* owns copies of the space's arrays */
  int dim;
  size_t win_n;       /* window rows, oldest first */
  float *win_x;
  int32_t *win_label;
  float *win_sim;
  int64_t new_points;
  drift_pool out;     /* the outliers */
  drift_pool recent;  /* the latest window points */
  int streak;
  unsigned epoch;     /* the space's when copied */
} drift_work;

/* A new check appended to r (zeroed but for kind, method, cluster); NULL
 * when out of memory. */
sd_drift_check *drift_add_check(sd_drift_report *r, const char *kind,
                                const char *method, int64_t cluster);
/* A malloc'd copy of len bytes (1 byte when len is 0); NULL on ENOMEM. */
void *drift_dup(const void *p, size_t len);

/* drift_baseline.c: room for a baseline of n rows of k clusters in dim
 * dimensions (zeroed counts and sums). 0 or SD_ENOMEM (b then empty). */
int drift_base_alloc(sd_drift_base *b, size_t n, int k, int dim);

/* drift_emerging.c: the emerging_cluster checks of one space. */
int drift_check_emerging(const sd_drift *dr, const drift_work *w,
                         sd_drift_report *r);

#endif
