/*
 * stats_ci.c -- Wilson and Newcombe intervals, Cochran's Q and the
 * chi-square tail (see stats_ci.h).
 *
 * References: E. B. Wilson, "Probable inference, the law of succession,
 * and statistical inference", JASA 22 (1927); R. G. Newcombe, "Interval
 * estimation for the difference between independent proportions:
 * comparison of eleven methods", Statistics in Medicine 17 (1998),
 * method 10; W. G. Cochran, "The combination of estimates from different
 * experiments", Biometrics 10 (1954); J. P. T. Higgins and S. G.
 * Thompson, "Quantifying heterogeneity in a meta-analysis", Statistics in
 * Medicine 21 (2002); A. Agresti and B. Caffo, "Simple and effective
 * confidence intervals for proportions and differences of proportions",
 * The American Statistician 54 (2000). The incomplete gamma follows the textbook series and
 * continued fraction (Press et al., Numerical Recipes, 6.2).
 */
#include "segmentd/stats_ci.h"

#include <math.h>

int sd_wilson(int64_t x, int64_t n, double z, double *lo, double *hi) {
  if (n < 1 || x < 0 || x > n) return -1;
  double nn = (double)n, p = (double)x / nn, z2 = z * z;
  double den = 1.0 + z2 / nn;
  double centre = (p + z2 / (2.0 * nn)) / den;
  double half = z / den * sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn));
  *lo = fmax(0.0, centre - half);
  *hi = fmin(1.0, centre + half);
  if (x == 0) *lo = 0.0; /* exact ends, free of rounding */
  if (x == n) *hi = 1.0;
  return 0;
}

int sd_newcombe(int64_t x1, int64_t n1, int64_t x2, int64_t n2, double z,
                double *d, double *lo, double *hi) {
  double l1, u1, l2, u2;
  if (sd_wilson(x1, n1, z, &l1, &u1) < 0 || sd_wilson(x2, n2, z, &l2, &u2) < 0)
    return -1;
  double p1 = (double)x1 / (double)n1, p2 = (double)x2 / (double)n2;
  *d = p1 - p2;
  *lo = fmax(-1.0, *d - sqrt((p1 - l1) * (p1 - l1) + (u2 - p2) * (u2 - p2)));
  *hi = fmin(1.0, *d + sqrt((u1 - p1) * (u1 - p1) + (p2 - l2) * (p2 - l2)));
  return 0;
}

double sd_diff_var_ac(int64_t x1, int64_t n1, int64_t x2, int64_t n2) {
  double q1 = (x1 + 1.0) / (n1 + 2.0), q2 = (x2 + 1.0) / (n2 + 2.0);
  return q1 * (1 - q1) / (n1 + 2.0) + q2 * (1 - q2) / (n2 + 2.0);
}

/* P(a, x) by its series; for x < a + 1. */
static double gamma_p_series(double a, double x) {
  double term = 1.0 / a, sum = term;
  for (int i = 1; i < 1000; i++) {
    term *= x / (a + i);
    sum += term;
    if (fabs(term) < fabs(sum) * 1e-16) break;
  }
  return sum * exp(-x + a * log(x) - lgamma(a));
}

/* Q(a, x) by its continued fraction (modified Lentz); for x >= a + 1. */
static double gamma_q_fraction(double a, double x) {
  const double tiny = 1e-300;
  double b = x + 1.0 - a, c = 1.0 / tiny, d = 1.0 / b, h = d;
  for (int i = 1; i < 1000; i++) {
    double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    double del = d * c;
    h *= del;
    if (fabs(del - 1.0) < 1e-16) break;
  }
  return exp(-x + a * log(x) - lgamma(a)) * h;
}

double sd_gamma_q(double a, double x) {
  if (!(a > 0) || !(x >= 0)) return NAN;
  if (x == 0) return 1.0;
  if (x < a + 1.0) return 1.0 - gamma_p_series(a, x);
  return gamma_q_fraction(a, x);
}

double sd_chi2_sf(double x, double df) {
  if (!(df > 0) || isnan(x)) return NAN;
  return x <= 0 ? 1.0 : sd_gamma_q(df / 2.0, x / 2.0);
}

int sd_cochran_q(const double *d, const double *v, int k, sd_cochran *out) {
  if (k < 2) return -1;
  double sw = 0, swd = 0;
  for (int i = 0; i < k; i++) {
    if (!(v[i] > 0) || !isfinite(d[i])) return -1;
    sw += 1.0 / v[i];
    swd += d[i] / v[i];
  }
  double m = swd / sw, q = 0;
  for (int i = 0; i < k; i++) q += (d[i] - m) * (d[i] - m) / v[i];
  out->mean = m;
  out->q = q;
  out->df = k - 1;
  out->p_value = sd_chi2_sf(q, k - 1);
  out->i2 = q > out->df ? (q - out->df) / q : 0.0;
  return 0;
}
