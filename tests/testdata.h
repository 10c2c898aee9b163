/*
 * testdata.h -- deterministic random data for the unit tests: one
 * splitmix64 stream per test program (seeded with td_seed), uniform and
 * normal draws, and normalisation of rows.
 */
#ifndef SD_TEST_DATA_H
#define SD_TEST_DATA_H

#include <math.h>
#include <stdint.h>

#include "segmentd/rng.h"

static uint64_t td_state = 1;

static inline void td_seed(uint64_t seed) { td_state = seed; }

/* Uniform in (0, 1). */
static inline double td_unit(void) {
  return ((double)(sd_splitmix64(&td_state) >> 11) + 0.5) * 0x1.0p-53;
}

/* Standard normal (Box-Muller). */
static inline double td_normal(void) {
  return sqrt(-2.0 * log(td_unit())) * cos(6.283185307179586 * td_unit());
}

/* Uniform in [0, n). */
static inline int td_below(int n) {
  int v = (int)(td_unit() * n);
  return v < n ? v : n - 1;
}

/* L2-normalises v in place. */
static inline void td_normalise(float *v, int dim) {
  double nn = 0.0;
  for (int e = 0; e < dim; e++) nn += (double)v[e] * v[e];
  for (int e = 0; e < dim; e++) v[e] = (float)(v[e] / sqrt(nn));
}

#endif
