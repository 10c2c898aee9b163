/*
 * drift_stats.h -- the statistics of drift detection.
 *
 * Owns: the kernel two-sample test (maximum mean discrepancy with a
 * Gaussian RBF kernel and a permutation p-value, as Alibi Detect's
 * MMDDrift), the population stability index of two histograms, the pooled
 * two-proportion z-test with the normal upper tail, and the interpolated
 * quantile of a float array. Deciding what counts as drift (thresholds,
 * multiple-testing corrections, which windows to compare) is the caller's
 * business.
 *
 * Pure functions on caller-owned arrays: no I/O, no globals, thread-safe;
 * the result depends only on the inputs (and, for the MMD test, the seed).
 * Nothing returned needs freeing: sd_mmd_test allocates its working memory
 * itself and releases it before returning, on every path. Inputs are
 * borrowed and never modified, except the array sd_quantile reorders.
 */
#ifndef SEGMENTD_DRIFT_STATS_H
#define SEGMENTD_DRIFT_STATS_H

#include <stddef.h>
#include <stdint.h>

/* ---- MMD two-sample test ---- */

#define SD_MMD_MAX_POINTS 10000        /* n + m: the kernel is (n+m)^2 floats */
#define SD_MMD_MAX_DIM 65536           /* floats per point */
#define SD_MMD_MAX_PERMUTATIONS 10000  /* permutations per test */
#define SD_MMD_MEDIAN_PAIRS (1 << 18)  /* pairs sampled for the bandwidth */

typedef struct {
  double mmd2;      /* unbiased MMD^2 estimate of x against y (may be < 0) */
  double p_value;   /* (1 + #{permuted >= observed}) / (1 + permutations) */
  double sigma;     /* kernel bandwidth used (median heuristic), > 0 */
  int permutations; /* permutations run */
} sd_mmd_result;

/*
 * Two-sample test of "x and y come from the same distribution".
 *
 * x is n x dim and y is m x dim (row-major floats, one point per row; the
 * caller keeps them). The kernel is k(a, b) = exp(-|a - b|^2 / (2 sigma^2))
 * with sigma from the median heuristic of Alibi Detect: sigma^2 is half the
 * median squared distance over the pairs of the pooled sample (all
 * (n+m)(n+m-1)/2 pairs when there are at most SD_MMD_MEDIAN_PAIRS of them,
 * else an evenly strided subset of that many; median with linear
 * interpolation, sd_quantile). When more than half of those distances are
 * 0 (duplicates), the median of the non-zero ones is used; when all points
 * coincide sigma is 1.
 *
 * mmd2 is the unbiased estimate (Gretton et al. 2012, eq. 3): the mean
 * kernel over distinct pairs within x, plus that within y, minus twice the
 * mean kernel between x and y. The p-value comes from `permutations`
 * uniform random relabellings of the pooled points into groups of n and m
 * (Fisher-Yates on an sd_rng seeded with `seed`: same inputs and seed, same
 * result), each scored with the kernel matrix computed once; a permuted
 * statistic within 1e-12 of the kernel scale below the observed one counts
 * as a tie (>=), so float rounding cannot turn a tie into a discovery.
 * The test is exact (valid at every level) for any sample sizes; p is at
 * least 1 / (1 + permutations), so permutations >= 99 is needed to reach
 * p < 0.01. permutations == 0 gives p_value = 1.
 *
 * Cost: (n+m)^2 floats of memory (400 MB at the cap), the three sgemm
 * blocks of the distances, one exp per pair, and per permutation O(n+m)
 * plus a pass over the pairs within the smaller group (min(n, m)^2 / 2
 * lookups).
 *
 * Returns 0, SD_EINVAL (NULL pointer, n or m below 2, dim below 1,
 * permutations below 0, a value that is not finite), SD_ETOOLARGE (n + m
 * above SD_MMD_MAX_POINTS, dim above SD_MMD_MAX_DIM, permutations above
 * SD_MMD_MAX_PERMUTATIONS) or SD_ENOMEM. *out is zeroed on failure.
 */
int sd_mmd_test(const float *x, int n, const float *y, int m, int dim,
                int permutations, uint64_t seed, sd_mmd_result *out);

/* ---- population stability index ---- */

#define SD_PSI_EPS 1e-4 /* the usual smoothing of empty bins */

/*
 * PSI = sum_i (c_i - r_i) ln(c_i / r_i) over k bins, where r_i and c_i are
 * the reference and current counts normalised to shares inside, each
 * floored at eps (r_i = max(ref_i / sum(ref), eps); the floored shares are
 * not renormalised). Pass SD_PSI_EPS for the common choice; with eps == 0
 * a bin empty on one side only gives +infinity. Bins equal on both sides
 * add 0. The usual reading (the caller's business): below 0.1 stable,
 * 0.1-0.25 moderate shift, above 0.25 significant shift.
 *
 * Returns NAN for NULL arrays, k < 1, eps outside [0, 1), a negative or
 * non-finite count, or a side whose counts sum to 0.
 */
double sd_psi(const double *ref, const double *cur, int k, double eps);

/* ---- two-proportion z-test ---- */

/*
 * z statistic of "x1/n1 and x2/n2 are the same proportion" with the pooled
 * standard error: (x1/n1 - x2/n2) / sqrt(p (1 - p) (1/n1 + 1/n2)),
 * p = (x1 + x2) / (n1 + n2); positive when the first proportion is larger.
 * 0 when undefined: n1 or n2 not positive, a count outside [0, n], a value
 * that is not finite, or p in {0, 1} (zero standard error).
 * Two-sided p-value: 2 * sd_normal_sf(fabs(z)).
 */
double sd_two_prop_z(double x1, double n1, double x2, double n2);

/* P(Z > z) for a standard normal Z, as erfc(z / sqrt 2) / 2 (accurate far
 * into the upper tail). NAN for NAN. */
double sd_normal_sf(double z);

/* P(X >= x) for X ~ Binomial(n, p), summed term by term (n is small: the
 * neighbour counts of drift_emerging.c). 1 for x <= 0, 0 for x > n; NAN
 * when n < 0 or p is outside [0, 1]. */
double sd_binom_sf(int x, int n, double p);

/* ---- quantile ---- */

/*
 * The q-quantile of v[0..n) with linear interpolation between order
 * statistics (numpy's default, Hyndman & Fan type 7): with h = q (n - 1),
 * v_(floor h) + (h - floor h) (v_(floor h + 1) - v_(floor h)), where v_(i)
 * is the i-th smallest (0-based). q = 0.5 is the median, averaging the two
 * middle values of an even n. Reorders v (quickselect, O(n) expected).
 * Returns NAN when v is NULL, n is 0, q is outside [0, 1] or v holds a NAN
 * (v is then left as it was).
 */
float sd_quantile(float *v, size_t n, double q);

#endif
