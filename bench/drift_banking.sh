#!/usr/bin/env bash
# Drift detection on BANKING77 (bench/drift_banking.py): false alarms of a
# stationary stream of 72 intents, then how fast 5 held-back intents are
# reported as an emerging cluster, with variants (see the script's --help).
# Builds the Release server (build-release), compiles a small driver of
# sd_density_fit into a temporary directory (removed on exit), and runs the
# script with Debian's python3 (numpy). Extra arguments go to the script;
# the report goes to bench/results/<date>-drift.md. About 3-4 minutes on
# 2 vCPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release -j"$(nproc)" --target segmentd >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/density_single.c" <<'C'
/* sd_density_fit on 200 noise points + one or two tight groups of 100. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "segmentd/cluster_algos.h"
#include "segmentd/rng.h"

#define DIM 256

static double gauss(sd_rng *r) {
  double u1 = sd_rng_unit(r) + 1e-300, u2 = sd_rng_unit(r);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static void unit(float *v) {
  double s = 0;
  for (int e = 0; e < DIM; e++) s += (double)v[e] * v[e];
  for (int e = 0; e < DIM; e++) v[e] = (float)(v[e] / sqrt(s));
}

int main(void) {
  sd_rng r;
  sd_rng_init(&r, 7);
  for (int groups = 1; groups <= 2; groups++) {
    size_t n = 200 + 100 * (size_t)groups;
    float *x = malloc(sizeof(float) * n * DIM), c[2][DIM];
    for (int g = 0; g < groups; g++) {
      for (int e = 0; e < DIM; e++) c[g][e] = (float)gauss(&r);
      unit(c[g]);
    }
    for (size_t i = 0; i < n; i++) {
      float *v = x + i * DIM;
      int g = i < 200 ? -1 : (int)((i - 200) / 100);
      for (int e = 0; e < DIM; e++)
        v[e] = g < 0 ? (float)gauss(&r)
                     : c[g][e] + (float)(0.5 * gauss(&r) / sqrt((double)DIM));
      unit(v);
    }
    sd_density_opts o = {30, 0, 1, 42, 0};
    sd_density_result d = {0};
    int rc = sd_density_fit(x, n, DIM, &o, &d);
    printf("200 noise + %d tight group(s) of 100: rc %d, clusters %d, noise %zu, sizes",
           groups, rc, d.k, d.noise);
    for (int j = 0; j < d.k; j++) {
      size_t m = 0;
      for (size_t i = 0; i < n; i++) m += d.labels[i] == j;
      printf(" %zu", m);
    }
    printf("\n");
    sd_density_result_free(&d);
    free(x);
  }
  return 0;
}
C
# shellcheck disable=SC2046
"${CC:-cc}" -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -I"$root/include" \
  "$tmp/density_single.c" "$root/src/cluster_density.c" "$root/src/rng.c" \
  "$root/src/alloc.c" "$root/src/err.c" $(pkg-config --cflags --libs openblas) \
  -lm -o "$tmp/density_single"
/usr/bin/python3 bench/drift_banking.py --density-driver "$tmp/density_single" "$@"
