/*
 * stats_ci.h -- interval estimates and the heterogeneity test of outcome
 * metrics and experiments.
 *
 * Owns: the Wilson score interval of a proportion (Wilson 1927), the
 * Newcombe hybrid score interval of a difference of two independent
 * proportions (Newcombe 1998, method 10), Cochran's Q test of equal
 * effects across strata with the chi-square upper tail, and the
 * regularised upper incomplete gamma function behind that tail.
 *
 * Pure functions: no I/O, no allocation, no globals, thread-safe. Inputs
 * are borrowed and never modified. Which strata enter a test, and what
 * the numbers mean to a reader, is the caller's business.
 */
#ifndef SEGMENTD_STATS_CI_H
#define SEGMENTD_STATS_CI_H

#include <stdint.h>

/* The two-sided 95% normal quantile, z = Phi^-1(0.975). */
#define SD_Z95 1.959963984540054

/* Wilson score interval of x successes in n trials at quantile z:
 * [*lo, *hi] within [0, 1]. 0, or -1 (nothing written) when n < 1 or x is
 * outside [0, n]. */
int sd_wilson(int64_t x, int64_t n, double z, double *lo, double *hi);

/* Newcombe's hybrid score interval of p1 - p2 (p1 = x1/n1, p2 = x2/n2):
 * *d = p1 - p2 and [*lo, *hi] within [-1, 1]. 0, or -1 when either
 * sample is empty or a count is out of range. */
int sd_newcombe(int64_t x1, int64_t n1, int64_t x2, int64_t n2, double z,
                double *d, double *lo, double *hi);

/* The variance of p1 - p2 from Agresti and Caffo's adjusted proportions
 * q = (x + 1)/(n + 2): q1(1 - q1)/(n1 + 2) + q2(1 - q2)/(n2 + 2). Positive
 * even for 0% or 100% samples (where the plain Wald variance is 0). */
double sd_diff_var_ac(int64_t x1, int64_t n1, int64_t x2, int64_t n2);

/* Q(a, x) = Gamma(a, x) / Gamma(a), a > 0, x >= 0 (series below a + 1,
 * Lentz's continued fraction above), relative error about 1e-14. */
double sd_gamma_q(double a, double x);

/* P(X >= x) for X chi-square with df > 0 degrees of freedom. */
double sd_chi2_sf(double x, double df);

/* Cochran's Q over k strata with effects d[i] and variances v[i] (> 0):
 * weights w = 1/v, the fixed-effect mean m = sum(w d) / sum(w),
 * Q = sum(w (d - m)^2), df = k - 1, p = P(chi2_df >= Q), and Higgins' I^2
 * = max(0, (Q - df) / Q). 0, or -1 when k < 2 or a variance is not
 * positive (nothing written). */
typedef struct {
  double q, p_value, i2, mean;
  int df;
} sd_cochran;
int sd_cochran_q(const double *d, const double *v, int k, sd_cochran *out);

#endif
