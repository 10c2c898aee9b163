/*
 * test_drift_stats.c -- drift_stats.c: the MMD test against a naive
 * double-precision reference (sigma, the unbiased MMD^2 and the exact
 * permutation p-value over every labelling of a tiny sample), its
 * calibration under the null and its power on two kinds of drift on
 * embedding-like data (unit-normalised mixtures of clusters), PSI, the
 * two-proportion z-test, the normal tail and the quantile on hand-checked
 * values, and bad arguments.
 *
 * Reference constants were computed once with Debian's /usr/bin/python3
 * (numpy 1.24: np.quantile; scipy 1.10: scipy.stats.norm.sf) and by hand
 * for PSI and z (the formulas in drift_stats.h).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "testdata.h"
#include "segmentd/drift_stats.h"
#include "segmentd/err.h"

/* ---- data: unit-normalised mixtures of clusters ---- */

/* k random unit centers in dim. */
static void random_centers(float *c, int k, int dim) {
  for (int j = 0; j < k; j++) {
    for (int e = 0; e < dim; e++) c[j * dim + e] = (float)td_normal();
    td_normalise(c + j * dim, dim);
  }
}

/*
 * rows points: a center (cluster `extra` with probability p_extra, else
 * one of the first k uniformly) plus Gaussian noise of norm ~tau,
 * normalised to the unit sphere as embeddings are.
 */
static void mixture(float *out, int rows, int dim, const float *c, int k,
                    int extra, double p_extra, double tau) {
  for (int i = 0; i < rows; i++) {
    int j = td_unit() < p_extra ? extra : td_below(k);
    for (int e = 0; e < dim; e++)
      out[i * dim + e] =
          (float)(c[j * dim + e] + tau * td_normal() / sqrt((double)dim));
    td_normalise(out + i * dim, dim);
  }
}

/* ---- naive double-precision reference ---- */

static int cmp_double(const void *a, const void *b) {
  double u = *(const double *)a, v = *(const double *)b;
  return (u > v) - (u < v);
}

/* Pooled squared distance of points i, j of z = [x; y]. */
static double ref_d2(const float *x, int n, const float *y, int dim, int i,
                     int j) {
  const float *a = i < n ? x + i * dim : y + (i - n) * dim;
  const float *b = j < n ? x + j * dim : y + (j - n) * dim;
  double s = 0.0;
  for (int e = 0; e < dim; e++) s += ((double)a[e] - b[e]) * (a[e] - b[e]);
  return s;
}

/* sqrt(median / 2) of all pooled pair distances (linear interpolation). */
static double ref_sigma(const float *x, int n, const float *y, int m,
                        int dim) {
  int N = n + m, p = 0;
  double *d = malloc(sizeof(double) * (size_t)(N * (N - 1) / 2));
  for (int i = 0; i < N; i++)
    for (int j = i + 1; j < N; j++) d[p++] = ref_d2(x, n, y, dim, i, j);
  qsort(d, (size_t)p, sizeof(double), cmp_double);
  double h = 0.5 * (p - 1), med = d[(int)h];
  if ((int)h + 1 < p) med += (h - (int)h) * (d[(int)h + 1] - d[(int)h]);
  free(d);
  return sqrt(0.5 * med);
}

/* Unbiased MMD^2 of the labelling in_x (1 = group of size n) of z. */
static double ref_mmd2(const float *x, int n, const float *y, int m,
                       int dim, double sigma, const int *in_x) {
  int N = n + m;
  double sxx = 0.0, syy = 0.0, sxy = 0.0;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      if (i == j) continue;
      double k = exp(-ref_d2(x, n, y, dim, i, j) / (2.0 * sigma * sigma));
      if (in_x[i] && in_x[j])
        sxx += k;
      else if (!in_x[i] && !in_x[j])
        syy += k;
      else if (in_x[i])
        sxy += k;
    }
  return sxx / ((double)n * (n - 1)) + syy / ((double)m * (m - 1)) -
         2.0 * sxy / ((double)n * m);
}

/* Exact permutation p-value: the share of all C(N, n) labellings scoring
 * at least the observed one (N <= 20). */
static double ref_exact_p(const float *x, int n, const float *y, int m,
                          int dim, double sigma, double obs) {
  int N = n + m, in_x[20], total = 0, hits = 0;
  for (unsigned s = 0; s < (1u << N); s++) {
    if (__builtin_popcount(s) != n) continue;
    for (int i = 0; i < N; i++) in_x[i] = (int)((s >> i) & 1u);
    total++;
    hits += ref_mmd2(x, n, y, m, dim, sigma, in_x) >= obs - 1e-12;
  }
  return (double)hits / total;
}

/* ---- MMD: exactness ---- */

static void check_against_reference(int n, int m, int dim, int exact_p) {
  float *x = malloc(sizeof(float) * (size_t)(n * dim));
  float *y = malloc(sizeof(float) * (size_t)(m * dim));
  int *in_x = malloc(sizeof(int) * (size_t)(n + m));
  for (int i = 0; i < n * dim; i++) x[i] = (float)td_normal();
  for (int i = 0; i < m * dim; i++) y[i] = (float)(td_normal() + 0.3);
  for (int i = 0; i < n + m; i++) in_x[i] = i < n;
  sd_mmd_result r;
  int perms = exact_p ? 10000 : 50;
  CHECK_INT(sd_mmd_test(x, n, y, m, dim, perms, 42, &r), 0);
  double sigma = ref_sigma(x, n, y, m, dim);
  double want = ref_mmd2(x, n, y, m, dim, sigma, in_x);
  CHECK_NEAR(r.sigma / sigma, 1.0, 1e-5);
  CHECK_NEAR(r.mmd2, want, 1e-4);
  CHECK(fabs(r.mmd2 - want) < 1e-5 * (1.0 + fabs(want)));
  CHECK_INT(r.permutations, perms);
  double hits = r.p_value * (perms + 1) - 1.0; /* an integer count */
  CHECK_NEAR(hits, floor(hits + 0.5), 1e-6);
  if (exact_p) { /* 10000 draws: sd of the estimate <= 0.005 */
    double p = ref_exact_p(x, n, y, m, dim, sigma, want);
    fprintf(stderr, "mmd n=%d m=%d: p %.4f, exact permutation p %.4f\n", n,
            m, r.p_value, p);
    CHECK_NEAR(r.p_value, p, 0.02);
  }
  free(x);
  free(y);
  free(in_x);
}

static void test_mmd_reference(void) {
  check_against_reference(5, 4, 3, 1);  /* smaller group is y */
  check_against_reference(4, 7, 2, 1);  /* smaller group is x */
  check_against_reference(6, 6, 5, 1);
  check_against_reference(30, 50, 8, 0); /* the unrolled sums */
  check_against_reference(61, 23, 17, 0);
}

static void test_mmd_identical(void) {
  enum { N = 50, D = 16 };
  float x[N * D], same[4 * D];
  sd_mmd_result r, r2;
  for (int i = 0; i < N * D; i++) x[i] = (float)td_normal();
  CHECK_INT(sd_mmd_test(x, N, x, N, D, 200, 7, &r), 0);
  /* MMD^2_u of a sample against itself lies in [-2/n, 0] */
  CHECK(r.mmd2 <= 1e-6 && r.mmd2 >= -2.0 / N - 1e-6);
  CHECK(r.p_value > 0.5);
  /* deterministic given the seed */
  CHECK_INT(sd_mmd_test(x, N, x, N, D, 200, 7, &r2), 0);
  CHECK(r.mmd2 == r2.mmd2 && r.p_value == r2.p_value &&
        r.sigma == r2.sigma && r.permutations == r2.permutations);
  /* all points coincide: sigma falls back to 1, every labelling ties */
  for (int i = 0; i < 4 * D; i++) same[i] = 0.25f;
  CHECK_INT(sd_mmd_test(same, 2, same + 2 * D, 2, D, 30, 1, &r), 0);
  CHECK_NEAR(r.sigma, 1.0, 0.0);
  CHECK_NEAR(r.mmd2, 0.0, 1e-6);
  CHECK_NEAR(r.p_value, 1.0, 0.0);
}

/* Most pairs coincide: the median of the non-zero distances is used. */
static void test_mmd_duplicates(void) {
  float x[5 * 2], y[5 * 2];
  sd_mmd_result r;
  for (int i = 0; i < 5; i++) {
    x[2 * i] = 1.0f, x[2 * i + 1] = 0.0f;
    y[2 * i] = i < 3 ? 1.0f : 0.0f, y[2 * i + 1] = i < 3 ? 0.0f : 2.0f;
  }
  /* 29 of 45 pairs at 0, the other 16 at |(1,0) - (0,2)|^2 = 5 */
  CHECK_INT(sd_mmd_test(x, 5, y, 5, 2, 100, 3, &r), 0);
  CHECK_NEAR(r.sigma, sqrt(2.5), 1e-6);
  CHECK(r.mmd2 > 0.0);
}

static void test_mmd_invalid(void) {
  float x[4 * 2] = {0, 1, 2, 3, 4, 5, 6, 7}, bad[4 * 2];
  sd_mmd_result r;
  memcpy(bad, x, sizeof x);
  bad[1] = NAN; /* in the first row */
  CHECK_INT(sd_mmd_test(NULL, 2, x, 2, 2, 10, 1, &r), SD_EINVAL);
  CHECK_INT(sd_mmd_test(x, 2, NULL, 2, 2, 10, 1, &r), SD_EINVAL);
  CHECK_INT(sd_mmd_test(x, 2, x, 2, 2, 10, 1, NULL), SD_EINVAL);
  CHECK_INT(sd_mmd_test(x, 1, x, 2, 2, 10, 1, &r), SD_EINVAL);
  CHECK_INT(sd_mmd_test(x, 2, x, 1, 2, 10, 1, &r), SD_EINVAL);
  CHECK_INT(sd_mmd_test(x, 2, x, 2, 0, 10, 1, &r), SD_EINVAL);
  CHECK_INT(sd_mmd_test(x, 2, x, 2, 2, -1, 1, &r), SD_EINVAL);
  CHECK_INT(sd_mmd_test(bad, 2, x, 2, 2, 10, 1, &r), SD_EINVAL);
  CHECK_INT(sd_mmd_test(x, 2, bad, 2, 2, 10, 1, &r), SD_EINVAL);
  CHECK(r.mmd2 == 0.0 && r.p_value == 0.0 && r.permutations == 0);
  /* caps are checked before any row is read */
  CHECK_INT(sd_mmd_test(x, 9000, x, 1001, 2, 10, 1, &r), SD_ETOOLARGE);
  CHECK_INT(sd_mmd_test(x, 2, x, 2, SD_MMD_MAX_DIM + 1, 10, 1, &r),
            SD_ETOOLARGE);
  CHECK_INT(sd_mmd_test(x, 2, x, 2, 2, SD_MMD_MAX_PERMUTATIONS + 1, 1, &r),
            SD_ETOOLARGE);
  /* permutations == 0: the statistic only */
  CHECK_INT(sd_mmd_test(x, 2, x + 4, 2, 2, 0, 1, &r), 0);
  CHECK_NEAR(r.p_value, 1.0, 0.0);
  CHECK(r.sigma > 0.0);
}

/* ---- MMD: calibration and power ---- */

enum { MIX_K = 8, MIX_DIM = 32 };
#define MIX_TAU 0.6

/*
 * Share of `trials` tests with p < alpha, each on fresh centers, x of n
 * points from the k-cluster mixture and y of n points that take the
 * (k+1)-th cluster with probability p_new.
 */
static double mixture_rate(int trials, int n, int perms, double p_new,
                           double alpha) {
  float c[(MIX_K + 1) * MIX_DIM];
  float *x = malloc(sizeof(float) * (size_t)(n * MIX_DIM));
  float *y = malloc(sizeof(float) * (size_t)(n * MIX_DIM));
  int below = 0;
  for (int t = 0; t < trials; t++) {
    sd_mmd_result r;
    random_centers(c, MIX_K + 1, MIX_DIM);
    mixture(x, n, MIX_DIM, c, MIX_K, MIX_K, 0.0, MIX_TAU);
    mixture(y, n, MIX_DIM, c, MIX_K, MIX_K, p_new, MIX_TAU);
    CHECK_INT(sd_mmd_test(x, n, y, n, MIX_DIM, perms, 1000u + (uint64_t)t,
                          &r), 0);
    below += r.p_value < alpha;
  }
  free(x);
  free(y);
  return (double)below / trials;
}

/* Share of tests with p < alpha between N(0, I) and N(shift e_1, I). */
static double shift_rate(int trials, int n, int dim, double shift, int perms,
                         double alpha) {
  float *x = malloc(sizeof(float) * (size_t)(n * dim));
  float *y = malloc(sizeof(float) * (size_t)(n * dim));
  int below = 0;
  for (int t = 0; t < trials; t++) {
    sd_mmd_result r;
    for (int i = 0; i < n * dim; i++) x[i] = (float)td_normal();
    for (int i = 0; i < n * dim; i++)
      y[i] = (float)(td_normal() + (i % dim == 0 ? shift : 0.0));
    CHECK_INT(sd_mmd_test(x, n, y, n, dim, perms, 5000u + (uint64_t)t, &r),
              0);
    below += r.p_value < alpha;
  }
  free(x);
  free(y);
  return (double)below / trials;
}

static void test_mmd_calibration(void) {
  double fa = mixture_rate(200, 100, 100, 0.0, 0.05);
  fprintf(stderr, "mmd calibration: %d-cluster mixture, dim %d, n=m=100, "
          "B=100, 200 trials: false-alarm rate at p<0.05 = %.3f\n", MIX_K,
          MIX_DIM, fa);
  CHECK(fa >= 0.01 && fa <= 0.10);
}

/*
 * A new cluster taking 20% of y, and a mean shift of 0.75 standard
 * deviations along one axis of a 32-dim Gaussian (|shift| = 0.75 against a
 * typical point norm of 5.7), must be caught at p < 0.01. A new cluster
 * of 10% is not asserted: MMD weighs the mixture shares by an unweighted
 * L2 distance, so 20 novel points in 200 sit near the noise of the eight
 * shares (measured: 30% of 50 trials at p < 0.01, and 16-38% for 4 to 16
 * clusters, with sigma scaled by 0.25 to 2 as well). Per-cluster share
 * tests (sd_two_prop_z, sd_psi on assignments) are the sharper tool for
 * that kind of drift.
 */
static void test_mmd_power(void) {
  double d20 = mixture_rate(50, 200, 200, 0.20, 0.01);
  fprintf(stderr, "mmd power: new cluster = 20%% of y, n=m=200, B=200, "
          "50 trials: detection rate at p<0.01 = %.3f\n", d20);
  CHECK(d20 >= 0.95);
  double ds = shift_rate(50, 200, MIX_DIM, 0.75, 200, 0.01);
  fprintf(stderr, "mmd power: N(0,I) vs mean shift 0.75 on one axis, dim %d,"
          " n=m=200, B=200, 50 trials: detection rate at p<0.01 = %.3f\n",
          MIX_DIM, ds);
  CHECK(ds >= 0.95);
}

/* ---- PSI ---- */

static void test_psi(void) {
  const double r2[] = {50, 50}, c2[] = {40, 60};
  const double r3[] = {50, 50, 0}, c3[] = {40, 40, 20};
  const double r4[] = {10, 20, 30, 40}, c4[] = {40, 30, 20, 10};
  const double scaled[] = {400, 600}, both0r[] = {50, 50, 0};
  const double both0c[] = {40, 60, 0}, neg[] = {1, -1}, zero[] = {0, 0};
  const double nan2[] = {1, NAN};
  /* 0.1 ln 1.2 - 0.1 ln 0.8 */
  CHECK_NEAR(sd_psi(r2, c2, 2, SD_PSI_EPS), 0.04054651081081642, 1e-12);
  CHECK_NEAR(sd_psi(r2, scaled, 2, SD_PSI_EPS), 0.04054651081081642, 1e-12);
  CHECK_NEAR(sd_psi(r2, r2, 2, SD_PSI_EPS), 0.0, 0.0);
  CHECK_NEAR(sd_psi(r4, c4, 4, SD_PSI_EPS), 0.9128696382935673, 1e-12);
  /* the empty reference bin counts as a share of eps */
  CHECK_NEAR(sd_psi(r3, c3, 3, SD_PSI_EPS), 1.5640491119253044, 1e-12);
  CHECK_NEAR(sd_psi(r3, c3, 3, 1e-3),
             2.0 * 0.1 * log(1.25) + (0.2 - 1e-3) * log(200.0), 1e-12);
  CHECK(isinf(sd_psi(r3, c3, 3, 0.0)));
  CHECK(isinf(sd_psi(c3, r3, 3, 0.0)));
  /* a bin empty on both sides adds nothing, with or without eps */
  CHECK_NEAR(sd_psi(both0r, both0c, 3, 0.0), 0.04054651081081642, 1e-12);
  CHECK_NEAR(sd_psi(both0r, both0c, 3, SD_PSI_EPS), 0.04054651081081642,
             1e-12);
  CHECK(isnan(sd_psi(NULL, c2, 2, SD_PSI_EPS)));
  CHECK(isnan(sd_psi(r2, c2, 0, SD_PSI_EPS)));
  CHECK(isnan(sd_psi(r2, c2, 2, -1e-4)));
  CHECK(isnan(sd_psi(r2, c2, 2, 1.0)));
  CHECK(isnan(sd_psi(r2, c2, 2, NAN)));
  CHECK(isnan(sd_psi(neg, c2, 2, SD_PSI_EPS)));
  CHECK(isnan(sd_psi(r2, zero, 2, SD_PSI_EPS)));
  CHECK(isnan(sd_psi(r2, nan2, 2, SD_PSI_EPS)));
}

/* ---- z-test and normal tail ---- */

static void test_z(void) {
  CHECK_NEAR(sd_two_prop_z(45, 100, 30, 100), 2.1908902300206647, 1e-12);
  CHECK_NEAR(sd_two_prop_z(30, 100, 45, 100), -2.1908902300206647, 1e-12);
  CHECK_NEAR(sd_two_prop_z(15, 150, 25, 130), -2.2013981571160284, 1e-12);
  CHECK_NEAR(sd_two_prop_z(1, 1000, 0, 10), 0.10004954174195414, 1e-12);
  CHECK_NEAR(sd_two_prop_z(20, 100, 20, 100), 0.0, 0.0);
  /* undefined: zero standard error or bad counts */
  CHECK_NEAR(sd_two_prop_z(0, 100, 0, 50), 0.0, 0.0);
  CHECK_NEAR(sd_two_prop_z(100, 100, 50, 50), 0.0, 0.0);
  CHECK_NEAR(sd_two_prop_z(1, 0, 1, 10), 0.0, 0.0);
  CHECK_NEAR(sd_two_prop_z(11, 10, 1, 10), 0.0, 0.0);
  CHECK_NEAR(sd_two_prop_z(-1, 10, 1, 10), 0.0, 0.0);
  CHECK_NEAR(sd_two_prop_z(NAN, 10, 1, 10), 0.0, 0.0);
  CHECK_NEAR(sd_two_prop_z(1, INFINITY, 1, 10), 0.0, 0.0);
  CHECK_NEAR(sd_normal_sf(0.0), 0.5, 1e-15);
  CHECK_NEAR(sd_normal_sf(1.959963984540054), 0.025, 1e-15);
  CHECK_NEAR(sd_normal_sf(-1.0), 0.8413447460685429, 1e-15);
  CHECK_NEAR(sd_normal_sf(3.0), 0.0013498980316300933, 1e-17);
  CHECK_NEAR(sd_normal_sf(8.0) / 6.22096057427174e-16, 1.0, 1e-12);
  CHECK_NEAR(2.0 * sd_normal_sf(2.1908902300206647), 0.028459736916310565,
             1e-15);
  CHECK(isnan(sd_normal_sf(NAN)));
}

/* Binomial upper tails against exact fractions and sums. */
static void test_binom(void) {
  CHECK_NEAR(sd_binom_sf(9, 10, 0.5), 11.0 / 1024.0, 1e-15);
  CHECK_NEAR(sd_binom_sf(8, 10, 0.5), 56.0 / 1024.0, 1e-15);
  CHECK_NEAR(sd_binom_sf(10, 10, 0.5), 1.0 / 1024.0, 1e-15);
  CHECK_NEAR(sd_binom_sf(3, 5, 0.3), 0.16308, 1e-12);
  CHECK_NEAR(sd_binom_sf(0, 10, 0.3), 1.0, 0.0);
  CHECK_NEAR(sd_binom_sf(11, 10, 0.3), 0.0, 0.0);
  CHECK_NEAR(sd_binom_sf(1, 10, 0.0), 0.0, 0.0);
  CHECK_NEAR(sd_binom_sf(10, 10, 1.0), 1.0, 0.0);
  /* the tail and its complement add up to one */
  double below = 0;
  for (int k = 0; k < 4; k++) below += sd_binom_sf(k, 12, 0.37) - sd_binom_sf(k + 1, 12, 0.37);
  CHECK_NEAR(below + sd_binom_sf(4, 12, 0.37), 1.0, 1e-12);
  CHECK(isnan(sd_binom_sf(1, 10, 1.5)));
  CHECK(isnan(sd_binom_sf(1, -1, 0.5)));
}

/* ---- quantile ---- */

static int cmp_float(const void *a, const void *b) {
  float u = *(const float *)a, v = *(const float *)b;
  return (u > v) - (u < v);
}

static void test_quantile_known(void) {
  float a[] = {5, 1, 4, 2, 3}, b[] = {4, 3, 2, 1};
  float c[] = {3, 1, 2, 10, 7, 7}, one[] = {2.5f}, nanv[] = {1, NAN, 2};
  CHECK_NEAR(sd_quantile(a, 5, 0.9), 4.6, 1e-6);
  CHECK_NEAR(sd_quantile(a, 5, 0.5), 3.0, 0.0);
  CHECK_NEAR(sd_quantile(a, 5, 0.0), 1.0, 0.0);
  CHECK_NEAR(sd_quantile(a, 5, 1.0), 5.0, 0.0);
  CHECK_NEAR(sd_quantile(b, 4, 0.25), 1.75, 1e-6);
  CHECK_NEAR(sd_quantile(b, 4, 0.5), 2.5, 1e-6); /* even n: middle mean */
  CHECK_NEAR(sd_quantile(c, 6, 0.1), 1.5, 1e-6);
  CHECK_NEAR(sd_quantile(c, 6, 0.5), 5.0, 1e-6);
  CHECK_NEAR(sd_quantile(c, 6, 0.7), 7.0, 1e-6);
  CHECK_NEAR(sd_quantile(one, 1, 0.3), 2.5, 0.0);
  CHECK(isnan(sd_quantile(NULL, 3, 0.5)));
  CHECK(isnan(sd_quantile(a, 0, 0.5)));
  CHECK(isnan(sd_quantile(a, 5, -0.1)));
  CHECK(isnan(sd_quantile(a, 5, 1.1)));
  CHECK(isnan(sd_quantile(a, 5, NAN)));
  CHECK(isnan(sd_quantile(nanv, 3, 0.5)));
}

/* Random arrays, many with ties, against sorting. */
static void test_quantile_random(void) {
  float v[300], s[300];
  for (int t = 0; t < 400; t++) {
    int n = 1 + td_below(300), levels = t % 2 ? 5 : 1000000;
    double q = t % 5 == 0 ? 0.0 : (t % 5 == 1 ? 1.0 : td_unit());
    for (int i = 0; i < n; i++) v[i] = (float)td_below(levels) - 2.0f;
    if (t % 7 == 0) qsort(v, (size_t)n, sizeof(float), cmp_float);
    memcpy(s, v, sizeof(float) * (size_t)n);
    qsort(s, (size_t)n, sizeof(float), cmp_float);
    double h = q * (n - 1);
    int lo = (int)h;
    double want = s[lo];
    if (lo + 1 < n) want += (h - lo) * ((double)s[lo + 1] - s[lo]);
    float got = sd_quantile(v, (size_t)n, q);
    CHECK_NEAR(got, want, 1e-6 * (1.0 + fabs(want)));
    qsort(v, (size_t)n, sizeof(float), cmp_float); /* a permutation of s */
    CHECK(memcmp(v, s, sizeof(float) * (size_t)n) == 0);
  }
}

int main(void) {
  td_seed(4242);
  test_mmd_reference();
  test_mmd_identical();
  test_mmd_duplicates();
  test_mmd_invalid();
  test_mmd_calibration();
  test_mmd_power();
  test_psi();
  test_z();
  test_binom();
  test_quantile_known();
  test_quantile_random();
  return check_done("test_drift_stats");
}
