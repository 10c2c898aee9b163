/*
 * cluster_eval.c -- comparing and scoring clusterings (cluster_eval.h).
 *
 * Hungarian assignment: the shortest-augmenting-path form of Kuhn-Munkres
 * (Jonker & Volgenant 1987; Lawler's O(n^3) potentials), minimising
 * cost = max(score) - score >= 0, which maximises the score. A rectangular
 * r x c problem is the square max(r, c) problem padded with zero-score
 * dummy rows; the dummies are never stored: the shorter side plays the
 * rows, so the time is O(min^2 * max) and the memory O(max).
 *
 * Agreement: labels are first mapped onto the labels that occur among the
 * counted points (both labels non-negative), as scikit-learn does with
 * np.unique, so the table, the degenerate cases and the matching only see
 * present labels. NMI uses the arithmetic-mean normalisation and ARI the
 * pair-count form, with the special cases of scikit-learn 1.2
 * (normalized_mutual_info_score, adjusted_rand_score). Accuracy is the
 * largest one-to-one matching of the table (Hungarian) over n. With no
 * counted point the three are 1.0, as scikit-learn gives for empty input.
 *
 * Silhouette: up to max_sample labeled rows are drawn uniformly without
 * replacement (selection sampling, seeded xoshiro256**: the same seed and
 * input give the same sample); a(i) and b(i) of a sampled row are taken over
 * ALL labeled rows, not over the sample only as scikit-learn's
 * silhouette_score(sample_size=...) does. That is the more accurate
 * estimate of the full silhouette, and when max_sample >= the labeled rows
 * the result is exactly scikit-learn's silhouette_score. Distances come from
 * cblas_sgemm blocks: 1 - x.y (clamped to [0, 2]) when spherical, else
 * sqrt(max(0, |x|^2 + |y|^2 - 2 x.y)); sums are kept in double.
 *
 * Davies-Bouldin: scikit-learn's davies_bouldin_score (Euclidean), except
 * that the caller's centroids are used rather than recomputed means.
 *
 * The internal measures need two non-empty clusters among labeled rows
 * (scikit-learn raises otherwise); with fewer they return SD_EINVAL.
 * No global state: every function may run concurrently on different data.
 */
#include "segmentd/cluster_eval.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "segmentd/alloc.h"
#include "segmentd/err.h"
#include "segmentd/rng.h"

#define EVAL_MAX_ASSIGN 4096       /* sd_hungarian_max: rows and columns */
#define EVAL_MAX_LABELS (1 << 20)  /* label range of the agreement inputs */
#define EVAL_MAX_CELLS (1u << 24)  /* present label pairs in its table */
#define EVAL_MAX_POINTS 0xffffffffu /* pair counts stay below 2^63 */
#define EVAL_MAX_K (1 << 20)       /* clusters of the internal measures */
#define EVAL_MAX_DIM 65536         /* sanity cap on the row width */
#define EVAL_SAMPLE_BLOCK 256      /* sampled rows per silhouette block */
#define EVAL_XBLOCK 1024           /* rows of x per silhouette sgemm */
#define EVAL_ACC_BYTES (8u << 20)  /* most bytes of per-cluster sums */
#define EVAL_SCRATCH (1u << 20)    /* most bytes of gemm output per block */
#define EVAL_ATOL 1e-8             /* np.allclose(v, 0) in Davies-Bouldin */


/* ---- Hungarian assignment ---- */

typedef struct {
  const double *sd;     /* r x c scores, or NULL and... */
  const int64_t *si;    /* ...r x c counts (the accuracy's table) */
  int r, c;
  int n, m;             /* algorithm rows min(r, c), columns max(r, c) */
  int flip;             /* algorithm rows are score columns (r > c) */
  double hi;            /* largest score: cost = hi - score >= 0 */
  double *u, *v, *minv; /* n + 1, m + 1, m + 1: potentials, slack */
  int *p, *way;         /* m + 1: row on each column (0 = free), path */
  unsigned char *used;  /* m + 1: columns in the current search tree */
} eval_hung;

/* Score of algorithm row i, column j (0-based). */
static double eval_hung_score(const eval_hung *h, int i, int j) {
  size_t at = h->flip ? (size_t)j * (size_t)h->c + (size_t)i
                      : (size_t)i * (size_t)h->c + (size_t)j;
  return h->sd ? h->sd[at] : (double)h->si[at];
}

/*
 * Sets h->hi to the largest score. SD_EINVAL if a score is not finite, or
 * if the spread of scores is so wide that the potentials (sums of up to
 * n + 1 costs) could overflow.
 */
static int eval_hung_range(eval_hung *h) {
  double lo = INFINITY, hi = -INFINITY;
  size_t cells = (size_t)h->r * (size_t)h->c;
  for (size_t k = 0; k < cells; k++) {
    double s = h->sd ? h->sd[k] : (double)h->si[k];
    if (!isfinite(s)) return SD_EINVAL;
    lo = s < lo ? s : lo;
    hi = s > hi ? s : hi;
  }
  if (!isfinite((hi - lo) * ((double)h->n + 1.0))) return SD_EINVAL;
  h->hi = hi;
  return 0;
}

/*
 * Adds algorithm row i (1-based) to the matching: a Dijkstra search over
 * reduced costs from row i to a free column, then the potentials are
 * updated and the path flipped. -1 if no column is reachable, which finite
 * costs rule out (kept as a guard against an endless loop).
 */
static int eval_hung_augment(eval_hung *h, int i) {
  int m = h->m, j0 = 0;
  h->p[0] = i;
  for (int j = 0; j <= m; j++) {
    h->minv[j] = INFINITY;
    h->used[j] = 0;
  }
  do {
    int i0 = h->p[j0], j1 = 0;
    double delta = INFINITY;
    h->used[j0] = 1;
    for (int j = 1; j <= m; j++) {
      if (h->used[j]) continue;
      double cost = h->hi - eval_hung_score(h, i0 - 1, j - 1);
      double cur = cost - h->u[i0] - h->v[j];
      if (cur < h->minv[j]) {
        h->minv[j] = cur;
        h->way[j] = j0;
      }
      if (h->minv[j] < delta) {
        delta = h->minv[j];
        j1 = j;
      }
    }
    if (j1 == 0) return -1;
    for (int j = 0; j <= m; j++) {
      if (h->used[j]) {
        h->u[h->p[j]] += delta;
        h->v[j] -= delta;
      } else {
        h->minv[j] -= delta;
      }
    }
    j0 = j1;
  } while (h->p[j0] != 0);
  do {
    int j1 = h->way[j0];
    h->p[j0] = h->p[j1];
    j0 = j1;
  } while (j0);
  return 0;
}

static void eval_hung_free(eval_hung *h) {
  free(h->u);
  free(h->v);
  free(h->minv);
  free(h->p);
  free(h->way);
  free(h->used);
}

/*
 * Maximum-score matching of h->r x h->c (h->sd or h->si set, no size cap):
 * row_to_col[i] = matched column or -1. 0, SD_EINVAL, SD_ENOMEM.
 */
static int eval_hungarian(eval_hung *h, int32_t *row_to_col) {
  for (int i = 0; i < h->r; i++) row_to_col[i] = -1;
  if (h->r == 0 || h->c == 0) return 0;
  h->flip = h->r > h->c;
  h->n = h->flip ? h->c : h->r;
  h->m = h->flip ? h->r : h->c;
  int rc = eval_hung_range(h);
  if (rc) return rc;
  size_t m1 = (size_t)h->m + 1;
  h->u = sd_calloc_n((size_t)h->n + 1, 1, sizeof(double));
  h->v = sd_calloc_n(m1, 1, sizeof(double));
  h->minv = sd_malloc_n(m1, 1, sizeof(double));
  h->p = sd_calloc_n(m1, 1, sizeof(int));
  h->way = sd_calloc_n(m1, 1, sizeof(int));
  h->used = sd_malloc_n(m1, 1, 1);
  if (!h->u || !h->v || !h->minv || !h->p || !h->way || !h->used)
    rc = SD_ENOMEM;
  for (int i = 1; rc == 0 && i <= h->n; i++)
    if (eval_hung_augment(h, i) != 0) rc = SD_EINTERNAL;
  for (int j = 1; rc == 0 && j <= h->m; j++) {
    if (h->p[j] == 0) continue;
    if (h->flip)
      row_to_col[j - 1] = h->p[j] - 1;
    else
      row_to_col[h->p[j] - 1] = j - 1;
  }
  if (rc)
    for (int i = 0; i < h->r; i++) row_to_col[i] = -1;
  eval_hung_free(h);
  return rc;
}

int sd_hungarian_max(const double *score, int r, int c, int32_t *row_to_col) {
  eval_hung h;
  if (r < 0 || c < 0 || r > EVAL_MAX_ASSIGN || c > EVAL_MAX_ASSIGN)
    return SD_EINVAL;
  if (r > 0 && (!row_to_col || (c > 0 && !score))) return SD_EINVAL;
  memset(&h, 0, sizeof h);
  h.sd = score;
  h.r = r;
  h.c = c;
  return eval_hungarian(&h, row_to_col);
}

/* ---- contingency and agreement ---- */

/* SD_EINVAL unless every label is below its range (negatives are fine). */
static int eval_labels_check(const int32_t *la, int na, const int32_t *lb,
                             int nb, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (la[i] >= na || lb[i] >= nb) return SD_EINVAL;
  return 0;
}

/*
 * t[a * kb + b]++ for every point with both labels non-negative, through
 * the maps ma, mb (label -> row/column) or the labels themselves when NULL.
 * t must be zeroed. Returns the number of points counted.
 */
static int64_t eval_tabulate(const int32_t *la, const int32_t *lb, size_t n,
                             const int32_t *ma, const int32_t *mb, int kb,
                             int64_t *t) {
  int64_t counted = 0;
  for (size_t i = 0; i < n; i++) {
    if (la[i] < 0 || lb[i] < 0) continue;
    size_t a = (size_t)(ma ? ma[la[i]] : la[i]);
    size_t b = (size_t)(mb ? mb[lb[i]] : lb[i]);
    t[a * (size_t)kb + b]++;
    counted++;
  }
  return counted;
}

int sd_contingency(const int32_t *la, int na, const int32_t *lb, int nb,
                   size_t n, int64_t *table) {
  if (na < 1 || nb < 1 || !table || (n > 0 && (!la || !lb)))
    return SD_EINVAL;
  if ((size_t)na > SIZE_MAX / sizeof(int64_t) / (size_t)nb) return SD_EINVAL;
  int rc = eval_labels_check(la, na, lb, nb, n);
  if (rc) return rc;
  memset(table, 0, (size_t)na * (size_t)nb * sizeof(int64_t));
  eval_tabulate(la, lb, n, NULL, NULL, nb, table);
  return 0;
}

typedef struct {
  int32_t *ma, *mb;  /* na, nb: label -> present index, or -1 */
  int ka, kb;        /* labels present on each side */
  int64_t *t;        /* ka x kb: contingency of the counted points */
  int64_t *ra, *rb;  /* ka, kb: its row and column sums */
  int64_t n;         /* points counted */
} eval_agree;

static void eval_agree_free(eval_agree *g) {
  free(g->ma);
  free(g->mb);
  free(g->t);
  free(g->ra);
  free(g->rb);
}

/*
 * Numbers, in label order, the labels that occur among the counted points:
 * map[l] = index or -1; returns how many.
 */
static int eval_present(const int32_t *l, const int32_t *other, size_t n,
                        int32_t *map, int nl) {
  int k = 0;
  for (int j = 0; j < nl; j++) map[j] = -1;
  for (size_t i = 0; i < n; i++)
    if (l[i] >= 0 && other[i] >= 0) map[l[i]] = 0;
  for (int j = 0; j < nl; j++)
    if (map[j] == 0) map[j] = k++;
  return k;
}

/* Maps the labels, tabulates and sums; 0, SD_EINVAL or SD_ENOMEM. */
static int eval_agree_init(eval_agree *g, const int32_t *la, int na,
                           const int32_t *lb, int nb, size_t n) {
  memset(g, 0, sizeof *g);
  g->ma = sd_malloc_n((size_t)na, 1, sizeof(int32_t));
  g->mb = sd_malloc_n((size_t)nb, 1, sizeof(int32_t));
  if (!g->ma || !g->mb) return SD_ENOMEM;
  g->ka = eval_present(la, lb, n, g->ma, na);
  g->kb = eval_present(lb, la, n, g->mb, nb);
  if ((size_t)g->ka * (size_t)g->kb > EVAL_MAX_CELLS) return SD_EINVAL;
  g->t = sd_calloc_n((size_t)g->ka, (size_t)g->kb, sizeof(int64_t));
  g->ra = sd_calloc_n((size_t)g->ka, 1, sizeof(int64_t));
  g->rb = sd_calloc_n((size_t)g->kb, 1, sizeof(int64_t));
  if (!g->t || !g->ra || !g->rb) return SD_ENOMEM;
  g->n = eval_tabulate(la, lb, n, g->ma, g->mb, g->kb, g->t);
  for (int a = 0; a < g->ka; a++)
    for (int b = 0; b < g->kb; b++) {
      int64_t v = g->t[(size_t)a * (size_t)g->kb + (size_t)b];
      g->ra[a] += v;
      g->rb[b] += v;
    }
  return 0;
}

/* Entropy (nats) of the counts cnt[0..k), all positive, summing to n. */
static double eval_entropy(const int64_t *cnt, int k, int64_t n) {
  double h = 0.0, ln = log((double)n);
  if (k <= 1) return 0.0;
  for (int j = 0; j < k; j++)
    h -= ((double)cnt[j] / (double)n) * (log((double)cnt[j]) - ln);
  return h;
}

/* Mutual information (nats) of the table, as sklearn's mutual_info_score. */
static double eval_mutual_info(const eval_agree *g) {
  double mi = 0.0, ln = log((double)g->n);
  if (g->ka == 1 || g->kb == 1) return 0.0;
  for (int a = 0; a < g->ka; a++)
    for (int b = 0; b < g->kb; b++) {
      int64_t v = g->t[(size_t)a * (size_t)g->kb + (size_t)b];
      if (v == 0) continue;
      double p = (double)v / (double)g->n;
      double lo = -(log((double)g->ra[a]) + log((double)g->rb[b])) + 2.0 * ln;
      double term = p * (log((double)v) - ln) + p * lo;
      if (fabs(term) < 0x1.0p-52) term = 0.0; /* float64 eps, as sklearn */
      mi += term;
    }
  return mi > 0.0 ? mi : 0.0;
}

/* NMI, arithmetic-mean normalisation, sklearn's special cases. */
static double eval_nmi(const eval_agree *g) {
  if (g->ka == g->kb && g->ka <= 1) return 1.0;
  double mi = eval_mutual_info(g);
  if (mi == 0.0) return 0.0;
  double ha = eval_entropy(g->ra, g->ka, g->n);
  double hb = eval_entropy(g->rb, g->kb, g->n);
  return mi / (0.5 * (ha + hb));
}

/* v choose 2; v < 2^32, so the product fits in 64 bits. */
static uint64_t eval_pairs(int64_t v) {
  return v < 2 ? 0 : (uint64_t)v * (uint64_t)(v - 1) / 2;
}

/*
 * ARI = (index - expected) / (max - expected) from pair counts. Both
 * labelings agreeing on every pair (sklearn's fp == fn == 0: one cluster
 * each, all singletons, identical partitions, empty input) gives 1.0.
 */
static double eval_ari(const eval_agree *g) {
  uint64_t idx = 0, sa = 0, sb = 0;
  for (size_t k = 0; k < (size_t)g->ka * (size_t)g->kb; k++)
    idx += eval_pairs(g->t[k]);
  for (int a = 0; a < g->ka; a++) sa += eval_pairs(g->ra[a]);
  for (int b = 0; b < g->kb; b++) sb += eval_pairs(g->rb[b]);
  if (idx == sa && idx == sb) return 1.0;
  double expected = (double)sa * (double)sb / (double)eval_pairs(g->n);
  double mx = 0.5 * ((double)sa + (double)sb);
  return ((double)idx - expected) / (mx - expected);
}

/* Points on the best one-to-one matching of the table, over n. */
static int eval_accuracy(const eval_agree *g, double *acc) {
  eval_hung h;
  *acc = 1.0;
  if (g->n == 0) return 0;
  int32_t *match = sd_malloc_n((size_t)g->ka, 1, sizeof(int32_t));
  if (!match) return SD_ENOMEM;
  memset(&h, 0, sizeof h);
  h.si = g->t;
  h.r = g->ka;
  h.c = g->kb;
  int rc = eval_hungarian(&h, match);
  int64_t hit = 0;
  for (int a = 0; rc == 0 && a < g->ka; a++)
    if (match[a] >= 0)
      hit += g->t[(size_t)a * (size_t)g->kb + (size_t)match[a]];
  *acc = (double)hit / (double)g->n;
  free(match);
  return rc;
}

int sd_agreement_compute(const int32_t *pred, int n_pred, const int32_t *truth,
                         int n_truth, size_t n, sd_agreement *out) {
  eval_agree g;
  if (!out) return SD_EINVAL;
  memset(out, 0, sizeof *out);
  if (n_pred < 1 || n_truth < 1 || n_pred > EVAL_MAX_LABELS ||
      n_truth > EVAL_MAX_LABELS || n > EVAL_MAX_POINTS ||
      (n > 0 && (!pred || !truth)))
    return SD_EINVAL;
  int rc = eval_labels_check(pred, n_pred, truth, n_truth, n);
  if (rc) return rc;
  rc = eval_agree_init(&g, pred, n_pred, truth, n_truth, n);
  if (rc == 0) {
    out->n = (size_t)g.n;
    out->nmi = eval_nmi(&g);
    out->ari = eval_ari(&g);
    rc = eval_accuracy(&g, &out->accuracy);
  }
  eval_agree_free(&g);
  if (rc) memset(out, 0, sizeof *out);
  return rc;
}

/* ---- internal measures: shared checks ---- */

/*
 * Arguments common to the silhouette and Davies-Bouldin: sizes within the
 * caps and every label below k.
 */
static int eval_rows_check(const float *x, size_t n, int dim,
                           const int32_t *labels, int k, const double *out) {
  if (!x || !labels || !out || n == 0 || dim < 1 || dim > EVAL_MAX_DIM ||
      k < 1 || k > EVAL_MAX_K)
    return SD_EINVAL;
  if (n > SIZE_MAX / sizeof(double) / (size_t)dim) return SD_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (labels[i] >= k) return SD_EINVAL;
  return 0;
}

/* ---- silhouette ---- */

typedef struct {
  const float *x;      /* n x dim, borrowed */
  const int32_t *lab;  /* n, borrowed */
  size_t n;
  int dim, spherical;
  int kp;              /* clusters with at least one labeled row */
  int32_t *cmap;       /* k: cluster -> present index, or -1 */
  size_t *csize;       /* kp: labeled rows of each present cluster */
  double *xnorm;       /* n: ||x_i||^2 of labeled rows */
  size_t ns;           /* rows sampled */
  size_t *sidx;        /* ns: which rows, increasing */
  int brows;           /* sampled rows per block */
  float *xs;           /* brows x dim: the block's rows, gathered */
  float *scores;       /* brows x EVAL_XBLOCK: sgemm output */
  double *acc;         /* brows x kp: distance sums per cluster */
} eval_sil;

static void eval_sil_free(eval_sil *w) {
  free(w->cmap);
  free(w->csize);
  free(w->xnorm);
  free(w->sidx);
  free(w->xs);
  free(w->scores);
  free(w->acc);
}

/*
 * Present clusters, their sizes and the labeled row norms. Returns the
 * number of labeled rows, or 0 after setting *rc (SD_EINVAL for a row that
 * is not finite, SD_ENOMEM).
 */
static size_t eval_sil_scan(eval_sil *w, int k, int *rc) {
  size_t m = 0, dim = (size_t)w->dim;
  for (int j = 0; j < k; j++) w->cmap[j] = -1;
  for (size_t i = 0; i < w->n; i++) {
    const float *xi = w->x + i * dim;
    double nn = 0.0;
    w->xnorm[i] = 0.0;
    if (w->lab[i] < 0) continue;
    for (size_t e = 0; e < dim; e++) nn += (double)xi[e] * (double)xi[e];
    if (!isfinite(nn)) {
      *rc = SD_EINVAL;
      return 0;
    }
    w->xnorm[i] = nn;
    if (w->cmap[w->lab[i]] < 0) w->cmap[w->lab[i]] = w->kp++;
    m++;
  }
  w->csize = sd_calloc_n((size_t)w->kp, 1, sizeof(size_t));
  if (!w->csize) {
    *rc = SD_ENOMEM;
    return 0;
  }
  for (size_t i = 0; i < w->n; i++)
    if (w->lab[i] >= 0) w->csize[w->cmap[w->lab[i]]]++;
  return m;
}

/*
 * w->sidx = w->ns of the m labeled rows: all of them when ns == m, else a
 * uniform sample without replacement (Knuth's Algorithm S, one pass).
 */
static void eval_sil_sample(eval_sil *w, size_t m, uint64_t seed) {
  sd_rng rng;
  size_t got = 0, seen = 0;
  sd_rng_init(&rng, seed);
  for (size_t i = 0; i < w->n && got < w->ns; i++) {
    if (w->lab[i] < 0) continue;
    double need = (double)(w->ns - got), left = (double)(m - seen++);
    if (w->ns == m || sd_rng_unit(&rng) * left < need) w->sidx[got++] = i;
  }
}

/* Allocates the sample and the block buffers once kp and ns are known. */
static int eval_sil_buffers(eval_sil *w) {
  size_t rows = EVAL_ACC_BYTES / ((size_t)w->kp * sizeof(double));
  rows = rows < EVAL_SAMPLE_BLOCK ? rows : EVAL_SAMPLE_BLOCK;
  rows = rows < w->ns ? rows : w->ns;
  w->brows = rows < 1 ? 1 : (int)rows;
  w->sidx = sd_malloc_n(w->ns, 1, sizeof(size_t));
  w->xs = sd_malloc_n((size_t)w->brows, (size_t)w->dim, sizeof(float));
  w->scores = sd_malloc_n((size_t)w->brows, EVAL_XBLOCK, sizeof(float));
  w->acc = sd_malloc_n((size_t)w->brows, (size_t)w->kp, sizeof(double));
  if (!w->sidx || !w->xs || !w->scores || !w->acc) return SD_ENOMEM;
  return 0;
}

/* Distance from a dot product and the two squared norms. */
static double eval_sil_dist(int spherical, double sq_a, double sq_b,
                            float dot) {
  if (spherical) {
    double d = 1.0 - (double)dot;
    return d < 0.0 ? 0.0 : (d > 2.0 ? 2.0 : d);
  }
  double d2 = sq_a + sq_b - 2.0 * (double)dot;
  return d2 > 0.0 ? sqrt(d2) : 0.0;
}

/*
 * Adds the distances from the b gathered sample rows (sample positions
 * s0...) to the labeled rows among x[i0, i0 + c) into w->acc, leaving each
 * sampled row's distance to itself out.
 */
static void eval_sil_chunk(eval_sil *w, size_t s0, int b, size_t i0, int c) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, c, w->dim, 1.0f,
              w->xs, w->dim, w->x + i0 * (size_t)w->dim, w->dim, 0.0f,
              w->scores, c);
  for (int r = 0; r < b; r++) {
    size_t self = w->sidx[s0 + (size_t)r];
    double sq = w->xnorm[self];
    double *acc = w->acc + (size_t)r * (size_t)w->kp;
    const float *sc = w->scores + (size_t)r * (size_t)c;
    for (int j = 0; j < c; j++) {
      size_t i = i0 + (size_t)j;
      int32_t l = w->lab[i];
      if (l < 0 || i == self) continue;
      acc[w->cmap[l]] += eval_sil_dist(w->spherical, sq, w->xnorm[i], sc[j]);
    }
  }
}

/*
 * s(i) from the distance sums of row i to each present cluster: a over the
 * own cluster without i, b the smallest mean over the others; 0 for a
 * singleton cluster or when a = b = 0 (sklearn's nan_to_num).
 */
static double eval_sil_row(const double *acc, int own, const size_t *csize,
                           int kp) {
  double a, b = INFINITY;
  if (csize[own] <= 1) return 0.0;
  a = acc[own] / (double)(csize[own] - 1);
  for (int j = 0; j < kp; j++) {
    double mean = acc[j] / (double)csize[j];
    if (j != own && mean < b) b = mean;
  }
  double mx = a > b ? a : b;
  return mx > 0.0 ? (b - a) / mx : 0.0;
}

/* Sum of s(i) over the b sampled rows from sample position s0. */
static double eval_sil_block(eval_sil *w, size_t s0, int b) {
  size_t dim = (size_t)w->dim;
  double total = 0.0;
  for (int r = 0; r < b; r++)
    memcpy(w->xs + (size_t)r * dim, w->x + w->sidx[s0 + (size_t)r] * dim,
           dim * sizeof(float));
  memset(w->acc, 0, (size_t)b * (size_t)w->kp * sizeof(double));
  for (size_t i0 = 0; i0 < w->n; i0 += EVAL_XBLOCK) {
    int c = w->n - i0 < EVAL_XBLOCK ? (int)(w->n - i0) : EVAL_XBLOCK;
    eval_sil_chunk(w, s0, b, i0, c);
  }
  for (int r = 0; r < b; r++) {
    int own = w->cmap[w->lab[w->sidx[s0 + (size_t)r]]];
    total += eval_sil_row(w->acc + (size_t)r * (size_t)w->kp, own, w->csize,
                          w->kp);
  }
  return total;
}

int sd_silhouette(const float *x, size_t n, int dim, const int32_t *labels,
                  int k, int spherical, size_t max_sample, uint64_t seed,
                  double *out) {
  eval_sil w;
  int rc = eval_rows_check(x, n, dim, labels, k, out);
  if (rc == 0 && max_sample == 0) rc = SD_EINVAL;
  if (rc) return rc;
  *out = 0.0;
  memset(&w, 0, sizeof w);
  w.x = x;
  w.lab = labels;
  w.n = n;
  w.dim = dim;
  w.spherical = spherical ? 1 : 0;
  w.cmap = sd_malloc_n((size_t)k, 1, sizeof(int32_t));
  w.xnorm = sd_malloc_n(n, 1, sizeof(double));
  if (!w.cmap || !w.xnorm) rc = SD_ENOMEM;
  size_t m = rc ? 0 : eval_sil_scan(&w, k, &rc);
  if (rc == 0 && w.kp < 2) rc = SD_EINVAL; /* undefined, sklearn raises */
  w.ns = m < max_sample ? m : max_sample;
  if (rc == 0) rc = eval_sil_buffers(&w);
  if (rc == 0) {
    double total = 0.0;
    eval_sil_sample(&w, m, seed);
    for (size_t s0 = 0; s0 < w.ns; s0 += (size_t)w.brows) {
      int b = w.ns - s0 < (size_t)w.brows ? (int)(w.ns - s0) : w.brows;
      total += eval_sil_block(&w, s0, b);
    }
    *out = total / (double)w.ns;
  }
  eval_sil_free(&w);
  return rc;
}

/* ---- Davies-Bouldin ---- */

typedef struct {
  int kp;          /* clusters with at least one labeled row */
  int *pres;       /* kp: their ids, increasing */
  size_t *cnt;     /* k: labeled rows per cluster */
  double *intra;   /* k: mean distance of a cluster's rows to its centroid */
  double *cd;      /* kp x dim: present centroids in double */
  double *cn;      /* kp: their squared norms */
  double *scores;  /* brows x kp: dgemm output */
  int brows;       /* centroid rows per dgemm block */
} eval_db;

static void eval_db_free(eval_db *w) {
  free(w->pres);
  free(w->cnt);
  free(w->intra);
  free(w->cd);
  free(w->cn);
  free(w->scores);
}

/* Counts and mean member-to-centroid distances; SD_EINVAL if not finite. */
static int eval_db_intra(eval_db *w, const float *x, size_t n, int dim,
                         const int32_t *labels, const float *centroids) {
  size_t d = (size_t)dim;
  for (size_t i = 0; i < n; i++) {
    if (labels[i] < 0) continue;
    const float *xi = x + i * d, *c = centroids + (size_t)labels[i] * d;
    double s = 0.0;
    for (size_t e = 0; e < d; e++) {
      double t = (double)xi[e] - (double)c[e];
      s += t * t;
    }
    if (!isfinite(s)) return SD_EINVAL;
    w->intra[labels[i]] += sqrt(s);
    w->cnt[labels[i]]++;
  }
  return 0;
}

/*
 * Lists the present clusters and copies their centroids to double, with
 * norms. SD_EINVAL with fewer than two, SD_ENOMEM.
 */
static int eval_db_centroids(eval_db *w, const float *centroids, int dim,
                             int k) {
  size_t d = (size_t)dim;
  for (int j = 0; j < k; j++) w->kp += w->cnt[j] > 0;
  if (w->kp < 2) return SD_EINVAL; /* undefined, sklearn raises */
  size_t rows = EVAL_SCRATCH / ((size_t)w->kp * sizeof(double));
  rows = rows < (size_t)w->kp ? rows : (size_t)w->kp;
  w->brows = rows < 1 ? 1 : (int)rows;
  w->pres = sd_malloc_n((size_t)w->kp, 1, sizeof(int));
  w->cd = sd_malloc_n((size_t)w->kp, d, sizeof(double));
  w->cn = sd_malloc_n((size_t)w->kp, 1, sizeof(double));
  w->scores = sd_malloc_n((size_t)w->brows, (size_t)w->kp, sizeof(double));
  if (!w->pres || !w->cd || !w->cn || !w->scores) return SD_ENOMEM;
  for (int j = 0, q = 0; j < k; j++) {
    if (w->cnt[j] == 0) continue;
    double *cq = w->cd + (size_t)q * d, nn = 0.0;
    w->intra[j] /= (double)w->cnt[j];
    for (size_t e = 0; e < d; e++) {
      cq[e] = centroids[(size_t)j * d + e];
      nn += cq[e] * cq[e];
    }
    if (!isfinite(nn)) return SD_EINVAL;
    w->cn[q] = nn;
    w->pres[q++] = j;
  }
  return 0;
}

/*
 * For the b present centroids from q0: adds to *sum each one's largest
 * (intra_i + intra_j) / d_ij over j != i (0 where d_ij = 0, as sklearn's
 * inf); sets *spread when some d_ij exceeds EVAL_ATOL.
 */
static void eval_db_block(eval_db *w, int dim, int q0, int b, double *sum,
                          int *spread) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, w->kp, dim, 1.0,
              w->cd + (size_t)q0 * (size_t)dim, dim, w->cd, dim, 0.0,
              w->scores, w->kp);
  for (int r = 0; r < b; r++) {
    int qi = q0 + r;
    double si = w->intra[w->pres[qi]], best = 0.0;
    const double *sc = w->scores + (size_t)r * (size_t)w->kp;
    for (int qj = 0; qj < w->kp; qj++) {
      if (qj == qi) continue;
      double d2 = w->cn[qi] + w->cn[qj] - 2.0 * sc[qj];
      double d = d2 > 0.0 ? sqrt(d2) : 0.0;
      if (d > EVAL_ATOL) *spread = 1;
      if (d > 0.0) {
        double v = (si + w->intra[w->pres[qj]]) / d;
        best = v > best ? v : best;
      }
    }
    *sum += best;
  }
}

int sd_davies_bouldin(const float *x, size_t n, int dim,
                      const int32_t *labels, const float *centroids, int k,
                      double *out) {
  eval_db w;
  int rc = eval_rows_check(x, n, dim, labels, k, out);
  if (rc == 0 && !centroids) rc = SD_EINVAL;
  if (rc) return rc;
  *out = 0.0;
  memset(&w, 0, sizeof w);
  w.cnt = sd_calloc_n((size_t)k, 1, sizeof(size_t));
  w.intra = sd_calloc_n((size_t)k, 1, sizeof(double));
  rc = (!w.cnt || !w.intra) ? SD_ENOMEM : 0;
  if (rc == 0) rc = eval_db_intra(&w, x, n, dim, labels, centroids);
  if (rc == 0) rc = eval_db_centroids(&w, centroids, dim, k);
  if (rc == 0) {
    double sum = 0.0;
    int spread = 0, any_intra = 0;
    for (int q = 0; q < w.kp; q++)
      any_intra |= w.intra[w.pres[q]] > EVAL_ATOL;
    for (int q0 = 0; any_intra && q0 < w.kp; q0 += w.brows) {
      int b = w.kp - q0 < w.brows ? w.kp - q0 : w.brows;
      eval_db_block(&w, dim, q0, b, &sum, &spread);
    }
    *out = any_intra && spread ? sum / (double)w.kp : 0.0; /* sklearn */
  }
  eval_db_free(&w);
  return rc;
}
