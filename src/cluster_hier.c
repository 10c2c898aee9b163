/*
 * cluster_hier.c -- hierarchical clustering: Ward linkage over k-means
 * micro-clusters, keeping the whole merge tree (cluster_algos.h).
 *
 * Ward (1963) merges, at each step, the two clusters whose union increases
 * the within-cluster sum of squares the least:
 *   cost(A, B) = |A||B| / (|A| + |B|) * ||mean(A) - mean(B)||^2.
 * Running it on every row is O(n^2) memory, so the rows are first grouped
 * into m micro-clusters with k-means (cluster_kmeans.c; spherical when the
 * rows are unit vectors), and Ward runs on the micro-clusters weighted by
 * their sizes. The leaf "centroids" kept in the tree are the plain means of
 * their rows (never re-normalised), so that the costs above are exact for
 * the union of the rows, and so are the size-weighted means a cut produces.
 *
 * The initial m x m costs come from one cblas_sgemm per block of leaves, on
 * centroids centred at their weighted mean (less cancellation in
 * ||a||^2 + ||b||^2 - 2 a.b). Agglomeration is the nearest-neighbour chain
 * algorithm (Murtagh 1983; Müllner 2011, "Modern hierarchical, agglomerative
 * clustering algorithms") with the Lance-Williams update for Ward, which is
 * exact for any sizes; memory is m(m-1)/2 doubles, time O(m^2). The chain
 * finds merges out of order, so, as scipy does, they are stably sorted by
 * cost and relabelled with a union-find (node m + i is made by merge i).
 * Rounding may make a merge look cheaper than one below it; its cost is
 * raised to its children's, which keeps the sorted order a valid tree.
 *
 * Deterministic: same input, options and BLAS give the same tree.
 */
#include "segmentd/cluster_algos.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "segmentd/cluster_kmeans.h"
#include "segmentd/err.h"

#define HIER_MAX_DIM 65536      /* same sanity cap as k-means */
#define HIER_MAX_MICRO 4096     /* m(m-1)/2 doubles: 64 MiB at the cap */
#define HIER_DEFAULT_MICRO 500  /* micro-clusters when o->micro == 0 */
#define HIER_BLOCK 256          /* leaves per sgemm block */
#define HIER_KMEANS_ITER 25     /* Lloyd iterations for the micro step */

/* A merge as the chain finds it: slots x, y (y keeps the union). */
typedef struct {
  int x, y;
  double d;
  int order; /* discovery order, for a stable sort */
} hier_raw;

/* malloc(a * b * size) with the product checked; NULL on overflow. */
static void *hier_alloc(size_t a, size_t b, size_t size) {
  if (a == 0 || b == 0) return malloc(1);
  if (b > SIZE_MAX / a || size > SIZE_MAX / (a * b)) return NULL;
  return malloc(a * b * size);
}

/* Index of the pair (i, j), i != j, in the condensed m x m matrix. */
static size_t hier_idx(size_t i, size_t j, size_t m) {
  if (i > j) {
    size_t t = i;
    i = j;
    j = t;
  }
  return i * m - i * (i + 1) / 2 + (j - i - 1);
}

/* ---- micro-clusters ---- */

/*
 * Keeps the non-empty k-means clusters (k-means may leave some empty on
 * duplicated rows) as leaves: leaf_of, leaf_sizes and the plain means of
 * their rows. Sets t->m.
 */
static int hier_leaves(const float *x, size_t n, int dim,
                       const sd_kmeans_result *km, sd_tree *t) {
  size_t d = (size_t)dim;
  int64_t *cnt = calloc((size_t)km->k, sizeof(int64_t));
  int32_t *map = hier_alloc((size_t)km->k, 1, sizeof(int32_t));
  double *sums = NULL;
  int m = 0, rc = SD_ENOMEM;
  if (!cnt || !map) goto done;
  for (size_t i = 0; i < n; i++) cnt[km->assign[i]]++;
  for (int j = 0; j < km->k; j++) map[j] = cnt[j] > 0 ? m++ : -1;
  sums = hier_alloc((size_t)m, d, sizeof(double));
  t->leaf_centroids = hier_alloc((size_t)m, d, sizeof(float));
  t->leaf_sizes = hier_alloc((size_t)m, 1, sizeof(int64_t));
  if (!sums || !t->leaf_centroids || !t->leaf_sizes) goto done;
  memset(sums, 0, (size_t)m * d * sizeof(double));
  for (int j = 0; j < km->k; j++)
    if (map[j] >= 0) t->leaf_sizes[map[j]] = cnt[j];
  for (size_t i = 0; i < n; i++) {
    int32_t l = map[km->assign[i]];
    double *s = sums + (size_t)l * d;
    t->leaf_of[i] = l;
    for (size_t e = 0; e < d; e++) s[e] += x[i * d + e];
  }
  for (int l = 0; l < m; l++)
    for (size_t e = 0; e < d; e++)
      t->leaf_centroids[(size_t)l * d + e] =
          (float)(sums[(size_t)l * d + e] / (double)t->leaf_sizes[l]);
  t->m = m;
  rc = 0;
done:
  free(cnt);
  free(map);
  free(sums);
  return rc;
}

/* Runs k-means with m_want centres and turns the result into leaves. */
static int hier_micro(const float *x, size_t n, int dim, const sd_tree_opts *o,
                      int m_want, sd_tree *t) {
  sd_kmeans_opts ko = sd_kmeans_defaults(m_want);
  sd_kmeans_result km;
  ko.restarts = 1; /* micro-clusters need coverage, not the best optimum */
  ko.max_iter = HIER_KMEANS_ITER;
  ko.seed = o->seed;
  ko.spherical = o->spherical ? 1 : 0;
  int rc = sd_kmeans_fit(x, n, dim, &ko, &km);
  if (rc) return rc;
  rc = hier_leaves(x, n, dim, &km, t);
  sd_kmeans_result_free(&km);
  return rc;
}

/* ---- initial Ward costs ---- */

/*
 * Copies the leaf centroids centred at their size-weighted mean into c and
 * their squared norms into cn; mean is dim doubles of scratch.
 */
static void hier_center(const sd_tree *t, double *mean, float *c, double *cn) {
  size_t d = (size_t)t->dim, m = (size_t)t->m;
  double total = 0.0;
  for (size_t l = 0; l < m; l++) total += (double)t->leaf_sizes[l];
  memset(mean, 0, d * sizeof(double));
  for (size_t l = 0; l < m; l++)
    for (size_t e = 0; e < d; e++)
      mean[e] += (double)t->leaf_sizes[l] / total *
                 t->leaf_centroids[l * d + e];
  for (size_t l = 0; l < m; l++) {
    double nn = 0.0;
    for (size_t e = 0; e < d; e++) {
      float v = (float)(t->leaf_centroids[l * d + e] - mean[e]);
      c[l * d + e] = v;
      nn += (double)v * v;
    }
    cn[l] = nn;
  }
}

/* D (condensed) = Ward costs between leaves, via sgemm per block of rows. */
static int hier_costs(const sd_tree *t, double *D) {
  size_t m = (size_t)t->m;
  int dim = t->dim;
  float *c = hier_alloc(m, (size_t)dim, sizeof(float));
  double *cn = hier_alloc(m, 1, sizeof(double));
  float *g = hier_alloc(HIER_BLOCK, m, sizeof(float));
  double *mean = hier_alloc((size_t)dim, 1, sizeof(double));
  if (!c || !cn || !g || !mean) {
    free(c);
    free(cn);
    free(g);
    free(mean);
    return SD_ENOMEM;
  }
  hier_center(t, mean, c, cn);
  for (size_t i0 = 0; i0 < m; i0 += HIER_BLOCK) {
    int b = m - i0 < HIER_BLOCK ? (int)(m - i0) : HIER_BLOCK;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, (int)m, dim, 1.0f,
                c + i0 * (size_t)dim, dim, c, dim, 0.0f, g, (int)m);
    for (int r = 0; r < b; r++) {
      size_t i = i0 + (size_t)r;
      double ni = (double)t->leaf_sizes[i];
      for (size_t j = i + 1; j < m; j++) {
        double nj = (double)t->leaf_sizes[j];
        double sq = cn[i] + cn[j] - 2.0 * g[(size_t)r * m + j];
        D[hier_idx(i, j, m)] = ni * nj / (ni + nj) * (sq > 0.0 ? sq : 0.0);
      }
    }
  }
  free(c);
  free(cn);
  free(g);
  free(mean);
  return 0;
}

/* ---- nearest-neighbour chain ---- */

/*
 * Lance-Williams update for Ward after slots x and y merged into y:
 * cost(i, x+y) = ((ni+nx) c(i,x) + (ni+ny) c(i,y) - ni c(x,y)) / (ni+nx+ny).
 */
static void hier_update(double *D, size_t m, const double *w, size_t x,
                        size_t y, double dxy) {
  double nx = w[x], ny = w[y];
  for (size_t i = 0; i < m; i++) {
    if (w[i] == 0.0 || i == x || i == y) continue;
    double ni = w[i];
    size_t iy = hier_idx(i, y, m);
    D[iy] = ((ni + nx) * D[hier_idx(i, x, m)] + (ni + ny) * D[iy] - ni * dxy) /
            (ni + nx + ny);
  }
}

/*
 * Grows the chain from its tip until the tip and the element before it are
 * reciprocal nearest neighbours (ties prefer the previous element, then the
 * lowest slot, so the chain cannot cycle). Returns the new chain length;
 * *dmin is their cost.
 */
static int hier_grow(const double *D, size_t m, const double *w, int *chain,
                     int len, double *dmin) {
  for (;;) {
    size_t x = (size_t)chain[len - 1], y = 0;
    double best = INFINITY;
    if (len > 1) {
      y = (size_t)chain[len - 2];
      best = D[hier_idx(x, y, m)];
    }
    for (size_t i = 0; i < m; i++) {
      if (w[i] == 0.0 || i == x) continue;
      double v = D[hier_idx(x, i, m)];
      if (v < best) {
        best = v;
        y = i;
      }
    }
    if (len > 1 && y == (size_t)chain[len - 2]) {
      *dmin = best;
      return len;
    }
    chain[len++] = (int)y;
  }
}

/*
 * Ward agglomeration of the m leaves (weights w, consumed) into m - 1 raw
 * merges, in discovery order, each no cheaper than the merges below it.
 */
static int hier_nnchain(double *D, size_t m, double *w, hier_raw *raw) {
  int *chain = hier_alloc(m, 1, sizeof(int));
  double *height = calloc(m, sizeof(double));
  if (!chain || !height) {
    free(chain);
    free(height);
    return SD_ENOMEM;
  }
  int len = 0;
  for (size_t k = 0; k + 1 < m; k++) {
    double d;
    if (len == 0) {
      size_t first = 0;
      while (w[first] == 0.0) first++;
      chain[len++] = (int)first;
    }
    len = hier_grow(D, m, w, chain, len, &d);
    size_t x = (size_t)chain[len - 1], y = (size_t)chain[len - 2];
    len -= 2;
    if (x > y) {
      size_t tmp = x;
      x = y;
      y = tmp;
    }
    d = fmax(d, fmax(height[x], height[y]));
    hier_update(D, m, w, x, y, D[hier_idx(x, y, m)]);
    w[y] += w[x];
    w[x] = 0.0;
    height[y] = d;
    raw[k] = (hier_raw){(int)x, (int)y, d, (int)k};
  }
  free(chain);
  free(height);
  return 0;
}

static int hier_raw_cmp(const void *pa, const void *pb) {
  const hier_raw *a = pa, *b = pb;
  if (a->d != b->d) return a->d < b->d ? -1 : 1;
  return (a->order > b->order) - (a->order < b->order);
}

/* Root of node v in the union-find parent[], halving paths. */
static int hier_find(int *parent, int v) {
  while (parent[v] != v) {
    parent[v] = parent[parent[v]];
    v = parent[v];
  }
  return v;
}

/*
 * Sorts the raw merges by cost (stable) and writes them as tree merges:
 * the nodes holding slots x and y, the new node m + i, its size.
 */
static int hier_relabel(hier_raw *raw, const sd_tree *t, sd_merge *out) {
  int m = t->m;
  size_t nodes = 2 * (size_t)m - 1;
  int *parent = hier_alloc(nodes, 1, sizeof(int));
  int64_t *size = hier_alloc(nodes, 1, sizeof(int64_t));
  if (!parent || !size) {
    free(parent);
    free(size);
    return SD_ENOMEM;
  }
  qsort(raw, (size_t)m - 1, sizeof *raw, hier_raw_cmp);
  for (int v = 0; v < (int)nodes; v++) parent[v] = v;
  for (int l = 0; l < m; l++) size[l] = t->leaf_sizes[l];
  for (int i = 0; i + 1 < m; i++) {
    int a = hier_find(parent, raw[i].x), b = hier_find(parent, raw[i].y);
    int v = m + i;
    parent[a] = parent[b] = v;
    size[v] = size[a] + size[b];
    out[i] = (sd_merge){a < b ? a : b, a < b ? b : a, raw[i].d, size[v]};
  }
  free(parent);
  free(size);
  return 0;
}

/* Ward tree over the leaves already in t: fills t->merges. */
static int hier_ward(sd_tree *t) {
  size_t m = (size_t)t->m;
  size_t pairs = m * (m - 1) / 2; /* m <= HIER_MAX_MICRO: no overflow */
  double *D = hier_alloc(pairs, 1, sizeof(double));
  double *w = hier_alloc(m, 1, sizeof(double));
  hier_raw *raw = hier_alloc(m - 1, 1, sizeof(hier_raw));
  int rc = SD_ENOMEM;
  t->merges = hier_alloc(m - 1, 1, sizeof(sd_merge));
  if (!D || !w || !raw || !t->merges) goto done;
  for (size_t l = 0; l < m; l++) w[l] = (double)t->leaf_sizes[l];
  rc = hier_costs(t, D);
  if (rc == 0) rc = hier_nnchain(D, m, w, raw);
  if (rc == 0) rc = hier_relabel(raw, t, t->merges);
done:
  free(D);
  free(w);
  free(raw);
  return rc;
}

/* ---- public API: build ---- */

static int hier_check(const float *x, size_t n, int dim,
                      const sd_tree_opts *o) {
  if (!x || !o || n == 0 || dim < 1 || dim > HIER_MAX_DIM) return SD_EINVAL;
  if (n > SIZE_MAX / sizeof(double) / (size_t)dim) return SD_EINVAL;
  if (o->micro < 0 || o->micro > HIER_MAX_MICRO) return SD_EINVAL;
  return 0;
}

int sd_tree_build(const float *x, size_t n, int dim, const sd_tree_opts *o,
                  sd_tree *out) {
  if (!out) return SD_EINVAL;
  memset(out, 0, sizeof *out);
  int rc = hier_check(x, n, dim, o);
  if (rc) return rc;
  int m = o->micro > 0 ? o->micro : HIER_DEFAULT_MICRO;
  if ((size_t)m > n) m = (int)n;
  out->dim = dim;
  out->n = n;
  out->leaf_of = hier_alloc(n, 1, sizeof(int32_t));
  if (!out->leaf_of) rc = SD_ENOMEM;
  if (rc == 0) rc = hier_micro(x, n, dim, o, m, out);
  if (rc == 0) rc = hier_ward(out);
  if (rc) sd_tree_free(out);
  return rc;
}

void sd_tree_free(sd_tree *t) {
  if (!t) return;
  free(t->leaf_centroids);
  free(t->leaf_sizes);
  free(t->leaf_of);
  free(t->merges);
  memset(t, 0, sizeof *t);
}

/* ---- public API: cut ---- */

/*
 * Applies the first `applied` merges with a union-find over leaves and
 * numbers the resulting groups by their lowest leaf: clab[leaf] in
 * [0, m - applied). SD_EINVAL if a merge names a node not made yet.
 */
static int hier_groups(const sd_tree *t, int applied, int32_t *clab) {
  int m = t->m, next = 0, rc = 0;
  int *parent = hier_alloc((size_t)m, 1, sizeof(int));
  int *rep = hier_alloc((size_t)m + (size_t)applied, 1, sizeof(int));
  if (!parent || !rep) rc = SD_ENOMEM;
  for (int l = 0; rc == 0 && l < m; l++) parent[l] = rep[l] = l;
  for (int i = 0; rc == 0 && i < applied; i++) {
    int a = t->merges[i].a, b = t->merges[i].b;
    if (a < 0 || b < 0 || a >= m + i || b >= m + i) {
      rc = SD_EINVAL;
      break;
    }
    int ra = hier_find(parent, rep[a]), rb = hier_find(parent, rep[b]);
    int lo = ra < rb ? ra : rb;
    parent[ra] = parent[rb] = lo;
    rep[m + i] = lo;
  }
  for (int l = 0; rc == 0 && l < m; l++) clab[l] = -1;
  for (int l = 0; rc == 0 && l < m; l++) {
    int r = hier_find(parent, l);
    if (clab[r] < 0) clab[r] = next++;
    clab[l] = clab[r];
  }
  free(parent);
  free(rep);
  return rc;
}

/* Size-weighted means of the leaves of each group, unit when spherical. */
static int hier_cut_centroids(const sd_tree *t, const int32_t *clab, int k,
                              int spherical, float *cent) {
  size_t d = (size_t)t->dim;
  double *sums = hier_alloc((size_t)k, d, sizeof(double));
  double *wsum = calloc((size_t)k, sizeof(double));
  if (!sums || !wsum) {
    free(sums);
    free(wsum);
    return SD_ENOMEM;
  }
  memset(sums, 0, (size_t)k * d * sizeof(double));
  for (int l = 0; l < t->m; l++) {
    double wl = (double)t->leaf_sizes[l], *s = sums + (size_t)clab[l] * d;
    wsum[clab[l]] += wl;
    for (size_t e = 0; e < d; e++)
      s[e] += wl * t->leaf_centroids[(size_t)l * d + e];
  }
  for (int c = 0; c < k; c++) {
    double *s = sums + (size_t)c * d, scale = 1.0 / wsum[c], nn = 0.0;
    for (size_t e = 0; e < d; e++) nn += s[e] * s[e];
    if (spherical && nn > 0.0) scale = 1.0 / sqrt(nn);
    for (size_t e = 0; e < d; e++)
      cent[(size_t)c * d + e] = (float)(s[e] * scale);
  }
  free(sums);
  free(wsum);
  return 0;
}

static int hier_cut_check(const sd_tree *t, int k, double distance,
                          const int32_t *labels, float **centroids,
                          const int *k_out) {
  if (!t || !labels || !centroids || !k_out) return SD_EINVAL;
  if (t->m < 1 || t->dim < 1 || !t->leaf_centroids || !t->leaf_sizes ||
      (t->n > 0 && !t->leaf_of) || (t->m > 1 && !t->merges))
    return SD_EINVAL;
  if (k < 0 || k > t->m || (k == 0 && isnan(distance))) return SD_EINVAL;
  return 0;
}

int sd_tree_cut(const sd_tree *t, int k, double distance, int spherical,
                int32_t *labels, float **centroids, int *k_out) {
  int rc = hier_cut_check(t, k, distance, labels, centroids, k_out);
  if (centroids) *centroids = NULL;
  if (k_out) *k_out = 0;
  if (rc) return rc;
  int applied = t->m - k;
  if (k == 0)
    for (applied = 0; applied + 1 < t->m; applied++)
      if (!(t->merges[applied].distance <= distance)) break;
  int kk = t->m - applied;
  int32_t *clab = hier_alloc((size_t)t->m, 1, sizeof(int32_t));
  float *cent = hier_alloc((size_t)kk, (size_t)t->dim, sizeof(float));
  rc = clab && cent ? hier_groups(t, applied, clab) : SD_ENOMEM;
  if (rc == 0) rc = hier_cut_centroids(t, clab, kk, spherical, cent);
  for (size_t i = 0; rc == 0 && i < t->n; i++)
    if (t->leaf_of[i] < 0 || t->leaf_of[i] >= t->m) rc = SD_EINVAL;
  for (size_t i = 0; rc == 0 && i < t->n; i++) labels[i] = clab[t->leaf_of[i]];
  free(clab);
  if (rc) {
    free(cent);
    return rc;
  }
  *centroids = cent;
  *k_out = kk;
  return 0;
}
