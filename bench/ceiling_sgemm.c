/*
 * ceiling_sgemm.c -- the compute ceiling of the benchmark suite (issue 7):
 * the bare cblas_sgemm of one k-means assignment pass, n x dim points times
 * the transposed k x dim centroids (n x k dot products), default 100,000 x
 * 256 against 64, timed `iters` times (default 20) after one warm-up call,
 * with one OpenBLAS thread and then two. No norms, no arg-min, no update:
 * the floor under any Lloyd iteration built on BLAS.
 *
 * Prints one JSON line per thread count: threads, median and best ms per
 * call, GFLOP/s at the median.
 *
 * usage: ceiling_sgemm [n=100000] [dim=256] [k=64] [iters=20] [threads=1,2]
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int n);

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  size_t n = argc > 1 ? (size_t)atol(argv[1]) : 100000;
  int dim = argc > 2 ? atoi(argv[2]) : 256;
  int k = argc > 3 ? atoi(argv[3]) : 64;
  int iters = argc > 4 ? atoi(argv[4]) : 20;
  const char *tlist = argc > 5 ? argv[5] : "1,2";
  if (n == 0 || dim <= 0 || k <= 0 || iters <= 0) return 2;
  float *x = malloc(n * (size_t)dim * sizeof(float));
  float *c = malloc((size_t)k * (size_t)dim * sizeof(float));
  float *d = malloc(n * (size_t)k * sizeof(float));
  double *t = malloc((size_t)iters * sizeof(double));
  if (!x || !c || !d || !t) return 1;
  unsigned long long s = 88172645463325252ULL;
  for (size_t i = 0; i < n * (size_t)dim; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    x[i] = (float)((double)(s >> 11) * 0x1.0p-53 - 0.5);
  }
  for (size_t i = 0; i < (size_t)k * (size_t)dim; i++) c[i] = x[i * 7 % (n * (size_t)dim)];
  char buf[64];
  snprintf(buf, sizeof buf, "%s", tlist);
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    int th = atoi(tok);
    if (th <= 0) continue;
    openblas_set_num_threads(th);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, k, dim, 1.0f,
                x, dim, c, dim, 0.0f, d, k); /* warm-up: pages, threads */
    for (int it = 0; it < iters; it++) {
      double t0 = now_ms();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, k, dim,
                  1.0f, x, dim, c, dim, 0.0f, d, k);
      t[it] = now_ms() - t0;
    }
    qsort(t, (size_t)iters, sizeof(double), cmp_d);
    double med = iters % 2 ? t[iters / 2] : 0.5 * (t[iters / 2 - 1] + t[iters / 2]);
    double flop = 2.0 * (double)n * (double)k * (double)dim;
    printf("{\"threads\": %d, \"n\": %zu, \"dim\": %d, \"k\": %d, \"iters\": "
           "%d, \"ms_median\": %.3f, \"ms_best\": %.3f, \"gflops\": %.1f, "
           "\"check\": %.4f}\n",
           th, n, dim, k, iters, med, t[0], flop / (med * 1e6), (double)d[n * (size_t)k / 2]);
    fflush(stdout);
  }
  free(x), free(c), free(d), free(t);
  return 0;
}
