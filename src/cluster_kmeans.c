/*
 * cluster_kmeans.c -- batch k-means on dense float32 rows.
 *
 * Seeding is greedy k-means++ (Arthur & Vassilvitskii 2007, in the variant of
 * scikit-learn): the first centre is a uniform row, each next one the best,
 * by resulting potential, of 2 + ln k candidates drawn by D^2 sampling. It
 * runs on a uniform sample of up to KMEANS_SEED_PER_K rows per cluster (all
 * rows when n is small), stored transposed so the thin candidate sgemm runs
 * fast; the Lloyd iterations that follow use every row. Several restarts
 * keep the lowest inertia.
 *
 * Every point-to-centre score goes through cblas_sgemm on blocks of rows, so
 * the score scratch stays near KMEANS_SCRATCH bytes whatever n is:
 *   Euclidean  ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2  (row norms once)
 *   spherical  1 - x.c                                   (unit rows)
 * Cluster sums (double) and counts are kept up to date by moving only the
 * rows whose label changed, so late iterations cost little beyond the sgemm.
 * An empty cluster takes the row farthest from its centroid (lowest index on
 * ties). Other memory: 12 bytes per row, and the seeding sample (at most
 * KMEANS_SEED_BYTES, or k rows).
 *
 * Randomness is a private xoshiro256** stream seeded by splitmix64: the same
 * seed, input and BLAS give the same result. No global state: calls on
 * different data may run in parallel.
 */
#include "segmentd/cluster_kmeans.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "segmentd/alloc.h"
#include "segmentd/err.h"
#include "segmentd/rng.h"

#define KMEANS_XBLOCK (1u << 19)  /* bytes of x per sgemm block (L2-sized) */
#define KMEANS_SCRATCH (1u << 20) /* most bytes of sgemm output per block */
#define KMEANS_MIN_ROWS 64        /* unless scores would pass KMEANS_SCRATCH */
#define KMEANS_MAX_ROWS 4096      /* rows of x per sgemm call */
#define KMEANS_MAX_DIM 65536      /* sanity cap on the row width */
#define KMEANS_MAX_TRIALS 32      /* 2 + ln(INT_MAX) < 32 */
#define KMEANS_SEED_PER_K 256     /* seeding sample: rows per cluster... */
#define KMEANS_SEED_BYTES (64u << 20) /* ...within this many bytes */

typedef struct {
  const float *x; /* n x dim, borrowed */
  size_t n;
  int dim, k, trials, spherical;
  int rows;        /* rows of x per sgemm block */
  float *xnorm;    /* n: ||x_i||^2 */
  float *dist;     /* n: distance to own centroid (or closest seed) */
  int32_t *lab;    /* n: current labels */
  size_t sn;       /* rows seeding looks at (kmeans_seed_rows) */
  size_t *sidx;    /* sn: which rows of x, increasing */
  float *sxt;      /* dim x sn: those rows, transposed (faster thin sgemm) */
  float *snorm;    /* sn: their norms */
  float *cand;     /* trials x sn: min(dist, d(sample, candidate)) */
  double *cum;     /* sn: prefix sums of dist for D^2 sampling */
  float *scores;   /* rows x max(k, trials): sgemm output */
  float *cnorm;    /* max(k, trials): ||c||^2, or 0 when spherical */
  float *cent;     /* k x dim: current centroids */
  float *tcent;    /* trials x dim: seeding candidates */
  double *sums;    /* k x dim: sum of each cluster's rows, kept up to date */
  size_t *counts;  /* k: rows per cluster, idem */
  int32_t *blab;   /* rows: new labels of one block */
} kmeans_ws;

/* ---- memory and sizes ---- */

/*
 * Rows of x per sgemm block when each row yields m scores: a cache-sized
 * block of x (KMEANS_XBLOCK bytes, so the rows that moved are still warm when
 * their sums are updated), scores within KMEANS_SCRATCH bytes.
 */
static int kmeans_block_rows(int m, int dim) {
  size_t rx = KMEANS_XBLOCK / ((size_t)dim * sizeof(float));
  size_t rs = KMEANS_SCRATCH / ((size_t)m * sizeof(float));
  size_t rows = rx < KMEANS_MIN_ROWS ? KMEANS_MIN_ROWS : rx;
  rows = rows < rs ? rows : rs;
  rows = rows < KMEANS_MAX_ROWS ? rows : KMEANS_MAX_ROWS;
  return rows < 1 ? 1 : (int)rows;
}

/* ---- shared kernels ---- */

/* cn[j] = ||c_j||^2 (0 when spherical). -1 if a centre is not finite. */
static int kmeans_center_norms(const float *c, int m, int dim, int spherical,
                               float *cn) {
  for (int j = 0; j < m; j++) {
    float v = cblas_sdot(dim, c + (size_t)j * dim, 1, c + (size_t)j * dim, 1);
    if (!isfinite(v)) return -1;
    cn[j] = spherical ? 0.0f : v;
  }
  return 0;
}

/*
 * scores[j*rows + r] = -a c_j.x_r for the `rows` rows at x, a = 2 (Euclidean)
 * or 1 (spherical). Adding cn[j] gives the squared distance minus ||x_r||^2,
 * or the cosine distance minus 1: the part that depends on the centre. One
 * centre per scores row, so the scans below run along contiguous points.
 */
static void kmeans_block_scores(const float *x, int rows, int dim,
                                const float *c, int m, int spherical,
                                float *scores) {
  float alpha = spherical ? -1.0f : -2.0f;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, rows, dim, alpha, c,
              dim, x, dim, 0.0f, scores, rows);
}

/*
 * For each of the `rows` points of a scores block: the first j with the
 * smallest cn[j] + scores[j*rows + r] into bi[r], that value into bv[r].
 * Written with selects and integer masks along r, which gcc vectorises.
 */
static void kmeans_block_argmin(const float *scores, int rows, const float *cn,
                                int k, int32_t *restrict bi,
                                float *restrict bv) {
  for (int r = 0; r < rows; r++) {
    bv[r] = INFINITY;
    bi[r] = 0;
  }
  for (int32_t j = 0; j < k; j++) {
    const float *restrict sj = scores + (size_t)j * (size_t)rows;
    float c = cn[j];
    for (int r = 0; r < rows; r++) {
      float t = c + sj[r];
      int32_t lt = -(int32_t)(t < bv[r]);
      bv[r] = t < bv[r] ? t : bv[r];
      bi[r] = (j & lt) | (bi[r] & ~lt);
    }
  }
}

/* ---- seeding: greedy k-means++ on a uniform sample of rows ---- */

/*
 * Picks w->sn of the n rows uniformly without replacement (selection
 * sampling, Knuth's Algorithm S: one pass, increasing indices) and stores
 * them transposed in w->sxt, 16 rows at a time, with their norms.
 */
static void kmeans_sample_rows(kmeans_ws *w, sd_rng *rng) {
  size_t dim = (size_t)w->dim, sn = w->sn, got = 0;
  for (size_t i = 0; i < w->n && got < sn; i++) {
    double need = (double)(sn - got), left = (double)(w->n - i);
    if (sd_rng_unit(rng) * left < need) w->sidx[got++] = i;
  }
  for (size_t r0 = 0; r0 < sn; r0 += 16) {
    size_t r1 = sn - r0 < 16 ? sn : r0 + 16;
    for (size_t e = 0; e < dim; e++)
      for (size_t r = r0; r < r1; r++)
        w->sxt[e * sn + r] = w->x[w->sidx[r] * dim + e];
    for (size_t r = r0; r < r1; r++) w->snorm[r] = w->xnorm[w->sidx[r]];
  }
}

/* Draws a row with probability dist[i] / sum(dist); uniform if all 0. */
static size_t kmeans_draw(const kmeans_ws *w, sd_rng *rng) {
  size_t lo = 0, hi = w->sn - 1;
  double total = w->cum[hi];
  if (!(total > 0)) return sd_rng_below(rng, w->sn);
  double r = sd_rng_unit(rng) * total;
  if (!(w->cum[hi] > r)) { /* rounding: take the last row with weight */
    while (hi > 0 && !(w->dist[hi] > 0)) hi--;
    return hi;
  }
  while (lo < hi) { /* first i with cum[i] > r, so dist[i] > 0 */
    size_t mid = lo + (hi - lo) / 2;
    if (w->cum[mid] > r)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

/*
 * For the m candidates in w->tcent and each sample row i:
 * cand[t*sn + i] = min(dist_i, d(row i, candidate t)), and pot[t] = the
 * potential sum_i cand[t*sn + i] if t were chosen.
 */
static void kmeans_try(kmeans_ws *w, int m, double *pot) {
  size_t sn = w->sn;
  kmeans_center_norms(w->tcent, m, w->dim, w->spherical, w->cnorm);
  for (int t = 0; t < m; t++) pot[t] = 0.0;
  for (size_t i0 = 0; i0 < sn; i0 += (size_t)w->rows) {
    int b = sn - i0 < (size_t)w->rows ? (int)(sn - i0) : w->rows;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, b, w->dim,
                w->spherical ? -1.0f : -2.0f, w->tcent, w->dim, w->sxt + i0,
                (int)sn, 0.0f, w->scores, b);
    for (int t = 0; t < m; t++) {
      float *out = w->cand + (size_t)t * sn + i0, ct = w->cnorm[t];
      const float *s = w->scores + (size_t)t * (size_t)b;
      const float *xn = w->snorm + i0, *d0 = w->dist + i0;
      double acc = 0.0;
      for (int r = 0; r < b; r++) {
        float d = (w->spherical ? 1.0f : xn[r]) + ct + s[r];
        d = d > 0.0f ? d : 0.0f;
        out[r] = d < d0[r] ? d : d0[r];
        acc += out[r];
      }
      pot[t] += acc;
    }
  }
}

/*
 * Picks w->k seeds among the sampled rows into w->cent: the first uniformly,
 * each next one the best of w->trials D^2 draws by resulting potential.
 */
static void kmeans_seed(kmeans_ws *w, sd_rng *rng) {
  size_t sn = w->sn, dim = (size_t)w->dim, ids[KMEANS_MAX_TRIALS];
  double pot[KMEANS_MAX_TRIALS];
  kmeans_sample_rows(w, rng);
  for (size_t i = 0; i < sn; i++) w->dist[i] = INFINITY;
  ids[0] = sd_rng_below(rng, sn);
  for (int c = 0; c < w->k; c++) {
    int m = c == 0 ? 1 : w->trials, best = 0;
    if (c > 0) {
      double acc = 0.0;
      for (size_t i = 0; i < sn; i++) w->cum[i] = acc += w->dist[i];
      for (int t = 0; t < m; t++) ids[t] = kmeans_draw(w, rng);
    }
    for (int t = 0; t < m; t++)
      memcpy(w->tcent + (size_t)t * dim, w->x + w->sidx[ids[t]] * dim,
             dim * sizeof(float));
    kmeans_try(w, m, pot);
    for (int t = 1; t < m; t++)
      if (pot[t] < pot[best]) best = t;
    memcpy(w->cent + (size_t)c * dim, w->tcent + (size_t)best * dim,
           dim * sizeof(float));
    memcpy(w->dist, w->cand + (size_t)best * sn, sn * sizeof(float));
    w->dist[ids[best]] = 0.0f;
  }
}

/* ---- Lloyd ---- */

/* sums[j] += sign * x_i, counts[j] += sign. */
static void kmeans_move(kmeans_ws *w, size_t i, int32_t j, int sign) {
  size_t dim = (size_t)w->dim;
  double *restrict s = w->sums + (size_t)j * dim;
  const float *restrict xi = w->x + i * dim;
  if (sign > 0) {
    for (size_t e = 0; e < dim; e++) s[e] += xi[e];
    w->counts[j]++;
  } else {
    for (size_t e = 0; e < dim; e++) s[e] -= xi[e];
    w->counts[j]--;
  }
}

/*
 * Finishes the rows [i0, i0 + b) once w->blab holds their nearest centres
 * and w->dist their scores: distances, and the cluster sums and counts
 * updated for the rows whose label changed only (all rows when `fresh`), so
 * later iterations, where few rows move, barely touch x. Returns the block's
 * inertia; adds the number of moved rows to *moved.
 */
static double kmeans_block_finish(kmeans_ws *w, size_t i0, int b, int fresh,
                                  size_t *moved) {
  double inertia = 0.0;
  for (int r = 0; r < b; r++) {
    size_t i = i0 + (size_t)r;
    int32_t j = w->blab[r];
    float d = (w->spherical ? 1.0f : w->xnorm[i]) + w->dist[i];
    w->dist[i] = d > 0.0f ? d : 0.0f;
    inertia += w->dist[i];
    if (!fresh && w->lab[i] == j) continue;
    if (!fresh) kmeans_move(w, i, w->lab[i], -1);
    kmeans_move(w, i, j, +1);
    w->lab[i] = j;
    (*moved)++;
  }
  return inertia;
}

/*
 * Labels each point with its nearest centroid, records its distance, keeps
 * the cluster sums in step (rebuilt from zero when `fresh`), and returns the
 * inertia; *moved is the number of labels that changed.
 */
static double kmeans_estep(kmeans_ws *w, int fresh, size_t *moved) {
  size_t n = w->n, dim = (size_t)w->dim;
  double inertia = 0.0;
  *moved = 0;
  kmeans_center_norms(w->cent, w->k, w->dim, w->spherical, w->cnorm);
  if (fresh) {
    memset(w->sums, 0, (size_t)w->k * dim * sizeof(double));
    memset(w->counts, 0, (size_t)w->k * sizeof(size_t));
  }
  for (size_t i0 = 0; i0 < n; i0 += (size_t)w->rows) {
    int b = n - i0 < (size_t)w->rows ? (int)(n - i0) : w->rows;
    kmeans_block_scores(w->x + i0 * dim, b, w->dim, w->cent, w->k,
                        w->spherical, w->scores);
    kmeans_block_argmin(w->scores, b, w->cnorm, w->k, w->blab, w->dist + i0);
    inertia += kmeans_block_finish(w, i0, b, fresh, moved);
  }
  return inertia;
}

/*
 * Gives each empty cluster the point farthest from its centroid among
 * clusters of two or more (one exists while a cluster is empty, as k <= n).
 */
static void kmeans_fix_empty(kmeans_ws *w) {
  for (int32_t j = 0; j < w->k; j++) {
    size_t far = 0;
    float fd = -1.0f;
    if (w->counts[j] > 0) continue;
    for (size_t i = 0; i < w->n; i++)
      if (w->counts[w->lab[i]] > 1 && w->dist[i] > fd) {
        fd = w->dist[i];
        far = i;
      }
    kmeans_move(w, far, w->lab[far], -1);
    memset(w->sums + (size_t)j * (size_t)w->dim, 0,
           (size_t)w->dim * sizeof(double)); /* drop rounding residue */
    kmeans_move(w, far, j, +1);
    w->lab[far] = j;
    w->dist[far] = 0.0f;
  }
}

/* New centroids from the sums of the last E-step: means, or unit means. */
static void kmeans_mstep(kmeans_ws *w) {
  size_t dim = (size_t)w->dim;
  kmeans_fix_empty(w);
  for (int j = 0; j < w->k; j++) {
    const double *s = w->sums + (size_t)j * dim;
    float *c = w->cent + (size_t)j * dim;
    double scale = 1.0 / (double)w->counts[j];
    if (w->spherical) {
      double nn = 0.0;
      for (size_t e = 0; e < dim; e++) nn += s[e] * s[e];
      if (!(nn > 0.0)) continue; /* members cancel out: keep the centre */
      scale = 1.0 / sqrt(nn);
    }
    for (size_t e = 0; e < dim; e++) c[e] = (float)(s[e] * scale);
  }
}

/*
 * One restart: seeds, then max_iter (update, assign) rounds, stopping early
 * only when tol > 0 and either no label changed or the inertia fell by less
 * than tol relatively. Ends with labels and inertia consistent with w->cent.
 */
static double kmeans_run(kmeans_ws *w, const sd_kmeans_opts *o,
                         sd_rng *rng, int warm, int *iters) {
  int it = 0;
  size_t moved;
  if (warm)
    memcpy(w->cent, o->init, (size_t)w->k * (size_t)w->dim * sizeof(float));
  else
    kmeans_seed(w, rng);
  double cur = kmeans_estep(w, 1, &moved);
  while (it < o->max_iter) {
    double prev = cur;
    kmeans_mstep(w);
    cur = kmeans_estep(w, 0, &moved);
    it++;
    if (o->tol > 0.0f && (moved == 0 || prev - cur <= (double)o->tol * prev))
      break;
  }
  *iters = it;
  return cur;
}

/* ---- workspace ---- */

static void kmeans_ws_free(kmeans_ws *w) {
  free(w->xnorm);
  free(w->dist);
  free(w->lab);
  free(w->sidx);
  free(w->sxt);
  free(w->snorm);
  free(w->cand);
  free(w->cum);
  free(w->scores);
  free(w->cnorm);
  free(w->cent);
  free(w->tcent);
  free(w->sums);
  free(w->counts);
  free(w->blab);
  memset(w, 0, sizeof *w);
}

/*
 * Rows the seeding looks at: KMEANS_SEED_PER_K per cluster (as faiss
 * subsamples its training set), at most KMEANS_SEED_BYTES of them, never
 * fewer than k nor more than n.
 */
static size_t kmeans_seed_rows(size_t n, int k, int dim) {
  size_t want = (size_t)k * KMEANS_SEED_PER_K; /* k <= INT_MAX: no overflow */
  size_t cap = KMEANS_SEED_BYTES / ((size_t)dim * sizeof(float));
  want = want < cap ? want : cap;
  want = want > (size_t)k ? want : (size_t)k;
  return want < n ? want : n;
}

static int kmeans_ws_fail(kmeans_ws *w) {
  kmeans_ws_free(w);
  return SD_ENOMEM;
}

static int kmeans_ws_init(kmeans_ws *w, const float *x, size_t n, int dim,
                          const sd_kmeans_opts *o) {
  memset(w, 0, sizeof *w);
  w->x = x;
  w->n = n;
  w->dim = dim;
  w->k = o->k;
  w->spherical = o->spherical ? 1 : 0;
  w->trials = 2 + (int)log((double)o->k);
  int m = w->k > w->trials ? w->k : w->trials;
  w->rows = kmeans_block_rows(m, dim);
  w->xnorm = sd_malloc_n(n, 1, sizeof(float));
  w->dist = sd_malloc_n(n, 1, sizeof(float));
  w->lab = sd_malloc_n(n, 1, sizeof(int32_t));
  w->sn = kmeans_seed_rows(n, w->k, dim);
  w->sidx = sd_malloc_n(w->sn, 1, sizeof(size_t));
  w->sxt = sd_malloc_n(w->sn, (size_t)dim, sizeof(float));
  w->snorm = sd_malloc_n(w->sn, 1, sizeof(float));
  w->cand = sd_malloc_n(w->sn, (size_t)w->trials, sizeof(float));
  w->cum = sd_malloc_n(w->sn, 1, sizeof(double));
  w->scores = sd_malloc_n((size_t)w->rows, (size_t)m, sizeof(float));
  w->cnorm = sd_malloc_n((size_t)m, 1, sizeof(float));
  w->cent = sd_malloc_n((size_t)w->k, (size_t)dim, sizeof(float));
  w->tcent = sd_malloc_n((size_t)w->trials, (size_t)dim, sizeof(float));
  w->sums = sd_malloc_n((size_t)w->k, (size_t)dim, sizeof(double));
  w->counts = sd_malloc_n((size_t)w->k, 1, sizeof(size_t));
  w->blab = sd_malloc_n((size_t)w->rows, 1, sizeof(int32_t));
  if (!w->xnorm || !w->dist || !w->lab || !w->sidx || !w->sxt || !w->snorm ||
      !w->cand || !w->cum || !w->scores ||
      !w->cnorm || !w->cent || !w->tcent || !w->sums || !w->counts ||
      !w->blab)
    return kmeans_ws_fail(w);
  return 0;
}

/* ||x_i||^2 for every row; SD_EINVAL if a row is not finite. */
static int kmeans_row_norms(const float *x, size_t n, int dim, float *out) {
  for (size_t i = 0; i < n; i++) {
    const float *xi = x + i * (size_t)dim;
    float v = cblas_sdot(dim, xi, 1, xi, 1);
    if (!isfinite(v)) return SD_EINVAL;
    out[i] = v;
  }
  return 0;
}

/* ---- public API ---- */

sd_kmeans_opts sd_kmeans_defaults(int k) {
  sd_kmeans_opts o;
  memset(&o, 0, sizeof o);
  o.k = k;
  o.max_iter = 50;
  o.restarts = 3;
  o.seed = 0;
  o.spherical = 0;
  o.tol = 1e-4f;
  return o;
}

static int kmeans_check(const float *x, size_t n, int dim,
                        const sd_kmeans_opts *o) {
  if (!x || !o || n == 0 || dim < 1 || dim > KMEANS_MAX_DIM) return SD_EINVAL;
  if (n > SIZE_MAX / sizeof(double) / (size_t)dim) return SD_EINVAL;
  if (o->k < 1 || (size_t)o->k > n) return SD_EINVAL;
  if (o->max_iter < 0 || o->restarts < 1) return SD_EINVAL;
  if (!(o->tol >= 0.0f) || !isfinite(o->tol)) return SD_EINVAL;
  for (size_t i = 0; o->init && i < (size_t)o->k * (size_t)dim; i++)
    if (!isfinite(o->init[i])) return SD_EINVAL;
  return 0;
}

/* Runs the restarts, copying each better one into out. */
static void kmeans_restarts(kmeans_ws *w, const sd_kmeans_opts *o,
                            sd_kmeans_result *out) {
  sd_rng rng;
  sd_rng_init(&rng, o->seed);
  for (int r = 0; r < o->restarts; r++) {
    int iters = 0;
    double inertia = kmeans_run(w, o, &rng, r == 0 && o->init, &iters);
    if (r > 0 && !(inertia < out->inertia)) continue;
    memcpy(out->centroids, w->cent,
           (size_t)w->k * (size_t)w->dim * sizeof(float));
    memcpy(out->assign, w->lab, w->n * sizeof(int32_t));
    out->inertia = inertia;
    out->iters = iters;
  }
}

int sd_kmeans_fit(const float *x, size_t n, int dim, const sd_kmeans_opts *o,
                  sd_kmeans_result *out) {
  kmeans_ws w;
  if (!out) return SD_EINVAL;
  memset(out, 0, sizeof *out);
  int rc = kmeans_check(x, n, dim, o);
  if (rc) return rc;
  rc = kmeans_ws_init(&w, x, n, dim, o);
  if (rc) return rc;
  rc = kmeans_row_norms(x, n, dim, w.xnorm);
  if (rc == 0) {
    out->k = o->k;
    out->dim = dim;
    out->centroids = sd_malloc_n((size_t)o->k, (size_t)dim, sizeof(float));
    out->assign = sd_malloc_n(n, 1, sizeof(int32_t));
    if (!out->centroids || !out->assign) rc = SD_ENOMEM;
  }
  if (rc == 0) kmeans_restarts(&w, o, out);
  kmeans_ws_free(&w);
  if (rc) sd_kmeans_result_free(out);
  return rc;
}

void sd_kmeans_result_free(sd_kmeans_result *r) {
  if (!r) return;
  free(r->centroids);
  free(r->assign);
  memset(r, 0, sizeof *r);
}

/*
 * kmeans_block_argmin keeping the runner-up too (i2 = -1 while there is
 * none, as when k == 1). v1 <= v2 throughout, so the new v2 is
 * min(max(t, v1), v2).
 */
static void kmeans_block_top2(const float *scores, int rows, const float *cn,
                              int k, int32_t *restrict i1,
                              float *restrict v1, int32_t *restrict i2,
                              float *restrict v2) {
  for (int r = 0; r < rows; r++) {
    v1[r] = v2[r] = INFINITY;
    i1[r] = i2[r] = -1;
  }
  for (int32_t j = 0; j < k; j++) {
    const float *restrict sj = scores + (size_t)j * (size_t)rows;
    float c = cn[j];
    for (int r = 0; r < rows; r++) {
      float t = c + sj[r], a = v1[r], b = v2[r];
      int32_t m1 = -(int32_t)(t < a), m2 = -(int32_t)(t < b);
      float hi = t < a ? a : t;
      v2[r] = hi < b ? hi : b;
      i2[r] = (i1[r] & m1) | (((j & m2) | (i2[r] & ~m2)) & ~m1);
      v1[r] = t < a ? t : a;
      i1[r] = (j & m1) | (i1[r] & ~m1);
    }
  }
  for (int r = 0; r < rows; r++) i1[r] = i1[r] < 0 ? 0 : i1[r]; /* NaNs */
}

/* Turns a score plus ||x||^2 into a similarity (larger is better). */
static float kmeans_sim(float v, float xnorm, int spherical) {
  if (spherical) return -v; /* v = -x.c */
  float d = xnorm + v;
  return d > 0.0f ? -d : 0.0f;
}

/*
 * Assigns the b rows of one block; i2/v2 are scratch for the runner-up.
 * SD_EINVAL on a non-finite row.
 */
static int kmeans_assign_block(const float *x, int b, const float *c, int k,
                               int dim, int spherical, const float *cn,
                               float *scores, int32_t *i2, float *v2,
                               int32_t *best, float *best_sim,
                               int32_t *second, float *second_sim) {
  kmeans_block_scores(x, b, dim, c, k, spherical, scores);
  kmeans_block_top2(scores, b, cn, k, best, best_sim, i2, v2);
  for (int r = 0; r < b; r++) {
    const float *xr = x + (size_t)r * (size_t)dim;
    float xn = cblas_sdot(dim, xr, 1, xr, 1);
    if (!isfinite(xn)) return SD_EINVAL;
    best_sim[r] = kmeans_sim(best_sim[r], xn, spherical);
    if (second) second[r] = i2[r];
    if (second_sim)
      second_sim[r] = i2[r] < 0 ? -INFINITY : kmeans_sim(v2[r], xn, spherical);
  }
  return 0;
}

/* One point on the sphere: a matrix-vector product and a scan (the
 * online path assigns points one at a time; sgemm's packing and the
 * scratch of the blocked path cost more than the product itself). Same
 * answers as the blocked path: the first best, then the first runner-up. */
static int kmeans_assign_one(const float *x, const float *c, int k, int dim,
                             int32_t *best, float *best_sim, int32_t *second,
                             float *second_sim) {
  float stack[256], *s = k <= 256 ? stack : malloc(sizeof(float) * (size_t)k);
  if (!s) return SD_ENOMEM;
  float xn = cblas_sdot(dim, x, 1, x, 1);
  if (!isfinite(xn)) {
    if (s != stack) free(s);
    return SD_EINVAL;
  }
  cblas_sgemv(CblasRowMajor, CblasNoTrans, k, dim, 1.0f, c, dim, x, 1, 0.0f, s, 1);
  int32_t b = 0, b2 = -1;
  for (int32_t j = 1; j < k; j++)
    if (s[j] > s[b]) b = j;
  for (int32_t j = 0; j < k; j++)
    if (j != b && (b2 < 0 || s[j] > s[b2])) b2 = j;
  *best = b;
  *best_sim = s[b];
  if (second) *second = b2;
  if (second_sim) *second_sim = b2 < 0 ? -INFINITY : s[b2];
  if (s != stack) free(s);
  return 0;
}

int sd_kmeans_assign(const float *x, size_t n, const float *c, int k, int dim,
                     int spherical, int32_t *best, float *best_sim,
                     int32_t *second, float *second_sim) {
  if (n == 0) return 0;
  if (!x || !c || !best || !best_sim || k < 1 || dim < 1 ||
      dim > KMEANS_MAX_DIM || n > SIZE_MAX / sizeof(float) / (size_t)dim)
    return SD_EINVAL;
  if (n == 1 && spherical)
    return kmeans_assign_one(x, c, k, dim, best, best_sim, second, second_sim);
  int rows = kmeans_block_rows(k, dim), rc = 0;
  float *cn = sd_malloc_n((size_t)k, 1, sizeof(float));
  float *scores = sd_malloc_n((size_t)rows, (size_t)k, sizeof(float));
  float *v2 = sd_malloc_n((size_t)rows, 1, sizeof(float));
  int32_t *i2 = sd_malloc_n((size_t)rows, 1, sizeof(int32_t));
  if (!cn || !scores || !v2 || !i2) rc = SD_ENOMEM;
  if (rc == 0 && kmeans_center_norms(c, k, dim, spherical, cn) != 0)
    rc = SD_EINVAL;
  for (size_t i0 = 0; rc == 0 && i0 < n; i0 += (size_t)rows) {
    int b = n - i0 < (size_t)rows ? (int)(n - i0) : rows;
    rc = kmeans_assign_block(x + i0 * (size_t)dim, b, c, k, dim, spherical, cn,
                             scores, i2, v2, best + i0, best_sim + i0,
                             second ? second + i0 : NULL,
                             second_sim ? second_sim + i0 : NULL);
  }
  free(cn);
  free(scores);
  free(v2);
  free(i2);
  return rc;
}
