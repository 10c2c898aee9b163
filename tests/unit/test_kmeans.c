/*
 * test_kmeans.c -- batch k-means (cluster_kmeans.c): planted blobs are
 * recovered exactly (Euclidean and spherical), results are deterministic,
 * edge cases k == 1 and k == n, bad arguments, and sd_kmeans_assign and the
 * reported inertia against brute-force recomputations.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "testdata.h"
#include "segmentd/cluster_kmeans.h"
#include "segmentd/err.h"

/* ---- deterministic test data ---- */

/*
 * n points around `blobs` centres (label i % blobs): centres uniform in
 * [-spread, spread]^dim, unit Gaussian noise times sigma; with `unit` the
 * centres and points are L2-normalised (planted directions).
 */
static float *make_blobs(size_t n, int dim, int blobs, double spread,
                         double sigma, int unit, int32_t *truth) {
  float *c = malloc((size_t)blobs * dim * sizeof(float));
  float *x = malloc(n * dim * sizeof(float));
  if (!c || !x) abort();
  for (int b = 0; b < blobs; b++) {
    for (int e = 0; e < dim; e++)
      c[(size_t)b * dim + e] =
          (float)(unit ? td_normal() : spread * (2.0 * td_unit() - 1.0));
    if (unit) td_normalise(c + (size_t)b * dim, dim);
  }
  for (size_t i = 0; i < n; i++) {
    int b = (int)(i % (size_t)blobs);
    float *xi = x + i * dim;
    for (int e = 0; e < dim; e++)
      xi[e] = c[(size_t)b * dim + e] + (float)(sigma * td_normal());
    if (unit) td_normalise(xi, dim);
    truth[i] = b;
  }
  free(c);
  return x;
}

/* ---- brute-force references ---- */

static double sqdist(const float *a, const float *b, int dim) {
  double s = 0.0;
  for (int e = 0; e < dim; e++) {
    double d = (double)a[e] - b[e];
    s += d * d;
  }
  return s;
}

static double dot(const float *a, const float *b, int dim) {
  double s = 0.0;
  for (int e = 0; e < dim; e++) s += (double)a[e] * b[e];
  return s;
}

/* Distance the fit minimises: squared Euclidean, or 1 - cos. */
static double kdist(const float *a, const float *b, int dim, int spherical) {
  return spherical ? 1.0 - dot(a, b, dim) : sqdist(a, b, dim);
}

static double brute_inertia(const float *x, size_t n, int dim,
                            const sd_kmeans_result *r, int spherical) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++)
    s += kdist(x + i * dim, r->centroids + (size_t)r->assign[i] * dim, dim,
               spherical);
  return s;
}

/* 1 if found labels are the planted ones up to a renaming (ARI == 1). */
static int same_partition(const int32_t *found, const int32_t *truth,
                          size_t n, int k) {
  int32_t map[64], back[64];
  for (int j = 0; j < k; j++) map[j] = back[j] = -1;
  for (size_t i = 0; i < n; i++) {
    int32_t t = truth[i], f = found[i];
    if (f < 0 || f >= k) return 0;
    if (map[t] < 0 && back[f] < 0) {
      map[t] = f;
      back[f] = t;
    }
    if (map[t] != f || back[f] != t) return 0;
  }
  return 1;
}

/* Every label is the nearest centroid (up to float ties). */
static int labels_nearest(const float *x, size_t n, int dim,
                          const sd_kmeans_result *r, int spherical) {
  for (size_t i = 0; i < n; i++) {
    double own = kdist(x + i * dim, r->centroids + (size_t)r->assign[i] * dim,
                       dim, spherical);
    for (int j = 0; j < r->k; j++)
      if (kdist(x + i * dim, r->centroids + (size_t)j * dim, dim, spherical) <
          own - 1e-4 * (1.0 + own))
        return 0;
  }
  return 1;
}

/* ---- tests ---- */

static void test_blobs_euclidean(void) {
  size_t n = 2000;
  int dim = 16, k = 8;
  int32_t *truth = malloc(n * sizeof(int32_t));
  float *x = make_blobs(n, dim, k, 10.0, 1.0, 0, truth);
  sd_kmeans_opts o = sd_kmeans_defaults(k);
  sd_kmeans_result r;
  o.seed = 7;
  CHECK_INT(sd_kmeans_fit(x, n, dim, &o, &r), 0);
  CHECK_INT(r.k, k);
  CHECK_INT(r.dim, dim);
  CHECK(same_partition(r.assign, truth, n, k));
  CHECK(labels_nearest(x, n, dim, &r, 0));
  CHECK(r.iters >= 1 && r.iters <= o.max_iter);
  double bf = brute_inertia(x, n, dim, &r, 0);
  CHECK_NEAR(r.inertia, bf, 1e-4 * bf);
  /* unit noise in 16-D: about 16 per point around the true centres */
  CHECK(r.inertia / (double)n > 12.0 && r.inertia / (double)n < 20.0);
  sd_kmeans_result_free(&r);
  CHECK(r.centroids == NULL && r.assign == NULL);
  free(x);
  free(truth);
}

static void test_blobs_spherical(void) {
  size_t n = 1200;
  int dim = 32, k = 6;
  int32_t *truth = malloc(n * sizeof(int32_t));
  float *x = make_blobs(n, dim, k, 0.0, 0.05, 1, truth);
  sd_kmeans_opts o = sd_kmeans_defaults(k);
  sd_kmeans_result r;
  o.spherical = 1;
  o.seed = 3;
  CHECK_INT(sd_kmeans_fit(x, n, dim, &o, &r), 0);
  CHECK(same_partition(r.assign, truth, n, k));
  CHECK(labels_nearest(x, n, dim, &r, 1));
  for (int j = 0; j < k; j++)
    CHECK_NEAR(dot(r.centroids + j * dim, r.centroids + j * dim, dim), 1.0,
               1e-5);
  double bf = brute_inertia(x, n, dim, &r, 1);
  CHECK_NEAR(r.inertia, bf, 1e-3 + 1e-4 * bf);
  CHECK(r.inertia > 0.0 && r.inertia / (double)n < 0.1);
  sd_kmeans_result_free(&r);
  free(x);
  free(truth);
}

static void test_deterministic(void) {
  size_t n = 600;
  int dim = 10, k = 12; /* overlapping blobs: many local optima */
  int32_t *truth = malloc(n * sizeof(int32_t));
  float *x = make_blobs(n, dim, 20, 3.0, 1.0, 0, truth);
  sd_kmeans_opts o = sd_kmeans_defaults(k);
  sd_kmeans_result a, b;
  o.seed = 42;
  CHECK_INT(sd_kmeans_fit(x, n, dim, &o, &a), 0);
  CHECK_INT(sd_kmeans_fit(x, n, dim, &o, &b), 0);
  CHECK(memcmp(a.assign, b.assign, n * sizeof(int32_t)) == 0);
  CHECK(memcmp(a.centroids, b.centroids, (size_t)k * dim * sizeof(float)) ==
        0);
  CHECK(a.inertia == b.inertia);
  CHECK_INT(a.iters, b.iters);
  double bf = brute_inertia(x, n, dim, &a, 0);
  CHECK_NEAR(a.inertia, bf, 1e-4 * bf);
  CHECK(labels_nearest(x, n, dim, &a, 0));
  /* more restarts never do worse than the first of them */
  sd_kmeans_result one;
  o.restarts = 1;
  CHECK_INT(sd_kmeans_fit(x, n, dim, &o, &one), 0);
  CHECK(a.inertia <= one.inertia);
  sd_kmeans_result_free(&one);
  sd_kmeans_result_free(&a);
  sd_kmeans_result_free(&b);
  free(x);
  free(truth);
}

/*
 * Lloyd's update step: with the same seed, the centroids after t + 1
 * iterations are the means of the clusters labelled after t iterations.
 */
static void test_update_is_mean(void) {
  size_t n = 800;
  int dim = 6, k = 10;
  int32_t *truth = malloc(n * sizeof(int32_t));
  float *x = make_blobs(n, dim, 15, 2.0, 1.0, 0, truth);
  double *mean = malloc((size_t)k * dim * sizeof(double));
  size_t cnt[10];
  for (int t = 0; t < 4; t++) {
    sd_kmeans_opts o = sd_kmeans_defaults(k);
    sd_kmeans_result a, b;
    o.restarts = 1, o.tol = 0.0f, o.seed = 5, o.max_iter = t;
    CHECK_INT(sd_kmeans_fit(x, n, dim, &o, &a), 0);
    o.max_iter = t + 1;
    CHECK_INT(sd_kmeans_fit(x, n, dim, &o, &b), 0);
    memset(mean, 0, (size_t)k * dim * sizeof(double));
    memset(cnt, 0, sizeof cnt);
    for (size_t i = 0; i < n; i++) {
      cnt[a.assign[i]]++;
      for (int e = 0; e < dim; e++)
        mean[a.assign[i] * dim + e] += x[i * dim + e];
    }
    double err = 0.0;
    for (int j = 0; j < k; j++)
      for (int e = 0; e < dim && cnt[j] > 0; e++)
        err = fmax(err, fabs(mean[j * dim + e] / (double)cnt[j] -
                             b.centroids[j * dim + e]));
    for (int j = 0; j < k; j++) CHECK(cnt[j] > 0);
    CHECK(err < 1e-4);
    CHECK(b.inertia <= a.inertia * (1.0 + 1e-6)); /* Lloyd never goes up */
    sd_kmeans_result_free(&a);
    sd_kmeans_result_free(&b);
  }
  free(mean);
  free(x);
  free(truth);
}

static void test_k_equals_n(void) {
  size_t n = 40;
  int dim = 5, k = 40, seen[40] = {0};
  int32_t truth[40];
  float *x = make_blobs(n, dim, 40, 5.0, 0.0, 0, truth);
  sd_kmeans_opts o = sd_kmeans_defaults(k);
  sd_kmeans_result r;
  CHECK_INT(sd_kmeans_fit(x, n, dim, &o, &r), 0);
  for (size_t i = 0; i < n; i++) {
    CHECK(r.assign[i] >= 0 && r.assign[i] < k);
    if (r.assign[i] >= 0 && r.assign[i] < k) seen[r.assign[i]]++;
  }
  for (int j = 0; j < k; j++) CHECK_INT(seen[j], 1);
  CHECK_NEAR(r.inertia, 0.0, 1e-3);
  CHECK_NEAR(brute_inertia(x, n, dim, &r, 0), 0.0, 1e-6);
  sd_kmeans_result_free(&r);
  free(x);
}

static void test_k_one(void) {
  size_t n = 300;
  int dim = 7;
  int32_t truth[300];
  float *x = make_blobs(n, dim, 3, 4.0, 1.0, 0, truth);
  double mean[7] = {0}, ss = 0.0;
  for (size_t i = 0; i < n; i++)
    for (int e = 0; e < dim; e++) mean[e] += x[i * dim + e] / (double)n;
  for (size_t i = 0; i < n; i++)
    for (int e = 0; e < dim; e++)
      ss += (x[i * dim + e] - mean[e]) * (x[i * dim + e] - mean[e]);
  sd_kmeans_opts o = sd_kmeans_defaults(1);
  sd_kmeans_result r;
  CHECK_INT(sd_kmeans_fit(x, n, dim, &o, &r), 0);
  for (int e = 0; e < dim; e++) CHECK_NEAR(r.centroids[e], mean[e], 1e-4);
  for (size_t i = 0; i < n; i++) CHECK_INT(r.assign[i], 0);
  CHECK_NEAR(r.inertia, ss, 1e-4 * ss);
  sd_kmeans_result_free(&r);
  free(x);
}

/* Duplicated points make tied seeds and empty clusters along the way. */
static void test_duplicates(void) {
  float x[12 * 2];
  int32_t *lab;
  for (int i = 0; i < 12; i++) {
    x[2 * i] = (float)(i % 3);
    x[2 * i + 1] = (float)(i % 3 == 2 ? 5 : 0);
  }
  sd_kmeans_opts o = sd_kmeans_defaults(6);
  sd_kmeans_result r;
  o.tol = 0.0f;
  o.max_iter = 5;
  CHECK_INT(sd_kmeans_fit(x, 12, 2, &o, &r), 0);
  lab = r.assign;
  for (int i = 0; i < 12; i++) CHECK(lab[i] >= 0 && lab[i] < 6);
  for (int j = 0; j < 6; j++) { /* every centre sits on one of the points */
    const float *cj = r.centroids + 2 * j;
    CHECK(isfinite(cj[0]) && isfinite(cj[1]));
    CHECK(sqdist(cj, x, 2) < 1e-9 || sqdist(cj, x + 2, 2) < 1e-9 ||
          sqdist(cj, x + 4, 2) < 1e-9);
  }
  CHECK_NEAR(r.inertia, 0.0, 1e-5);
  CHECK_INT(r.iters, 5);
  sd_kmeans_result_free(&r);
}

static void test_invalid(void) {
  float x[8] = {0, 1, 2, 3, 4, 5, 6, 7}, c[4] = {0, 1, 2, 3}, bs[4];
  int32_t b[4];
  sd_kmeans_opts o = sd_kmeans_defaults(2), bad;
  sd_kmeans_result r;
  CHECK_INT(sd_kmeans_fit(NULL, 4, 2, &o, &r), SD_EINVAL);
  CHECK(r.centroids == NULL && r.assign == NULL);
  sd_kmeans_result_free(&r); /* zeroed on failure: safe */
  sd_kmeans_result_free(NULL);
  CHECK_INT(sd_kmeans_fit(x, 4, 2, NULL, &r), SD_EINVAL);
  CHECK_INT(sd_kmeans_fit(x, 4, 2, &o, NULL), SD_EINVAL);
  CHECK_INT(sd_kmeans_fit(x, 0, 2, &o, &r), SD_EINVAL);
  CHECK_INT(sd_kmeans_fit(x, 4, 0, &o, &r), SD_EINVAL);
  CHECK_INT(sd_kmeans_fit(x, 4, -3, &o, &r), SD_EINVAL);
  CHECK_INT(sd_kmeans_fit(x, SIZE_MAX / 4, 2, &o, &r), SD_EINVAL);
  bad = o, bad.k = 0;
  CHECK_INT(sd_kmeans_fit(x, 4, 2, &bad, &r), SD_EINVAL);
  bad = o, bad.k = 5;
  CHECK_INT(sd_kmeans_fit(x, 4, 2, &bad, &r), SD_EINVAL);
  bad = o, bad.restarts = 0;
  CHECK_INT(sd_kmeans_fit(x, 4, 2, &bad, &r), SD_EINVAL);
  bad = o, bad.max_iter = -1;
  CHECK_INT(sd_kmeans_fit(x, 4, 2, &bad, &r), SD_EINVAL);
  bad = o, bad.tol = -1.0f;
  CHECK_INT(sd_kmeans_fit(x, 4, 2, &bad, &r), SD_EINVAL);
  bad = o, bad.tol = NAN;
  CHECK_INT(sd_kmeans_fit(x, 4, 2, &bad, &r), SD_EINVAL);
  x[5] = NAN;
  CHECK_INT(sd_kmeans_fit(x, 4, 2, &o, &r), SD_EINVAL);
  CHECK_INT(sd_kmeans_assign(x, 4, c, 2, 2, 0, b, bs, NULL, NULL), SD_EINVAL);
  x[5] = 5.0f;
  CHECK_INT(sd_kmeans_assign(x, 4, NULL, 2, 2, 0, b, bs, NULL, NULL),
            SD_EINVAL);
  CHECK_INT(sd_kmeans_assign(NULL, 4, c, 2, 2, 0, b, bs, NULL, NULL),
            SD_EINVAL);
  CHECK_INT(sd_kmeans_assign(x, 4, c, 0, 2, 0, b, bs, NULL, NULL), SD_EINVAL);
  CHECK_INT(sd_kmeans_assign(x, 4, c, 2, 0, 0, b, bs, NULL, NULL), SD_EINVAL);
  CHECK_INT(sd_kmeans_assign(x, 4, c, 2, 2, 0, NULL, bs, NULL, NULL),
            SD_EINVAL);
  CHECK_INT(sd_kmeans_assign(x, 0, c, 2, 2, 0, b, bs, NULL, NULL), 0);
  c[1] = INFINITY;
  CHECK_INT(sd_kmeans_assign(x, 4, c, 2, 2, 0, b, bs, NULL, NULL), SD_EINVAL);
}

/* sd_kmeans_assign against a brute-force loop; n spans several blocks. */
static void check_assign(int spherical) {
  size_t n = 5000;
  int dim = 24, k = 37;
  int32_t *truth = malloc(n * sizeof(int32_t));
  int32_t *b1 = malloc(n * sizeof(int32_t)), *b2 = malloc(n * sizeof(int32_t));
  float *s1 = malloc(n * sizeof(float)), *s2 = malloc(n * sizeof(float));
  float *x = make_blobs(n, dim, 50, 1.0, 0.5, spherical, truth);
  float *c = make_blobs((size_t)k, dim, k, 1.0, 0.5, spherical, truth);
  int bad_idx = 0, bad_sim = 0;
  CHECK_INT(sd_kmeans_assign(x, n, c, k, dim, spherical, b1, s1, b2, s2), 0);
  for (size_t i = 0; i < n; i++) {
    double sim[37], best = -INFINITY, second = -INFINITY;
    for (int j = 0; j < k; j++) {
      sim[j] = -kdist(x + i * dim, c + (size_t)j * dim, dim, spherical);
      if (spherical) sim[j] += 1.0; /* cosine */
      if (sim[j] > best) {
        second = best;
        best = sim[j];
      } else if (sim[j] > second) {
        second = sim[j];
      }
    }
    double tol = 1e-4 * (1.0 + fabs(best));
    if (b1[i] < 0 || b1[i] >= k || b2[i] < 0 || b2[i] >= k || b1[i] == b2[i]) {
      bad_idx++;
      continue;
    }
    if (sim[b1[i]] < best - tol || sim[b2[i]] < second - tol) bad_idx++;
    if (fabs(s1[i] - best) > tol || fabs(s2[i] - second) > tol) bad_sim++;
  }
  CHECK_INT(bad_idx, 0);
  CHECK_INT(bad_sim, 0);
  /* best only, and k == 1: no runner-up */
  CHECK_INT(sd_kmeans_assign(x, n, c, k, dim, spherical, b2, s2, NULL, NULL),
            0);
  CHECK(memcmp(b1, b2, n * sizeof(int32_t)) == 0);
  CHECK_INT(sd_kmeans_assign(x, 3, c, 1, dim, spherical, b1, s1, b2, s2), 0);
  for (int i = 0; i < 3; i++) {
    CHECK_INT(b1[i], 0);
    CHECK_INT(b2[i], -1);
    CHECK(isinf(s2[i]) && s2[i] < 0);
  }
  free(x);
  free(c);
  free(truth);
  free(b1);
  free(b2);
  free(s1);
  free(s2);
}

/* max_iter 0 returns the seeds with consistent labels and inertia. */
static void test_seeds_only(void) {
  size_t n = 500;
  int dim = 6, k = 9;
  int32_t truth[500];
  float *x = make_blobs(n, dim, 9, 8.0, 1.0, 0, truth);
  sd_kmeans_opts o = sd_kmeans_defaults(k);
  sd_kmeans_result r;
  o.max_iter = 0;
  o.restarts = 2;
  CHECK_INT(sd_kmeans_fit(x, n, dim, &o, &r), 0);
  CHECK_INT(r.iters, 0);
  CHECK(labels_nearest(x, n, dim, &r, 0));
  double bf = brute_inertia(x, n, dim, &r, 0);
  CHECK_NEAR(r.inertia, bf, 1e-4 * bf);
  /* every seed is one of the points */
  for (int j = 0; j < k; j++) {
    int hit = 0;
    for (size_t i = 0; i < n && !hit; i++)
      hit = memcmp(x + i * dim, r.centroids + j * dim,
                   (size_t)dim * sizeof(float)) == 0;
    CHECK(hit);
  }
  sd_kmeans_result_free(&r);
  free(x);
}

/*
 * n > 256 rows per cluster: seeding runs on a sample of the rows, Lloyd on
 * all of them; the planted partition is still found, seeds are data rows.
 */
static void test_sampled_seeding(void) {
  size_t n = 3000;
  int dim = 8, k = 4;
  int32_t *truth = malloc(n * sizeof(int32_t));
  float *x = make_blobs(n, dim, k, 6.0, 1.0, 0, truth);
  sd_kmeans_opts o = sd_kmeans_defaults(k);
  sd_kmeans_result r;
  o.seed = 11;
  CHECK_INT(sd_kmeans_fit(x, n, dim, &o, &r), 0);
  CHECK(same_partition(r.assign, truth, n, k));
  CHECK(labels_nearest(x, n, dim, &r, 0));
  double bf = brute_inertia(x, n, dim, &r, 0);
  CHECK_NEAR(r.inertia, bf, 1e-4 * bf);
  sd_kmeans_result_free(&r);
  o.max_iter = 0;
  CHECK_INT(sd_kmeans_fit(x, n, dim, &o, &r), 0);
  for (int j = 0; j < k; j++) {
    int hit = 0;
    for (size_t i = 0; i < n && !hit; i++)
      hit = memcmp(x + i * dim, r.centroids + j * dim,
                   (size_t)dim * sizeof(float)) == 0;
    CHECK(hit);
  }
  sd_kmeans_result_free(&r);
  free(x);
  free(truth);
}

/*
 * Seeding quality: on 40 overlapping blobs the greedy k-means++ seeds alone
 * (no Lloyd) average below 8 per point; a single trial per centre (plain
 * k-means++) gives about 9.4 and keeping the worst trial about 17.
 */
static void test_seeding_quality(void) {
  size_t n = 4000;
  int dim = 4, k = 40;
  int32_t *truth = malloc(n * sizeof(int32_t));
  float *x = make_blobs(n, dim, k, 8.0, 1.0, 0, truth);
  double mean = 0.0;
  for (uint64_t seed = 1; seed <= 8; seed++) {
    sd_kmeans_opts o = sd_kmeans_defaults(k);
    sd_kmeans_result r;
    o.max_iter = 0;
    o.restarts = 1;
    o.seed = seed;
    CHECK_INT(sd_kmeans_fit(x, n, dim, &o, &r), 0);
    mean += r.inertia / (double)n / 8.0;
    sd_kmeans_result_free(&r);
  }
  fprintf(stderr, "seeding: mean inertia per point %.3f\n", mean);
  CHECK(mean < 8.0);
  free(x);
  free(truth);
}

/* One point at a time (the online path) answers as a block of points:
 * best, runner-up and their similarities, for k below and above 256. */
static void test_assign_one_matches_block(void) {
  for (int k = 3; k <= 300; k += 297) {
    const int n = 64, dim = 24;
    float *c = malloc(sizeof(float) * (size_t)k * dim);
    float *x = malloc(sizeof(float) * (size_t)n * dim);
    int32_t b[64], b2[64], ob, ob2;
    float s[64], s2[64], os, os2;
    for (int i = 0; i < k * dim; i++) c[i] = (float)td_normal();
    for (int i = 0; i < n * dim; i++) x[i] = (float)td_normal();
    for (int j = 0; j < k; j++) td_normalise(c + (size_t)j * dim, dim);
    for (int i = 0; i < n; i++) td_normalise(x + (size_t)i * dim, dim);
    CHECK_INT(sd_kmeans_assign(x, (size_t)n, c, k, dim, 1, b, s, b2, s2), 0);
    int same = 1;
    for (int i = 0; i < n; i++) {
      CHECK_INT(sd_kmeans_assign(x + (size_t)i * dim, 1, c, k, dim, 1, &ob, &os,
                                 &ob2, &os2), 0);
      same &= ob == b[i] && ob2 == b2[i] && fabsf(os - s[i]) < 1e-5f &&
              fabsf(os2 - s2[i]) < 1e-5f;
    }
    CHECK(same);
    free(c);
    free(x);
  }
}

int main(void) {
  test_assign_one_matches_block();
  td_seed(12345);
  test_blobs_euclidean();
  test_blobs_spherical();
  test_deterministic();
  test_update_is_mean();
  test_k_equals_n();
  test_k_one();
  test_duplicates();
  test_invalid();
  check_assign(0);
  check_assign(1);
  test_seeds_only();
  test_sampled_seeding();
  test_seeding_quality();
  return check_done("test_kmeans");
}
