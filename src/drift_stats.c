/*
 * drift_stats.c -- the statistics of drift detection (drift_stats.h).
 *
 * MMD test: the pooled points z = [x; y] (N = n + m rows, never copied)
 * get one N x N float matrix of which only the upper triangle (i < j) is
 * written and read. Three cblas_sgemm calls give the dot products of the
 * x-x, x-y and y-y blocks in place; each pair becomes a squared distance
 * |a|^2 + |b|^2 - 2 a.b (norms in double, tiny negatives from cancellation
 * clamped to 0), a strided sample of those gives the bandwidth, and the
 * same cells are then overwritten by the kernel. Kernel row sums r_i and
 * the total T over all pairs are kept in double.
 *
 * A labelling is scored through the smaller group G only (size s =
 * min(n, m)): with U = the kernel summed over pairs within G and
 * R = sum of r_i over G, the cross sum is C = R - 2U and the pairs within
 * the other group sum to T - U - C, so one permutation costs s^2 / 2
 * lookups plus O(N) to draw it, instead of a pass over all N^2 cells.
 * G's indices are kept increasing, so every lookup lands in the upper
 * triangle and walks each row forwards. A random labelling is a partial
 * Fisher-Yates shuffle (the first s slots of a permutation of 0..N-1,
 * which is a uniform s-subset whatever order the array is in), so the
 * array is not reset between permutations. The observed statistic goes
 * through the same code with G = the first or last s indices, so an
 * identical relabelling gives a bit-identical value.
 *
 * The unbiased estimator and the permutation p-value (1 + ties and
 * exceedances) / (1 + B) follow Gretton et al., JMLR 13 (2012), and Alibi
 * Detect's MMDDrift (its p-value omits the +1; with it the test is exact).
 *
 * PSI, the z-test and the normal tail are closed forms; the quantile is a
 * Hoare-partition quickselect with a median-of-three pivot.
 * No global state: every function may run concurrently on different data.
 */
#include "segmentd/drift_stats.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "segmentd/alloc.h"
#include "segmentd/err.h"
#include "segmentd/rng.h"

#define MMD_TIE_REL 1e-12 /* ties: relative to the mean kernel value */

/* ---- quantile ---- */

static void quant_swap(float *v, ptrdiff_t a, ptrdiff_t b) {
  float t = v[a];
  v[a] = v[b];
  v[b] = t;
}

/*
 * Moves the k-th smallest of v[0..n) (no NAN) to v[k], smaller ones before
 * it and larger ones after, and returns it. Every partition swaps at least
 * once (the pivot stops both scans), so the range shrinks each round; the
 * scans are also bounded, so nothing can run off the range.
 */
static float quant_select(float *v, ptrdiff_t n, ptrdiff_t k) {
  ptrdiff_t lo = 0, hi = n - 1;
  while (hi > lo) {
    ptrdiff_t mid = lo + (hi - lo) / 2, i = lo, j = hi;
    if (v[mid] < v[lo]) quant_swap(v, mid, lo);
    if (v[hi] < v[lo]) quant_swap(v, hi, lo);
    if (v[hi] < v[mid]) quant_swap(v, hi, mid);
    float p = v[mid];
    while (i <= j) {
      while (i < hi && v[i] < p) i++;
      while (j > lo && v[j] > p) j--;
      if (i <= j) quant_swap(v, i++, j--);
    }
    if (k <= j)
      hi = j;
    else if (k >= i)
      lo = i;
    else
      return v[k]; /* between the two parts: equal to the pivot */
  }
  return v[k];
}

float sd_quantile(float *v, size_t n, double q) {
  if (!v || n == 0 || n > (size_t)PTRDIFF_MAX || !(q >= 0.0 && q <= 1.0))
    return NAN;
  for (size_t i = 0; i < n; i++)
    if (isnan(v[i])) return NAN;
  double h = q * (double)(n - 1);
  size_t lo = (size_t)h;
  if (lo > n - 1) lo = n - 1;
  double frac = h - (double)lo;
  float a = quant_select(v, (ptrdiff_t)n, (ptrdiff_t)lo);
  if (frac <= 0.0 || lo + 1 >= n) return a;
  float b = v[lo + 1]; /* the next order statistic: least of the rest */
  for (size_t i = lo + 2; i < n; i++) b = v[i] < b ? v[i] : b;
  return (float)((double)a + frac * ((double)b - (double)a));
}

/* ---- MMD two-sample test ---- */

typedef struct {
  const float *x, *y;  /* n x dim, m x dim, borrowed */
  int n, m, dim, N;    /* N = n + m pooled points: x first, then y */
  int s, small_is_x;   /* size of the smaller group, and which it is */
  float *k;            /* N x N, upper triangle: distances, then kernel */
  double *sq;          /* N: squared norms */
  double *rsum;        /* N: sum of k(i, j) over j != i */
  double total;        /* sum of k(i, j) over i < j */
  int *perm;           /* N: a permutation of 0..N-1 */
  int *idx;            /* s: the smaller group's indices, increasing */
  unsigned char *mask; /* N: scratch for sorting idx, all 0 between uses */
  float *sample;       /* distances sampled for the bandwidth */
} mmd_work;

static void mmd_free(mmd_work *w) {
  free(w->k);
  free(w->sq);
  free(w->rsum);
  free(w->perm);
  free(w->idx);
  free(w->mask);
  free(w->sample);
}

/* Argument checks before anything is read: 0, SD_EINVAL or SD_ETOOLARGE. */
static int mmd_check(const float *x, int n, const float *y, int m, int dim,
                     int permutations, const sd_mmd_result *out) {
  if (!x || !y || !out || n < 2 || m < 2 || dim < 1 || permutations < 0)
    return SD_EINVAL;
  if (n > SD_MMD_MAX_POINTS - m || dim > SD_MMD_MAX_DIM ||
      permutations > SD_MMD_MAX_PERMUTATIONS)
    return SD_ETOOLARGE;
  return 0;
}

/* Squared norms of the pooled rows; SD_EINVAL if one is not finite. */
static int mmd_norms(mmd_work *w) {
  size_t dim = (size_t)w->dim;
  for (int i = 0; i < w->N; i++) {
    const float *z = i < w->n ? w->x + (size_t)i * dim
                              : w->y + (size_t)(i - w->n) * dim;
    double nn = 0.0;
    for (size_t e = 0; e < dim; e++) nn += (double)z[e] * (double)z[e];
    if (!isfinite(nn)) return SD_EINVAL;
    w->sq[i] = nn;
  }
  return 0;
}

/*
 * Upper triangle of the pooled squared distances: the x-x, x-y and y-y
 * dot-product blocks by sgemm (the diagonal blocks come out whole; their
 * lower halves are never read), then |a|^2 + |b|^2 - 2 a.b, clamped at 0.
 * SD_EINVAL if a dot product overflowed.
 */
static int mmd_distances(mmd_work *w) {
  int n = w->n, m = w->m, d = w->dim, N = w->N;
  float *kxy = w->k + n, *kyy = w->k + (size_t)n * (size_t)N + (size_t)n;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, d, 1.0f, w->x,
              d, w->x, d, 0.0f, w->k, N);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m, d, 1.0f, w->x,
              d, w->y, d, 0.0f, kxy, N);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, d, 1.0f, w->y,
              d, w->y, d, 0.0f, kyy, N);
  for (int i = 0; i < N; i++) {
    float *row = w->k + (size_t)i * (size_t)N;
    for (int j = i + 1; j < N; j++) {
      double d2 = w->sq[i] + w->sq[j] - 2.0 * (double)row[j];
      if (!isfinite(d2)) return SD_EINVAL;
      row[j] = d2 > 0.0 ? (float)d2 : 0.0f;
    }
  }
  return 0;
}

/*
 * The median heuristic: sigma = sqrt(median / 2) over an evenly strided
 * sample of at most SD_MMD_MEDIAN_PAIRS pairs (all of them when they fit);
 * the median of the non-zero ones when that median is 0; 1 when all are 0.
 */
static double mmd_sigma(mmd_work *w) {
  size_t N = (size_t)w->N, pairs = N * (N - 1) / 2, got = 0, t = 0, next = 0;
  size_t stride = (pairs + SD_MMD_MEDIAN_PAIRS - 1) / SD_MMD_MEDIAN_PAIRS;
  for (size_t i = 0; i < N; i++) {
    const float *row = w->k + i * N;
    for (size_t j = i + 1; j < N; j++, t++) {
      if (t != next) continue;
      w->sample[got++] = row[j];
      next += stride;
    }
  }
  double med = sd_quantile(w->sample, got, 0.5);
  if (!(med > 0.0)) {
    size_t pos = 0;
    for (size_t i = 0; i < got; i++)
      if (w->sample[i] > 0.0f) w->sample[pos++] = w->sample[i];
    med = pos ? sd_quantile(w->sample, pos, 0.5) : 0.0;
  }
  return med > 0.0 ? sqrt(0.5 * med) : 1.0;
}

/* Distances to kernel values in place, with row sums and the total. */
static void mmd_kernel(mmd_work *w, double sigma) {
  size_t N = (size_t)w->N;
  float scale = (float)(-1.0 / (2.0 * sigma * sigma));
  memset(w->rsum, 0, N * sizeof(double));
  w->total = 0.0;
  for (size_t i = 0; i < N; i++) {
    float *row = w->k + i * N;
    double acc = 0.0;
    for (size_t j = i + 1; j < N; j++) {
      row[j] = expf(scale * row[j]);
      acc += (double)row[j];
      w->rsum[j] += (double)row[j];
    }
    w->rsum[i] += acc;
    w->total += acc;
  }
}

/*
 * Unbiased MMD^2 of the labelling whose smaller group is w->idx (s
 * increasing indices), from the within-group sum U, the cross sum
 * C = R - 2U and the other group's T - U - C (see the file comment).
 */
static double mmd_stat(const mmd_work *w) {
  size_t N = (size_t)w->N;
  double u = 0.0, r = 0.0;
  for (int a = 0; a < w->s; a++) {
    const float *row = w->k + (size_t)w->idx[a] * N;
    double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0; /* four add chains */
    int b = a + 1;
    for (; b + 3 < w->s; b += 4) {
      a0 += (double)row[w->idx[b]];
      a1 += (double)row[w->idx[b + 1]];
      a2 += (double)row[w->idx[b + 2]];
      a3 += (double)row[w->idx[b + 3]];
    }
    for (; b < w->s; b++) a0 += (double)row[w->idx[b]];
    u += (a0 + a1) + (a2 + a3);
    r += w->rsum[w->idx[a]];
  }
  double cross = r - 2.0 * u, other = w->total - u - cross;
  double ux = w->small_is_x ? u : other, uy = w->small_is_x ? other : u;
  double n = (double)w->n, m = (double)w->m;
  return 2.0 * ux / (n * (n - 1.0)) + 2.0 * uy / (m * (m - 1.0)) -
         2.0 * cross / (n * m);
}

/* A uniform random smaller group: partial Fisher-Yates, then sorted. */
static void mmd_relabel(mmd_work *w, sd_rng *rng) {
  int N = w->N, got = 0;
  for (int a = 0; a < w->s; a++) {
    int j = a + (int)sd_rng_below(rng, (size_t)(N - a));
    int t = w->perm[a];
    w->perm[a] = w->perm[j];
    w->perm[j] = t;
    w->mask[w->perm[a]] = 1;
  }
  for (int i = 0; i < N; i++) {
    if (!w->mask[i]) continue;
    w->idx[got++] = i;
    w->mask[i] = 0;
  }
}

/* Allocates the work buffers once N and s are set: 0 or SD_ENOMEM. */
static int mmd_alloc(mmd_work *w) {
  size_t N = (size_t)w->N, pairs = N * (N - 1) / 2;
  w->k = sd_malloc_n(N, N, sizeof(float));
  w->sq = sd_malloc_n(N, 1, sizeof(double));
  w->rsum = sd_malloc_n(N, 1, sizeof(double));
  w->perm = sd_malloc_n(N, 1, sizeof(int));
  w->idx = sd_malloc_n((size_t)w->s, 1, sizeof(int));
  w->mask = sd_calloc_n(N, 1, 1);
  w->sample = sd_malloc_n(pairs < SD_MMD_MEDIAN_PAIRS ? pairs
                                                      : SD_MMD_MEDIAN_PAIRS,
                          1, sizeof(float));
  if (!w->k || !w->sq || !w->rsum || !w->perm || !w->idx || !w->mask ||
      !w->sample)
    return SD_ENOMEM;
  for (int i = 0; i < w->N; i++) w->perm[i] = i;
  return 0;
}

/* Observed statistic, then the permutations: fills out. */
static void mmd_permute(mmd_work *w, int permutations, uint64_t seed,
                        sd_mmd_result *out) {
  sd_rng rng;
  int first = w->small_is_x ? 0 : w->n, hits = 0;
  for (int a = 0; a < w->s; a++) w->idx[a] = first + a;
  double obs = mmd_stat(w);
  double tol = MMD_TIE_REL * (w->total / ((double)w->N * (w->N - 1) / 2.0));
  sd_rng_init(&rng, seed);
  for (int b = 0; b < permutations; b++) {
    mmd_relabel(w, &rng);
    hits += mmd_stat(w) >= obs - tol;
  }
  out->mmd2 = obs;
  out->p_value = (1.0 + hits) / (1.0 + permutations);
  out->permutations = permutations;
}

int sd_mmd_test(const float *x, int n, const float *y, int m, int dim,
                int permutations, uint64_t seed, sd_mmd_result *out) {
  mmd_work w;
  int rc = mmd_check(x, n, y, m, dim, permutations, out);
  if (out) memset(out, 0, sizeof *out);
  if (rc) return rc;
  memset(&w, 0, sizeof w);
  w.x = x;
  w.y = y;
  w.n = n;
  w.m = m;
  w.dim = dim;
  w.N = n + m;
  w.small_is_x = n <= m;
  w.s = n <= m ? n : m;
  rc = mmd_alloc(&w);
  if (rc == 0) rc = mmd_norms(&w);
  if (rc == 0) rc = mmd_distances(&w);
  if (rc == 0) {
    double sigma = mmd_sigma(&w);
    mmd_kernel(&w, sigma);
    mmd_permute(&w, permutations, seed, out);
    out->sigma = sigma;
  }
  mmd_free(&w);
  return rc;
}

/* ---- population stability index ---- */

/* Sum of k counts, or NAN if one is negative or not finite. */
static double psi_total(const double *c, int k) {
  double t = 0.0;
  for (int i = 0; i < k; i++) {
    if (!(c[i] >= 0.0) || !isfinite(c[i])) return NAN;
    t += c[i];
  }
  return isfinite(t) ? t : NAN;
}

double sd_psi(const double *ref, const double *cur, int k, double eps) {
  if (!ref || !cur || k < 1 || !(eps >= 0.0 && eps < 1.0)) return NAN;
  double tr = psi_total(ref, k), tc = psi_total(cur, k), psi = 0.0;
  if (!(tr > 0.0) || !(tc > 0.0)) return NAN;
  for (int i = 0; i < k; i++) {
    double r = ref[i] / tr, c = cur[i] / tc;
    r = r > eps ? r : eps;
    c = c > eps ? c : eps;
    if (r != c) psi += (c - r) * log(c / r);
  }
  return psi;
}

/* ---- two-proportion z-test ---- */

double sd_two_prop_z(double x1, double n1, double x2, double n2) {
  if (!(n1 > 0.0) || !(n2 > 0.0) || !isfinite(n1) || !isfinite(n2))
    return 0.0;
  if (!(x1 >= 0.0) || !(x2 >= 0.0) || x1 > n1 || x2 > n2) return 0.0;
  double p = (x1 + x2) / (n1 + n2);
  double se = sqrt(p * (1.0 - p) * (1.0 / n1 + 1.0 / n2));
  if (!(se > 0.0) || !isfinite(se)) return 0.0;
  return (x1 / n1 - x2 / n2) / se;
}

double sd_normal_sf(double z) {
  return 0.5 * erfc(z * 0.70710678118654752440); /* z / sqrt(2) */
}

double sd_binom_sf(int x, int n, double p) {
  if (n < 0 || !(p >= 0 && p <= 1)) return NAN;
  if (x <= 0) return 1;
  if (x > n) return 0;
  if (p == 1) return 1;
  double term = pow(1 - p, n), sum = 0; /* P(X = 0) */
  for (int k = 0; k < n; k++) {
    if (k >= x) sum += term;
    term *= (double)(n - k) / (double)(k + 1) * (p / (1 - p));
  }
  return sum + term; /* + P(X = n) */
}
