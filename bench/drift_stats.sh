#!/usr/bin/env bash
# drift_stats.sh -- the speed of sd_mmd_test (src/drift_stats.c) in a
# Release build: n = m = 500 points of dim 256 (a unit-normalised mixture
# of 8 clusters, fixed seed), 200 permutations, one BLAS thread; best of 5
# runs. The same call with 0 permutations times the kernel alone (norms,
# the three sgemm blocks, the bandwidth and one exp per pair), so the
# difference is the permutation loop.
#
# usage: bench/drift_stats.sh [n m dim permutations]
#        (env CC, default cc; OPENBLAS_NUM_THREADS, default 1)
# The driver is compiled from a here-document with the library sources it
# needs, with CMake's Release flags (-O3 -DNDEBUG), into a temporary
# directory that is removed on exit. Not in ctest.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
n=${1:-500} m=${2:-500} dim=${3:-256} perms=${4:-200}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/drift_bench.c" <<'EOF'
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "segmentd/drift_stats.h"
#include "segmentd/rng.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* rows unit vectors: one of 8 random centers plus noise of norm ~0.6 */
static void mixture(float *o, int rows, int dim, const float *c, sd_rng *r) {
  for (int i = 0; i < rows; i++) {
    const float *ci = c + sd_rng_below(r, 8) * (size_t)dim;
    double nn = 0.0;
    for (int e = 0; e < dim; e++) {
      double u1 = sd_rng_unit(r) + 1e-300, u2 = sd_rng_unit(r);
      double g = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
      o[(size_t)i * dim + e] = (float)(ci[e] + 0.6 * g / sqrt((double)dim));
      nn += (double)o[(size_t)i * dim + e] * o[(size_t)i * dim + e];
    }
    for (int e = 0; e < dim; e++) o[(size_t)i * dim + e] /= (float)sqrt(nn);
  }
}

/* best of 5 wall-clock seconds of one call */
static double best(const float *x, int n, const float *y, int m, int dim,
                   int perms, sd_mmd_result *res) {
  double b = INFINITY;
  for (int rep = 0; rep < 5; rep++) {
    double t0 = now();
    if (sd_mmd_test(x, n, y, m, dim, perms, 7, res) != 0) exit(1);
    double t = now() - t0;
    b = t < b ? t : b;
  }
  return b;
}

int main(int argc, char **argv) {
  if (argc != 5) return 2;
  int n = atoi(argv[1]), m = atoi(argv[2]), dim = atoi(argv[3]);
  int perms = atoi(argv[4]);
  sd_rng r;
  sd_rng_init(&r, 12345);
  float *c = malloc(sizeof(float) * 8 * (size_t)dim);
  float *x = malloc(sizeof(float) * (size_t)n * dim);
  float *y = malloc(sizeof(float) * (size_t)m * dim);
  for (int i = 0; i < 8 * dim; i++) c[i] = (float)(sd_rng_unit(&r) - 0.5);
  mixture(x, n, dim, c, &r);
  mixture(y, m, dim, c, &r);
  sd_mmd_result res;
  double t0 = best(x, n, y, m, dim, 0, &res);
  double tb = best(x, n, y, m, dim, perms, &res);
  printf("sd_mmd_test n=%d m=%d dim=%d B=%d: %.1f ms (kernel only, B=0: "
         "%.1f ms; permutations: %.1f ms = %.3f ms each)\n", n, m, dim,
         perms, 1e3 * tb, 1e3 * t0, 1e3 * (tb - t0),
         perms ? 1e3 * (tb - t0) / perms : 0.0);
  printf("  mmd2=%.6g p=%.4f sigma=%.4f (same distribution)\n", res.mmd2,
         res.p_value, res.sigma);
  free(c);
  free(x);
  free(y);
  return 0;
}
EOF

# shellcheck disable=SC2046
"${CC:-cc}" -std=c11 -O3 -DNDEBUG -D_POSIX_C_SOURCE=200809L \
  -Wall -Wextra -Werror -I"$root/include" \
  "$tmp/drift_bench.c" "$root/src/drift_stats.c" "$root/src/rng.c" \
  "$root/src/alloc.c" $(pkg-config --cflags --libs openblas) -lm \
  -o "$tmp/drift_bench"
OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} \
  "$tmp/drift_bench" "$n" "$m" "$dim" "$perms"
