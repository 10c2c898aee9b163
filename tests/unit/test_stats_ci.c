/*
 * test_stats_ci.c -- stats_ci.c against published and independently
 * computed reference values.
 *
 * Newcombe intervals: Newcombe (1998), Table II, method 10 (hybrid score),
 * all eight worked examples, to the 4 decimals printed there. Wilson
 * intervals: the same paper's companion (Newcombe 1998, Statistics in
 * Medicine 17:857, Table I: 81/263, 15/148, 0/20) and the closed form.
 * Chi-square tails: the textbook 0.05 and 0.01 quantiles, and closed forms
 * evaluated with Debian's /usr/bin/python3 (math.erfc, math.exp):
 * df 1 sf = erfc(sqrt(x/2)), df 3 sf = erfc(sqrt(x/2)) + sqrt(2x/pi)
 * exp(-x/2), df 4 sf = exp(-x/2)(1 + x/2). Cochran's Q references were
 * computed the same way from the formula in stats_ci.h.
 */
#include "check.h"
#include "segmentd/stats_ci.h"

#include <math.h>

static void newcombe_case(int x1, int n1, int x2, int n2, double lo, double hi) {
  double d, l, h;
  CHECK_INT(sd_newcombe(x1, n1, x2, n2, SD_Z95, &d, &l, &h), 0);
  CHECK_NEAR(d, (double)x1 / n1 - (double)x2 / n2, 1e-12);
  CHECK_NEAR(l, lo, 5e-5);
  CHECK_NEAR(h, hi, 5e-5);
}

static void test_newcombe(void) {
  newcombe_case(56, 70, 48, 80, 0.0524, 0.3339);
  newcombe_case(9, 10, 3, 10, 0.1705, 0.8090);
  newcombe_case(6, 7, 2, 7, 0.0582, 0.8062);
  newcombe_case(5, 56, 0, 29, -0.0381, 0.1926);
  newcombe_case(0, 10, 0, 20, -0.1611, 0.2775);
  newcombe_case(0, 10, 0, 10, -0.2775, 0.2775);
  newcombe_case(10, 10, 0, 20, 0.6791, 1.0000);
  newcombe_case(10, 10, 0, 10, 0.6075, 1.0000);
  double d, l, h;
  CHECK_INT(sd_newcombe(1, 0, 1, 2, SD_Z95, &d, &l, &h), -1);
  CHECK_INT(sd_newcombe(1, 2, 3, 2, SD_Z95, &d, &l, &h), -1);
}

static void test_wilson(void) {
  double lo, hi;
  CHECK_INT(sd_wilson(81, 263, SD_Z95, &lo, &hi), 0);
  CHECK_NEAR(lo, 0.2552885198782742, 1e-12);
  CHECK_NEAR(hi, 0.36620957698280004, 1e-12);
  CHECK_INT(sd_wilson(15, 148, SD_Z95, &lo, &hi), 0);
  CHECK_NEAR(lo, 0.0623863995307363, 1e-12);
  CHECK_NEAR(hi, 0.16048724172330803, 1e-12);
  CHECK_INT(sd_wilson(0, 20, SD_Z95, &lo, &hi), 0); /* Table I: 0, 0.1611 */
  CHECK(lo == 0.0);
  CHECK_NEAR(hi, 0.1611, 5e-5);
  CHECK_INT(sd_wilson(10, 10, SD_Z95, &lo, &hi), 0);
  CHECK(hi == 1.0);
  CHECK_NEAR(lo, 1 - 0.2775327998628892, 1e-12);
  CHECK_INT(sd_wilson(0, 0, SD_Z95, &lo, &hi), -1);
  CHECK_INT(sd_wilson(-1, 5, SD_Z95, &lo, &hi), -1);
  CHECK_INT(sd_wilson(6, 5, SD_Z95, &lo, &hi), -1);
}

static void test_chi2(void) {
  CHECK_NEAR(sd_chi2_sf(3.841458820694124, 1), 0.05, 1e-12);
  CHECK_NEAR(sd_chi2_sf(7.814727903251178, 3), 0.05, 1e-12);
  CHECK_NEAR(sd_chi2_sf(11.344866730144373, 3), 0.01, 1e-12);
  CHECK_NEAR(sd_chi2_sf(18.307038053275146, 10), 0.05, 1e-11);
  CHECK_NEAR(sd_chi2_sf(5.0, 4), 0.2872974951836458, 1e-13);
  CHECK_NEAR(sd_chi2_sf(6.0, 2), exp(-3.0), 1e-14);
  CHECK_NEAR(sd_chi2_sf(40.0, 3) / 1.0655090334255861e-08, 1.0, 1e-9);
  CHECK_NEAR(sd_chi2_sf(0.03, 1), 0.8624902301359216, 1e-12);
  CHECK(sd_chi2_sf(0.0, 3) == 1.0);
  CHECK(isnan(sd_chi2_sf(1.0, 0)));
  CHECK(isnan(sd_gamma_q(-1.0, 1.0)));
}

static void test_cochran(void) {
  const double d[4] = {0.2, 0.0, 0.01, -0.02}, v[4] = {0.0013, 0.001, 0.0011, 0.0012};
  sd_cochran c;
  CHECK_INT(sd_cochran_q(d, v, 4, &c), 0);
  CHECK_NEAR(c.mean, 0.04165283770328577, 1e-12);
  CHECK_NEAR(c.q, 25.100896116827094, 1e-9);
  CHECK_INT(c.df, 3);
  CHECK_NEAR(c.p_value / 1.4708350277041724e-05, 1.0, 1e-8);
  CHECK_NEAR(c.i2, 0.880482354652316, 1e-12);
  const double d2[2] = {0.05, 0.02}, v2[2] = {0.01, 0.02};
  CHECK_INT(sd_cochran_q(d2, v2, 2, &c), 0);
  CHECK_NEAR(c.mean, 0.04, 1e-12);
  CHECK_NEAR(c.q, 0.03, 1e-12);
  CHECK_NEAR(c.p_value, 0.8624902301359216, 1e-12);
  CHECK(c.i2 == 0.0);
  /* (41/102)(61/102)/102 + (11/52)(41/52)/52 */
  CHECK_NEAR(sd_diff_var_ac(40, 100, 10, 50),
             41.0 * 61.0 / (102.0 * 102.0 * 102.0) + 11.0 * 41.0 / (52.0 * 52.0 * 52.0), 1e-15);
  CHECK(sd_diff_var_ac(0, 10, 10, 10) > 0);
  const double bad_v[2] = {0.01, 0.0};
  CHECK_INT(sd_cochran_q(d2, bad_v, 2, &c), -1);
  CHECK_INT(sd_cochran_q(d2, v2, 1, &c), -1);
}

int main(void) {
  test_wilson();
  test_newcombe();
  test_chi2();
  test_cochran();
  return check_done("test_stats_ci");
}
