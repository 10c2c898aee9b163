/*
 * kmeans_bench.c -- the k-means speed bar: generates the shared data set,
 * times sd_kmeans_fit on it and prints one JSON line.
 *
 * Data: n points in dim dimensions around `blobs` planted centres (centres
 * N(0, BENCH_SPREAD^2) per coordinate, blob weights in [0.5, 1.5), per-blob
 * noise sigma in [BENCH_SIG0, BENCH_SIG0 + BENCH_SIG1)), from a fixed
 * splitmix64 stream, so every run and every peer (bench/kmeans_peers.py) sees
 * exactly the same points. The blobs are well separated, so k-means++ finds
 * the planted partition and a single run of each method can be compared on
 * inertia; with overlapping blobs single runs scatter by a few percent with
 * the seed, for scikit-learn as for us. Written to OUTDIR as raw float32
 * (kmeans_points.f32, row-major n x dim) and int32 planted labels
 * (kmeans_labels.i32), native byte order (little-endian on x86-64), with
 * kmeans_meta.json.
 *
 * Timed: one sd_kmeans_fit call (restarts 1, tol 0: no early stop): input
 * validation and row norms, greedy k-means++ seeding on a sample of the rows,
 * `iters` Lloyd updates and iters + 1 assignment passes over all rows. A
 * second fit with max_iter 0 (norms, seeding and one assignment pass) shows
 * what the seeding costs; it is reported apart, not added. Our centroids go
 * to OUTDIR/kmeans_ours_centroids.f32 so the peers script scores every method
 * with the same code.
 *
 * usage: kmeans_bench OUTDIR [n dim k iters seed repeats]
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "segmentd/cluster_kmeans.h"
#include "segmentd/err.h"

#ifndef BENCH_SPREAD
#define BENCH_SPREAD 1.0
#endif
#ifndef BENCH_SIG0
#define BENCH_SIG0 0.05
#endif
#ifndef BENCH_SIG1
#define BENCH_SIG1 0.05
#endif

typedef struct {
  size_t n;
  int dim, k, iters, blobs, repeats;
  uint64_t seed;
} bench_cfg;

static uint64_t bench_rng;

static double bench_unit(void) {
  uint64_t z = (bench_rng += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return ((double)(z >> 11) + 0.5) * 0x1.0p-53;
}

static double bench_normal(void) {
  return sqrt(-2.0 * log(bench_unit())) * cos(6.283185307179586 * bench_unit());
}

static double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Fills x (n x dim) and labels; 0 or -1 when out of memory. */
static int bench_make(const bench_cfg *c, float *x, int32_t *lab) {
  size_t dim = (size_t)c->dim;
  float *ctr = malloc((size_t)c->blobs * dim * sizeof(float));
  double *cw = malloc((size_t)c->blobs * sizeof(double)), *sg, tot = 0.0;
  sg = malloc((size_t)c->blobs * sizeof(double));
  if (!ctr || !cw || !sg) {
    free(ctr), free(cw), free(sg);
    return -1;
  }
  bench_rng = c->seed;
  for (int b = 0; b < c->blobs; b++) {
    for (size_t e = 0; e < dim; e++)
      ctr[(size_t)b * dim + e] = (float)(BENCH_SPREAD * bench_normal());
    tot += cw[b] = 0.5 + bench_unit();
    sg[b] = BENCH_SIG0 + BENCH_SIG1 * bench_unit();
  }
  for (size_t i = 0; i < c->n; i++) {
    double u = bench_unit() * tot;
    int b = 0;
    while (b < c->blobs - 1 && (u -= cw[b]) >= 0.0) b++;
    lab[i] = b;
    for (size_t e = 0; e < dim; e++)
      x[i * dim + e] =
          ctr[(size_t)b * dim + e] + (float)(sg[b] * bench_normal());
  }
  free(ctr), free(cw), free(sg);
  return 0;
}

static int bench_write(const char *dir, const char *name, const void *p,
                       size_t size, size_t count) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(p, size, count, f);
  return (fclose(f) == 0 && w == count) ? 0 : -1;
}

static int bench_meta(const char *dir, const bench_cfg *c) {
  char path[4096];
  snprintf(path, sizeof path, "%s/kmeans_meta.json", dir);
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fprintf(f,
          "{\"n\": %zu, \"dim\": %d, \"k\": %d, \"iters\": %d, \"blobs\": %d, "
          "\"seed\": %" PRIu64 ", \"repeats\": %d}\n",
          c->n, c->dim, c->k, c->iters, c->blobs, c->seed, c->repeats);
  return fclose(f) == 0 ? 0 : -1;
}

/* Best-of-repeats seconds of one fit; the last result stays in *r. */
static int bench_fit(const bench_cfg *c, const float *x, int max_iter,
                     sd_kmeans_result *r, double *secs) {
  sd_kmeans_opts o = sd_kmeans_defaults(c->k);
  o.max_iter = max_iter;
  o.restarts = 1;
  o.tol = 0.0f;
  o.seed = c->seed;
  *secs = INFINITY;
  for (int rep = 0; rep < c->repeats; rep++) {
    sd_kmeans_result_free(r);
    double t0 = bench_now();
    int rc = sd_kmeans_fit(x, c->n, c->dim, &o, r);
    double t = bench_now() - t0;
    if (rc != 0) return rc;
    if (t < *secs) *secs = t;
  }
  return 0;
}

static int bench_parse(int argc, char **argv, bench_cfg *c) {
  c->n = 100000, c->dim = 256, c->k = 64, c->iters = 20, c->blobs = 64;
  c->seed = 1234, c->repeats = 3;
  if (argc > 2) c->n = (size_t)strtoull(argv[2], NULL, 10);
  if (argc > 3) c->dim = atoi(argv[3]);
  if (argc > 4) c->k = c->blobs = atoi(argv[4]);
  if (argc > 5) c->iters = atoi(argv[5]);
  if (argc > 6) c->seed = strtoull(argv[6], NULL, 10);
  if (argc > 7) c->repeats = atoi(argv[7]);
  return (argc < 2 || c->n < 1 || c->n > 100000000 || c->dim < 1 ||
          c->dim > 4096 || c->k < 1 || (size_t)c->k > c->n || c->iters < 0 ||
          c->repeats < 1)
             ? -1
             : 0;
}

int main(int argc, char **argv) {
  bench_cfg c;
  sd_kmeans_result r = {0}, s = {0};
  double secs, seed_secs;
  if (bench_parse(argc, argv, &c) != 0) {
    fprintf(stderr, "usage: kmeans_bench OUTDIR [n dim k iters seed repeats]\n");
    return 2;
  }
  float *x = malloc(c.n * (size_t)c.dim * sizeof(float));
  int32_t *lab = malloc(c.n * sizeof(int32_t));
  if (!x || !lab || bench_make(&c, x, lab) != 0) return 1;
  if (bench_write(argv[1], "kmeans_points.f32", x, sizeof(float),
                  c.n * (size_t)c.dim) ||
      bench_write(argv[1], "kmeans_labels.i32", lab, sizeof(int32_t), c.n) ||
      bench_meta(argv[1], &c)) {
    fprintf(stderr, "kmeans_bench: cannot write to %s\n", argv[1]);
    return 1;
  }
  int rc = bench_fit(&c, x, c.iters, &r, &secs);
  if (rc == 0) rc = bench_fit(&c, x, 0, &s, &seed_secs);
  if (rc != 0) {
    fprintf(stderr, "kmeans_bench: fit failed: %s\n", sd_err_message(rc));
    return 1;
  }
  if (bench_write(argv[1], "kmeans_ours_centroids.f32", r.centroids,
                  sizeof(float), (size_t)c.k * (size_t)c.dim))
    return 1;
  printf("{\"method\": \"segmentd\", \"seconds\": %.4f, \"seed_seconds\": "
         "%.4f, \"inertia_reported\": %.6e, \"iters\": %d}\n",
         secs, seed_secs, r.inertia, r.iters);
  sd_kmeans_result_free(&r);
  sd_kmeans_result_free(&s);
  free(x);
  free(lab);
  return 0;
}
