/*
 * test_cluster_eval.c -- cluster_eval.c: the Hungarian assignment against
 * brute force over all matchings, NMI/ARI/accuracy on known cases and
 * against scikit-learn, the silhouette and Davies-Bouldin against
 * scikit-learn on a small fixed dataset, and bad arguments.
 *
 * Reference constants were computed once with Debian's /usr/bin/python3,
 * scikit-learn 1.2.1 (normalized_mutual_info_score, adjusted_rand_score,
 * silhouette_score, davies_bouldin_score) and, for accuracy,
 * scipy.optimize.linear_sum_assignment on sklearn's contingency_matrix.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "testdata.h"
#include "segmentd/cluster_eval.h"
#include "segmentd/err.h"

/* ---- deterministic test data ---- */

/* ---- Hungarian ---- */

/* Best total over all injective maps of rows [row, r) into unused columns
 * (rows may stay out only when r > c). */
static double brute_best(const double *s, int r, int c, int row, int *used,
                         int left_out) {
  if (row == r) return 0.0;
  double best = -INFINITY;
  for (int j = 0; j < c; j++) {
    if (used[j]) continue;
    used[j] = 1;
    double v = s[row * c + j] + brute_best(s, r, c, row + 1, used, left_out);
    used[j] = 0;
    if (v > best) best = v;
  }
  if (left_out > 0) {
    double v = brute_best(s, r, c, row + 1, used, left_out - 1);
    if (v > best) best = v;
  }
  return best;
}

/* Total of a matching, or NAN if it is not a valid one of min(r, c) pairs. */
static double matching_total(const double *s, int r, int c,
                             const int32_t *m) {
  int used[8] = {0}, pairs = 0;
  double total = 0.0;
  for (int i = 0; i < r; i++) {
    if (m[i] < 0) continue;
    if (m[i] >= c || used[m[i]]) return NAN;
    used[m[i]] = 1;
    pairs++;
    total += s[i * c + m[i]];
  }
  return pairs == (r < c ? r : c) ? total : NAN;
}

static void test_hungarian_brute(void) {
  double s[49];
  int32_t m[7];
  for (int trial = 0; trial < 300; trial++) {
    int r = 1 + td_below(7), c = 1 + td_below(7), ints = trial % 3 == 0;
    int used[7] = {0};
    for (int k = 0; k < r * c; k++) /* small ints make ties */
      s[k] = ints ? (double)td_below(4) : 20.0 * td_unit() - 10.0;
    CHECK_INT(sd_hungarian_max(s, r, c, m), 0);
    double want = brute_best(s, r, c, 0, used, r > c ? r - c : 0);
    double got = matching_total(s, r, c, m);
    CHECK(!isnan(got));
    CHECK_NEAR(got, want, 1e-9);
  }
}

/* A planted permutation worth 10 per row beats any noise in [0, 1). */
static void test_hungarian_planted(void) {
  enum { N = 150, C = 180 };
  double *s = malloc(sizeof(double) * N * C);
  int32_t perm[C], m[N], mt[C];
  if (!s) abort();
  for (int j = 0; j < C; j++) perm[j] = j;
  for (int j = C - 1; j > 0; j--) {
    int t = td_below(j + 1), v = perm[j];
    perm[j] = perm[t];
    perm[t] = v;
  }
  for (int i = 0; i < N; i++)
    for (int j = 0; j < C; j++)
      s[i * C + j] = j == perm[i] ? 10.0 : td_unit();
  CHECK_INT(sd_hungarian_max(s, N, C, m), 0);
  int ok = 1;
  for (int i = 0; i < N; i++) ok &= m[i] == perm[i];
  CHECK(ok);
  /* The transpose (C x N, rows left out). */
  double *st = malloc(sizeof(double) * N * C);
  if (!st) abort();
  for (int i = 0; i < N; i++)
    for (int j = 0; j < C; j++) st[j * N + i] = s[i * C + j];
  CHECK_INT(sd_hungarian_max(st, C, N, mt), 0);
  int out = 0;
  ok = 1;
  for (int j = 0; j < C; j++) {
    if (mt[j] < 0)
      out++;
    else
      ok &= perm[mt[j]] == j;
  }
  CHECK(ok);
  CHECK_INT(out, C - N);
  free(s);
  free(st);
}

static void test_hungarian_invalid(void) {
  double s[4] = {1, 2, 3, 4};
  int32_t m[4] = {7, 7, 7, 7};
  CHECK_INT(sd_hungarian_max(NULL, 2, 2, m), SD_EINVAL);
  CHECK_INT(sd_hungarian_max(s, 2, 2, NULL), SD_EINVAL);
  CHECK_INT(sd_hungarian_max(s, -1, 2, m), SD_EINVAL);
  CHECK_INT(sd_hungarian_max(s, 2, -1, m), SD_EINVAL);
  CHECK_INT(sd_hungarian_max(s, 4097, 1, m), SD_EINVAL);
  CHECK_INT(sd_hungarian_max(s, 1, 4097, m), SD_EINVAL);
  s[2] = NAN;
  CHECK_INT(sd_hungarian_max(s, 2, 2, m), SD_EINVAL);
  s[2] = INFINITY;
  CHECK_INT(sd_hungarian_max(s, 2, 2, m), SD_EINVAL);
  s[2] = 1e308;
  s[1] = -1e308;
  CHECK_INT(sd_hungarian_max(s, 2, 2, m), SD_EINVAL); /* spread overflows */
  /* Empty sides: nothing to match. */
  CHECK_INT(sd_hungarian_max(s, 3, 0, m), 0);
  CHECK(m[0] == -1 && m[1] == -1 && m[2] == -1);
  CHECK_INT(sd_hungarian_max(NULL, 0, 3, NULL), 0);
}

/* ---- contingency and agreement ---- */

static void test_contingency(void) {
  const int32_t a[] = {0, 0, 1, 2, -1, 1, 2};
  const int32_t b[] = {1, 1, 0, 1, 0, -3, 0};
  int64_t t[6];
  CHECK_INT(sd_contingency(a, 3, b, 2, 7, t), 0);
  const int64_t want[6] = {0, 2, 1, 0, 1, 1};
  CHECK(memcmp(t, want, sizeof want) == 0);
  CHECK_INT(sd_contingency(a, 2, b, 2, 7, t), SD_EINVAL); /* a[3] = 2 */
  CHECK_INT(sd_contingency(a, 3, b, 0, 7, t), SD_EINVAL);
  CHECK_INT(sd_contingency(NULL, 3, b, 2, 7, t), SD_EINVAL);
  CHECK_INT(sd_contingency(a, 3, b, 2, 7, NULL), SD_EINVAL);
}

static void check_agreement(const int32_t *p, int np, const int32_t *t,
                            int nt, size_t n, double nmi, double ari,
                            double acc, size_t counted) {
  sd_agreement g;
  CHECK_INT(sd_agreement_compute(p, np, t, nt, n, &g), 0);
  CHECK_INT(g.n, counted);
  CHECK_NEAR(g.nmi, nmi, 1e-12);
  CHECK_NEAR(g.ari, ari, 1e-12);
  CHECK_NEAR(g.accuracy, acc, 1e-12);
}

static void test_agreement_known(void) {
  enum { N = 300 };
  int32_t t[N], p[N], perm[6] = {3, 5, 0, 1, 4, 2};
  for (int i = 0; i < N; i++) {
    t[i] = td_below(6);
    p[i] = perm[t[i]];
  }
  check_agreement(t, 6, t, 6, N, 1.0, 1.0, 1.0, N);
  check_agreement(p, 6, t, 6, N, 1.0, 1.0, 1.0, N);
  check_agreement(p, 9, t, 7, N, 1.0, 1.0, 1.0, N); /* unused labels */

  /* sklearn 1.2: normalized_mutual_info_score(t, p), adjusted_rand_score */
  const int32_t t1[] = {0, 0, 0, 1, 1, 1, 2, 2, 2, 2};
  const int32_t p1[] = {0, 0, 1, 1, 1, 2, 2, 2, 0, 2};
  check_agreement(p1, 3, t1, 3, 10, 0.44270128334605, 0.20454545454545456,
                  0.7, 10);
  const int32_t t2[] = {0, 0, 1, 1, 2, 2, 2, 3};
  const int32_t p2[] = {1, 1, 1, 0, 0, 0, 4, 4};
  check_agreement(p2, 5, t2, 4, 8, 0.5577965290899926, 0.15789473684210525,
                  0.625, 8);

  /* Negative labels on either side are skipped. */
  const int32_t t3[] = {0, 0, 0, 1, 1, -1, 1, 2, 2, 2, 2, 1, 1};
  const int32_t p3[] = {0, 0, 1, -1, 1, 2, 1, 2, 2, 2, 0, -5, 2};
  check_agreement(p3, 3, t3, 3, 13, 0.44270128334605, 0.20454545454545456,
                  0.7, 10);
}

static void test_agreement_degenerate(void) {
  const int32_t zero[] = {0, 0, 0, 0}, many[] = {0, 1, 2, 3};
  const int32_t a[] = {0, 0, 1, 1}, b[] = {0, 1, 0, 1};
  check_agreement(zero, 1, zero, 1, 4, 1.0, 1.0, 1.0, 4);
  check_agreement(many, 4, zero, 1, 4, 0.0, 0.0, 0.25, 4);
  check_agreement(many, 4, many, 4, 4, 1.0, 1.0, 1.0, 4);
  check_agreement(a, 2, b, 2, 4, 0.0, -0.5, 0.5, 4); /* sklearn: -0.5 */
  check_agreement(NULL, 2, NULL, 2, 0, 1.0, 1.0, 1.0, 0);
  const int32_t neg[] = {-1, -1};
  check_agreement(neg, 2, a, 2, 2, 1.0, 1.0, 1.0, 0);
}

static void test_agreement_random(void) {
  enum { N = 20000 };
  static int32_t t[N], p[N];
  sd_agreement g;
  for (int i = 0; i < N; i++) {
    t[i] = td_below(10);
    p[i] = td_below(12);
  }
  CHECK_INT(sd_agreement_compute(p, 12, t, 10, N, &g), 0);
  CHECK(fabs(g.ari) < 0.005);
  CHECK(g.nmi >= 0.0 && g.nmi < 0.01);
  /* 10 matched cells of about N / 120 each, a little more by choice. */
  CHECK(g.accuracy > 10.0 / 120.0 && g.accuracy < 0.11);
}

static void test_agreement_invalid(void) {
  const int32_t a[] = {0, 1, 2}, b[] = {0, 0, 1};
  sd_agreement g;
  g.n = 99;
  CHECK_INT(sd_agreement_compute(a, 2, b, 2, 3, &g), SD_EINVAL);
  CHECK_INT(g.n, 0);
  CHECK_INT(sd_agreement_compute(a, 3, b, 0, 3, &g), SD_EINVAL);
  CHECK_INT(sd_agreement_compute(NULL, 3, b, 2, 3, &g), SD_EINVAL);
  CHECK_INT(sd_agreement_compute(a, 3, b, 2, 3, NULL), SD_EINVAL);
  CHECK_INT(sd_agreement_compute(a, 3, b, (1 << 20) + 1, 3, &g), SD_EINVAL);
}

/* ---- silhouette and Davies-Bouldin ---- */

/* 12 points in 3-D: four groups, the last a single point. */
static const float fixed_x[12][3] = {
    {0.0f, 0.1f, 0.2f},  {0.3f, -0.2f, 0.1f},  {-0.1f, 0.0f, 0.4f},
    {0.2f, 0.2f, 0.0f},  {2.0f, 1.9f, 2.2f},   {2.3f, 2.1f, 1.8f},
    {1.7f, 2.0f, 2.1f},  {0.9f, -1.5f, 1.0f},  {1.4f, -1.1f, 0.6f},
    {1.0f, -1.0f, 1.2f}, {0.5f, -1.2f, 0.8f},  {5.0f, 5.0f, -3.0f}};
static const int32_t fixed_lab[12] = {0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 3};
static const int32_t fixed_lab2[12] = {0, 0, 1, 0, 1, 1, 2, 2, 2, 0, 2, 3};

/* The rows of fixed_x scaled to unit length (float32). */
static const float fixed_unit[12][3] = {
    {0.0f, 0.44721359f, 0.89442718f},
    {0.801783741f, -0.534522474f, 0.267261237f},
    {-0.242535621f, 0.0f, 0.970142484f},
    {0.707106769f, 0.707106769f, 0.0f},
    {0.566820204f, 0.538479209f, 0.623502254f},
    {0.639382422f, 0.583783925f, 0.500386238f},
    {0.505719543f, 0.594964147f, 0.624712288f},
    {0.446662486f, -0.744437516f, 0.496291667f},
    {0.745144784f, -0.585470915f, 0.319347799f},
    {0.539163828f, -0.539163828f, 0.646996677f},
    {0.327560872f, -0.786146164f, 0.524097443f},
    {0.650944531f, 0.650944531f, -0.390566736f}};

/* Cluster means of fixed_x under fixed_lab and fixed_lab2 (float32). */
static const float fixed_means[4][3] = {
    {0.100000009f, 0.0250000004f, 0.175000012f},
    {2.0f, 2.0f, 2.0333333f},
    {0.949999988f, -1.20000005f, 0.900000036f},
    {5.0f, 5.0f, -3.0f}};
static const float fixed_means2[4][3] = {
    {0.375f, -0.224999994f, 0.375f},
    {1.39999998f, 1.33333337f, 1.4666667f},
    {1.125f, -0.450000018f, 1.125f},
    {5.0f, 5.0f, -3.0f}};

static void test_silhouette_sklearn(void) {
  double s = 0.0;
  const float *x = &fixed_x[0][0];
  /* sklearn 1.2 silhouette_score(X, labels) */
  CHECK_INT(sd_silhouette(x, 12, 3, fixed_lab, 4, 0, 100, 1, &s), 0);
  CHECK_NEAR(s, 0.6600663192439186, 1e-5);
  CHECK_INT(sd_silhouette(x, 12, 3, fixed_lab2, 4, 0, 12, 1, &s), 0);
  CHECK_NEAR(s, 0.028857509192819684, 1e-5);
  /* silhouette_score(X_unit, labels, metric="cosine") */
  CHECK_INT(sd_silhouette(&fixed_unit[0][0], 12, 3, fixed_lab, 4, 1, 12, 1,
                          &s),
            0);
  CHECK_NEAR(s, 0.32296887216851616, 1e-5);
  /* Unlabeled rows, even NaN ones, and unused clusters change nothing. */
  float xx[15][3];
  int32_t lab[15];
  memcpy(xx, fixed_x, sizeof fixed_x);
  memcpy(lab, fixed_lab, sizeof fixed_lab);
  for (int i = 12; i < 15; i++) {
    for (int e = 0; e < 3; e++) xx[i][e] = 1000.0f * (float)(i - e);
    lab[i] = -1;
  }
  xx[13][1] = NAN;
  lab[5] = lab[5] + 4; /* cluster 1 becomes 5; 1, 4 stay empty */
  lab[4] = lab[6] = 5;
  CHECK_INT(sd_silhouette(&xx[0][0], 15, 3, lab, 7, 0, 100, 1, &s), 0);
  CHECK_NEAR(s, 0.6600663192439186, 1e-5);
}

/* Two tight blobs far apart: silhouette near 1; sampling is seeded. */
static void test_silhouette_blobs(void) {
  enum { N = 1500, D = 16 };
  float *x = malloc(sizeof(float) * N * D);
  int32_t lab[N];
  double full = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  if (!x) abort();
  for (int i = 0; i < N; i++) {
    lab[i] = i % 2;
    for (int e = 0; e < D; e++)
      x[i * D + e] = (float)((lab[i] ? 20.0 : -20.0) + 0.5 * td_normal());
  }
  CHECK_INT(sd_silhouette(x, N, D, lab, 2, 0, N, 0, &full), 0);
  CHECK(full > 0.9 && full <= 1.0);
  CHECK_INT(sd_silhouette(x, N, D, lab, 2, 0, 200, 42, &s1), 0);
  CHECK_INT(sd_silhouette(x, N, D, lab, 2, 0, 200, 42, &s2), 0);
  CHECK_INT(sd_silhouette(x, N, D, lab, 2, 0, 200, 43, &s3), 0);
  CHECK(s1 == s2);
  CHECK(s1 != s3);
  CHECK_NEAR(s1, full, 0.01);
  CHECK_NEAR(s3, full, 0.01);
  free(x);
}

static void test_silhouette_invalid(void) {
  const float *x = &fixed_x[0][0];
  int32_t lab[12];
  double s;
  memcpy(lab, fixed_lab, sizeof lab);
  CHECK_INT(sd_silhouette(NULL, 12, 3, lab, 4, 0, 10, 1, &s), SD_EINVAL);
  CHECK_INT(sd_silhouette(x, 12, 3, NULL, 4, 0, 10, 1, &s), SD_EINVAL);
  CHECK_INT(sd_silhouette(x, 12, 3, lab, 4, 0, 10, 1, NULL), SD_EINVAL);
  CHECK_INT(sd_silhouette(x, 0, 3, lab, 4, 0, 10, 1, &s), SD_EINVAL);
  CHECK_INT(sd_silhouette(x, 12, 0, lab, 4, 0, 10, 1, &s), SD_EINVAL);
  CHECK_INT(sd_silhouette(x, 12, 3, lab, 3, 0, 10, 1, &s), SD_EINVAL);
  CHECK_INT(sd_silhouette(x, 12, 3, lab, 0, 0, 10, 1, &s), SD_EINVAL);
  CHECK_INT(sd_silhouette(x, 12, 3, lab, 4, 0, 0, 1, &s), SD_EINVAL);
  CHECK_INT(sd_silhouette(x, SIZE_MAX / 4, 3, lab, 4, 0, 10, 1, &s),
            SD_EINVAL);
  for (int i = 0; i < 12; i++) lab[i] = i < 3 ? 2 : -1; /* one cluster */
  CHECK_INT(sd_silhouette(x, 12, 3, lab, 4, 0, 10, 1, &s), SD_EINVAL);
  float bad[12][3];
  memcpy(bad, fixed_x, sizeof bad);
  bad[7][2] = INFINITY;
  CHECK_INT(sd_silhouette(&bad[0][0], 12, 3, fixed_lab, 4, 0, 10, 1, &s),
            SD_EINVAL);
}

static void test_davies_bouldin(void) {
  double v = -1.0;
  const float *x = &fixed_x[0][0];
  /* sklearn 1.2 davies_bouldin_score(X, labels) */
  CHECK_INT(sd_davies_bouldin(x, 12, 3, fixed_lab, &fixed_means[0][0], 4, &v),
            0);
  CHECK_NEAR(v, 0.26716143048741464, 1e-6);
  CHECK_INT(sd_davies_bouldin(x, 12, 3, fixed_lab2, &fixed_means2[0][0], 4,
                              &v),
            0);
  CHECK_NEAR(v, 1.4258359740603832, 1e-6);
  /* Skipped rows and an empty cluster (its centroid is ignored). */
  float xx[13][3], cc[5][3];
  int32_t lab[13];
  memcpy(xx, fixed_x, sizeof fixed_x);
  memcpy(cc, fixed_means, sizeof fixed_means);
  memcpy(lab, fixed_lab, sizeof fixed_lab);
  xx[12][0] = xx[12][1] = xx[12][2] = 50.0f;
  lab[12] = -1;
  cc[4][0] = cc[4][1] = cc[4][2] = NAN;
  CHECK_INT(sd_davies_bouldin(&xx[0][0], 13, 3, lab, &cc[0][0], 5, &v), 0);
  CHECK_NEAR(v, 0.26716143048741464, 1e-6);
  /* Every point on its centroid: 0, as sklearn. */
  const int32_t l2[4] = {0, 0, 1, 1};
  const float p2[4][2] = {{1, 1}, {1, 1}, {3, 3}, {3, 3}};
  const float c2[2][2] = {{1, 1}, {3, 3}};
  CHECK_INT(sd_davies_bouldin(&p2[0][0], 4, 2, l2, &c2[0][0], 2, &v), 0);
  CHECK(v == 0.0);
  /* Invalid. */
  CHECK_INT(sd_davies_bouldin(x, 12, 3, fixed_lab, NULL, 4, &v), SD_EINVAL);
  CHECK_INT(sd_davies_bouldin(x, 12, 3, fixed_lab, &fixed_means[0][0], 3, &v),
            SD_EINVAL);
  CHECK_INT(sd_davies_bouldin(x, 12, 3, fixed_lab, &fixed_means[0][0], 4,
                              NULL),
            SD_EINVAL);
  const int32_t one[12] = {0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1};
  CHECK_INT(sd_davies_bouldin(x, 12, 3, one, &fixed_means[0][0], 4, &v),
            SD_EINVAL);
}

int main(void) {
  td_seed(777);
  test_hungarian_brute();
  test_hungarian_planted();
  test_hungarian_invalid();
  test_contingency();
  test_agreement_known();
  test_agreement_degenerate();
  test_agreement_random();
  test_agreement_invalid();
  test_silhouette_sklearn();
  test_silhouette_blobs();
  test_silhouette_invalid();
  test_davies_bouldin();
  return check_done("test_cluster_eval");
}
