/*
 * test_cluster_algos.c -- hierarchical (cluster_hier.c) and density
 * (cluster_density.c) clustering: planted blobs are recovered (Euclidean
 * and spherical), Ward merge costs match a brute-force Ward on single
 * points, cuts by k and by distance agree, density clustering leaves the
 * background as noise and matches a brute-force HDBSCAN (dense Prim in
 * double precision, condensed tree built as the hdbscan library does),
 * the sampling path, determinism and bad arguments.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "testdata.h"
#include "segmentd/cluster_algos.h"
#include "segmentd/err.h"

/* ---- deterministic test data ---- */

static void *xmalloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) abort();
  return p;
}

/*
 * The first n_blob rows: `blobs` Gaussian blobs (label i % blobs, centres
 * uniform in [-spread, spread]^dim, noise sigma); then n_bg background rows
 * uniform in [-bg, bg]^dim (label -1). With `unit` everything is on the
 * unit sphere (centres random directions, background random directions).
 */
static float *make_data(size_t n_blob, size_t n_bg, int dim, int blobs,
                        double spread, double sigma, double bg, int unit,
                        int32_t *truth) {
  float *c = xmalloc((size_t)blobs * dim * sizeof(float));
  float *x = xmalloc((n_blob + n_bg) * dim * sizeof(float));
  for (int b = 0; b < blobs; b++) {
    for (int e = 0; e < dim; e++)
      c[(size_t)b * dim + e] =
          (float)(unit ? td_normal() : spread * (2.0 * td_unit() - 1.0));
    if (unit) td_normalise(c + (size_t)b * dim, dim);
  }
  for (size_t i = 0; i < n_blob + n_bg; i++) {
    float *xi = x + i * dim;
    int b = i < n_blob ? (int)(i % (size_t)blobs) : -1;
    for (int e = 0; e < dim; e++) {
      if (b >= 0)
        xi[e] = c[(size_t)b * dim + e] + (float)(sigma * td_normal());
      else
        xi[e] = (float)(unit ? td_normal() : bg * (2.0 * td_unit() - 1.0));
    }
    if (unit) td_normalise(xi, dim);
    truth[i] = b;
  }
  free(c);
  return x;
}

/* 1 if the labels are the planted ones up to renaming (-1 only to -1). */
static int same_partition(const int32_t *found, const int32_t *truth,
                          size_t n) {
  enum { MAXL = 256 };
  int32_t map[MAXL], back[MAXL];
  for (int j = 0; j < MAXL; j++) map[j] = back[j] = -1;
  for (size_t i = 0; i < n; i++) {
    int32_t t = truth[i], f = found[i];
    if (t < -1 || f < -1 || t >= MAXL || f >= MAXL) return 0;
    if ((t < 0) != (f < 0)) return 0;
    if (t < 0) continue;
    if (map[t] < 0 && back[f] < 0) {
      map[t] = f;
      back[f] = t;
    }
    if (map[t] != f || back[f] != t) return 0;
  }
  return 1;
}

/*
 * Density checks on planted data: each blob's labelled rows carry one
 * label, distinct blobs distinct labels; returns the share of blob rows
 * labelled, *bg_noise the share of background rows labelled -1.
 */
static double blob_recall(const int32_t *lab, const int32_t *truth, size_t n,
                          int blobs, int *consistent, double *bg_noise) {
  int32_t got[64];
  size_t in = 0, n_blob = 0, bg = 0, bg_n = 0;
  for (int b = 0; b < blobs; b++) got[b] = -1;
  *consistent = 1;
  for (size_t i = 0; i < n; i++) {
    if (truth[i] < 0) {
      bg_n++;
      bg += lab[i] < 0;
      continue;
    }
    n_blob++;
    if (lab[i] < 0) continue;
    in++;
    if (got[truth[i]] < 0) got[truth[i]] = lab[i];
    if (got[truth[i]] != lab[i]) *consistent = 0;
  }
  for (int a = 0; a < blobs; a++)
    for (int b = a + 1; b < blobs; b++)
      if (got[a] >= 0 && got[a] == got[b]) *consistent = 0;
  *bg_noise = bg_n ? (double)bg / (double)bg_n : 1.0;
  return (double)in / (double)n_blob;
}

/*
 * Rows whose label differs from the one its reference cluster mostly maps
 * to (reference noise maps to noise). Labels below 256.
 */
static size_t mismatches(const int32_t *found, const int32_t *ref, size_t n) {
  enum { MAXL = 257 };
  size_t *cnt = calloc((size_t)MAXL * MAXL, sizeof(size_t)), bad = 0;
  int32_t map[MAXL];
  if (!cnt) abort();
  for (size_t i = 0; i < n; i++)
    if (found[i] >= -1 && found[i] < MAXL - 1 && ref[i] >= -1 &&
        ref[i] < MAXL - 1)
      cnt[(size_t)(ref[i] + 1) * MAXL + (size_t)(found[i] + 1)]++;
  for (int r = 0; r < MAXL; r++) {
    map[r] = 0;
    for (int f = 1; f < MAXL && r > 0; f++)
      if (cnt[(size_t)r * MAXL + f] > cnt[(size_t)r * MAXL + map[r]])
        map[r] = f;
  }
  for (size_t i = 0; i < n; i++)
    bad += ref[i] < -1 || ref[i] >= MAXL - 1 || found[i] + 1 != map[ref[i] + 1];
  free(cnt);
  return bad;
}

/* Mean of the rows labelled c, normalised when unit. */
static void label_mean(const float *x, const int32_t *lab, size_t n, int dim,
                       int32_t c, int unit, double *out) {
  size_t cnt = 0;
  for (int e = 0; e < dim; e++) out[e] = 0.0;
  for (size_t i = 0; i < n; i++) {
    if (lab[i] != c) continue;
    cnt++;
    for (int e = 0; e < dim; e++) out[e] += x[i * dim + e];
  }
  double nn = 0.0;
  for (int e = 0; e < dim; e++) nn += out[e] * out[e];
  double scale = unit ? 1.0 / sqrt(nn) : 1.0 / (double)(cnt ? cnt : 1);
  for (int e = 0; e < dim; e++) out[e] *= scale;
}

/* Largest |centroid - mean of its rows| over all clusters. */
static double centroid_err(const float *x, const int32_t *lab, size_t n,
                           int dim, const float *cent, int k, int unit) {
  double err = 0.0, *mean = xmalloc((size_t)dim * sizeof(double));
  for (int c = 0; c < k; c++) {
    label_mean(x, lab, n, dim, c, unit, mean);
    for (int e = 0; e < dim; e++)
      err = fmax(err, fabs(mean[e] - cent[(size_t)c * dim + e]));
  }
  free(mean);
  return err;
}

/* ---- brute-force Ward on single points ---- */

/* Merge costs of plain Ward on the n rows, in merge order. */
static void brute_ward(const float *x, int n, int dim, double *costs) {
  double *c = xmalloc((size_t)n * dim * sizeof(double));
  double *w = xmalloc((size_t)n * sizeof(double));
  for (int i = 0; i < n; i++) {
    w[i] = 1.0;
    for (int e = 0; e < dim; e++) c[(size_t)i * dim + e] = x[i * dim + e];
  }
  for (int step = 0; step + 1 < n; step++) {
    double best = INFINITY;
    int ba = -1, bb = -1;
    for (int a = 0; a < n; a++)
      for (int b = a + 1; b < n && w[a] > 0; b++) {
        if (w[b] == 0) continue;
        double sq = 0.0;
        for (int e = 0; e < dim; e++) {
          double d = c[(size_t)a * dim + e] - c[(size_t)b * dim + e];
          sq += d * d;
        }
        double cost = w[a] * w[b] / (w[a] + w[b]) * sq;
        if (cost < best) best = cost, ba = a, bb = b;
      }
    for (int e = 0; e < dim; e++)
      c[(size_t)bb * dim + e] = (w[ba] * c[(size_t)ba * dim + e] +
                                 w[bb] * c[(size_t)bb * dim + e]) /
                                (w[ba] + w[bb]);
    w[bb] += w[ba];
    w[ba] = 0;
    costs[step] = best;
  }
  free(c);
  free(w);
}

/* ---- brute-force HDBSCAN ---- */

typedef struct {
  int a, b;
  double w;
} ref_edge;

/* By weight, then ends (a < b), the order cluster_density.c uses. */
static int ref_edge_cmp(const void *pa, const void *pb) {
  const ref_edge *a = pa, *b = pb;
  if (a->w != b->w) return (a->w > b->w) - (a->w < b->w);
  if (a->a != b->a) return (a->a > b->a) - (a->a < b->a);
  return (a->b > b->b) - (a->b < b->b);
}

static int dbl_cmp(const void *pa, const void *pb) {
  double a = *(const double *)pa, b = *(const double *)pb;
  return (a > b) - (a < b);
}

static double ref_dist(const float *x, int dim, int i, int j, int unit) {
  double s = 0.0;
  for (int e = 0; e < dim; e++) {
    double a = x[(size_t)i * dim + e], b = x[(size_t)j * dim + e];
    s += unit ? a * b : (a - b) * (a - b);
  }
  return unit ? fmax(0.0, 1.0 - s) : sqrt(s);
}

/* Core distances and the MST of mutual reachability by dense Prim. */
static void ref_mst(const float *x, int n, int dim, int ms, int unit,
                    ref_edge *mst) {
  double *core = xmalloc((size_t)n * sizeof(double));
  double *row = xmalloc((size_t)n * sizeof(double));
  double *key = xmalloc((size_t)n * sizeof(double));
  int *from = xmalloc((size_t)n * sizeof(int)), cur = 0;
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < n; j++) row[j] = ref_dist(x, dim, i, j, unit);
    row[i] = -1.0; /* self sorts first */
    qsort(row, (size_t)n, sizeof(double), dbl_cmp);
    core[i] = ms >= 2 ? row[ms - 1] : 0.0;
    key[i] = INFINITY;
  }
  key[0] = -1.0;
  for (int step = 1; step < n; step++) {
    int next = -1;
    for (int j = 0; j < n; j++) {
      if (key[j] < 0) continue;
      double m = fmax(ref_dist(x, dim, cur, j, unit), fmax(core[cur], core[j]));
      if (m < key[j]) key[j] = m, from[j] = cur;
      if (next < 0 || key[j] < key[next]) next = j;
    }
    int lo = from[next] < next ? from[next] : next;
    mst[step - 1] = (ref_edge){lo, from[next] + next - lo, key[next]};
    key[next] = -1.0;
    cur = next;
  }
  free(core);
  free(row);
  free(key);
  free(from);
}

/* Condensed tree rows, as in hdbscan's condense_tree. */
typedef struct {
  int parent, child, size;
  double lambda;
} ref_row;

typedef struct {
  int n, *left, *right, *size; /* linkage */
  double *dist;
  ref_row *rows;
  int nrows;
} ref_tree;

static int ref_size(const ref_tree *t, int v) {
  return v < t->n ? 1 : t->size[v - t->n];
}

/* Every point under node v falls out of cluster `from` at lambda. */
static void ref_fall(ref_tree *t, int v, int from, double lambda, int *stack) {
  int top = 0;
  stack[top++] = v;
  while (top > 0) {
    int u = stack[--top];
    if (u < t->n) {
      t->rows[t->nrows++] = (ref_row){from, u, 1, lambda};
      continue;
    }
    stack[top++] = t->left[u - t->n];
    stack[top++] = t->right[u - t->n];
  }
}

/* hdbscan's condense_tree, breadth-first from the root. */
static void ref_condense(ref_tree *t, int mcs) {
  int n = t->n, nodes = 2 * n - 1, head = 0, tail = 0, next_label = n + 1;
  int *queue = xmalloc((size_t)nodes * sizeof(int));
  int *relabel = xmalloc((size_t)nodes * sizeof(int));
  int *stack = xmalloc((size_t)nodes * sizeof(int));
  queue[tail++] = nodes - 1;
  relabel[nodes - 1] = n;
  while (head < tail) {
    int v = queue[head++];
    if (v < n) continue;
    int a = t->left[v - n], b = t->right[v - n], p = relabel[v];
    double d = t->dist[v - n], lambda = d > 0 ? 1.0 / d : INFINITY;
    int big_a = ref_size(t, a) >= mcs, big_b = ref_size(t, b) >= mcs;
    if (big_a && big_b) {
      relabel[a] = next_label++;
      relabel[b] = next_label++;
      t->rows[t->nrows++] = (ref_row){p, relabel[a], ref_size(t, a), lambda};
      t->rows[t->nrows++] = (ref_row){p, relabel[b], ref_size(t, b), lambda};
      queue[tail++] = a;
      queue[tail++] = b;
      continue;
    }
    if (!big_a) ref_fall(t, a, p, lambda, stack);
    if (!big_b) ref_fall(t, b, p, lambda, stack);
    if (big_a) relabel[a] = p, queue[tail++] = a;
    if (big_b) relabel[b] = p, queue[tail++] = b;
  }
  free(queue);
  free(relabel);
  free(stack);
}

/* Stability, excess-of-mass selection (root excluded) and labels. */
static int ref_select(const ref_tree *t, int32_t *lab) {
  int n = t->n, nc = n + 1;
  for (int r = 0; r < t->nrows; r++)
    if (t->rows[r].size > 1 && t->rows[r].child + 1 > nc)
      nc = t->rows[r].child + 1;
  double *birth = calloc((size_t)nc, sizeof(double));
  double *stab = calloc((size_t)nc, sizeof(double));
  int *parent = xmalloc((size_t)nc * sizeof(int));
  int *sel = calloc((size_t)nc, sizeof(int)), k = 0;
  int *of = xmalloc((size_t)n * sizeof(int));
  int *id = calloc((size_t)nc, sizeof(int));
  for (int c = 0; c < nc; c++) parent[c] = -1;
  for (int r = 0; r < t->nrows; r++)
    if (t->rows[r].size > 1) {
      birth[t->rows[r].child] = t->rows[r].lambda;
      parent[t->rows[r].child] = t->rows[r].parent;
    } else {
      of[t->rows[r].child] = t->rows[r].parent;
    }
  for (int r = 0; r < t->nrows; r++)
    stab[t->rows[r].parent] +=
        (t->rows[r].lambda - birth[t->rows[r].parent]) * t->rows[r].size;
  double *sub = calloc((size_t)nc, sizeof(double));
  int *kids = calloc((size_t)nc, sizeof(int));
  for (int c = nc - 1; c > n; c--) {
    sel[c] = !kids[c] || !(sub[c] > stab[c]);
    if (sel[c]) sub[c] = stab[c];
    sub[parent[c]] += sub[c];
    kids[parent[c]] = 1;
  }
  for (int c = n + 1; c < nc; c++) /* deselect below a selected ancestor */
    for (int u = parent[c]; u > n; u = parent[u])
      if (sel[u]) sel[c] = 0;
  for (int c = n + 1; c < nc; c++) id[c] = sel[c] ? k++ : -1;
  for (int i = 0; i < n; i++) {
    int u = of[i];
    while (u > n && !sel[u]) u = parent[u];
    lab[i] = u > n ? id[u] : -1;
  }
  free(birth), free(stab), free(parent), free(sel), free(of), free(id);
  free(sub), free(kids);
  return k;
}

/* Brute-force HDBSCAN of n rows; labels in lab, returns k. */
static int ref_hdbscan(const float *x, int n, int dim, int mcs, int ms,
                       int unit, int32_t *lab) {
  ref_edge *mst = xmalloc((size_t)n * sizeof(ref_edge));
  ref_tree t = {n, xmalloc((size_t)n * sizeof(int)),
                xmalloc((size_t)n * sizeof(int)),
                xmalloc((size_t)n * sizeof(int)),
                xmalloc((size_t)n * sizeof(double)),
                xmalloc((size_t)2 * n * sizeof(ref_row)), 0};
  int *uf = xmalloc((size_t)n * sizeof(int));
  int *node = xmalloc((size_t)n * sizeof(int));
  ref_mst(x, n, dim, ms, unit, mst);
  qsort(mst, (size_t)n - 1, sizeof(ref_edge), ref_edge_cmp);
  for (int i = 0; i < n; i++) uf[i] = node[i] = i;
  for (int e = 0; e + 1 < n; e++) {
    int a = mst[e].a, b = mst[e].b;
    while (uf[a] != a) a = uf[a];
    while (uf[b] != b) b = uf[b];
    t.left[e] = node[a], t.right[e] = node[b], t.dist[e] = mst[e].w;
    t.size[e] = ref_size(&t, node[a]) + ref_size(&t, node[b]);
    uf[b] = a;
    node[a] = n + e;
  }
  ref_condense(&t, mcs);
  int k = ref_select(&t, lab);
  free(mst), free(uf), free(node);
  free(t.left), free(t.right), free(t.size), free(t.dist), free(t.rows);
  return k;
}

/* ---- hierarchical ---- */

static int nondecreasing(const sd_tree *t) {
  for (int i = 1; i + 1 < t->m; i++)
    if (t->merges[i].distance < t->merges[i - 1].distance) return 0;
  return 1;
}

/* Every node is made before it is merged, and merged once. */
static int tree_valid(const sd_tree *t) {
  int ok = 1, nodes = 2 * t->m - 1;
  char *used = calloc((size_t)nodes, 1);
  int64_t *size = calloc((size_t)nodes, sizeof(int64_t)), total = 0;
  for (int l = 0; l < t->m; l++) size[l] = t->leaf_sizes[l];
  for (int l = 0; l < t->m; l++) total += t->leaf_sizes[l];
  for (int i = 0; ok && i + 1 < t->m; i++) {
    int a = t->merges[i].a, b = t->merges[i].b;
    if (a < 0 || b <= a || b >= t->m + i || used[a] || used[b]) ok = 0;
    if (!ok) break;
    used[a] = used[b] = 1;
    size[t->m + i] = size[a] + size[b];
    if (size[t->m + i] != t->merges[i].size) ok = 0;
  }
  if (ok && t->m > 1 && t->merges[t->m - 2].size != total) ok = 0;
  if ((size_t)total != t->n) ok = 0;
  free(used);
  free(size);
  return ok;
}

static void check_hier_blobs(int unit) {
  size_t n = 1200;
  int dim = unit ? 32 : 16, k = 6;
  int32_t *truth = xmalloc(n * sizeof(int32_t));
  int32_t *lab = xmalloc(n * sizeof(int32_t));
  float *x = make_data(n, 0, dim, k, 10.0, unit ? 0.05 : 1.0, 0, unit, truth);
  sd_tree_opts o = {60, 11, unit};
  sd_tree t;
  float *cent = NULL;
  int kout = 0;
  CHECK_INT(sd_tree_build(x, n, dim, &o, &t), 0);
  CHECK_INT(t.m, 60);
  CHECK_INT(t.dim, dim);
  CHECK(t.n == n);
  CHECK(nondecreasing(&t));
  CHECK(tree_valid(&t));
  CHECK_INT(sd_tree_cut(&t, k, 0.0, unit, lab, &cent, &kout), 0);
  CHECK_INT(kout, k);
  CHECK(same_partition(lab, truth, n));
  CHECK(centroid_err(x, lab, n, dim, cent, kout, unit) < 1e-4);
  free(cent);
  /* a gap of orders of magnitude between the last 5 merges and the rest */
  double lo = t.merges[t.m - 7].distance, hi = t.merges[t.m - 6].distance;
  CHECK(hi > 20.0 * lo);
  CHECK_INT(sd_tree_cut(&t, 0, sqrt(lo * hi), unit, lab, &cent, &kout), 0);
  CHECK_INT(kout, k);
  CHECK(same_partition(lab, truth, n));
  free(cent);
  CHECK_INT(sd_tree_cut(&t, 1, 0.0, unit, lab, &cent, &kout), 0);
  CHECK_INT(kout, 1);
  for (size_t i = 0; i < n; i++) CHECK_INT(lab[i], 0);
  CHECK(centroid_err(x, lab, n, dim, cent, 1, unit) < 1e-4);
  free(cent);
  CHECK_INT(sd_tree_cut(&t, 0, -1.0, unit, lab, &cent, &kout), 0);
  CHECK_INT(kout, t.m);
  CHECK(same_partition(lab, t.leaf_of, n));
  free(cent);
  sd_tree_free(&t);
  free(x);
  free(truth);
  free(lab);
}

/* With one leaf per row, merge costs equal a brute-force Ward's. */
static void test_hier_exact_ward(void) {
  int n = 80, dim = 5;
  int32_t truth[80];
  double ref[79];
  float *x = make_data((size_t)n, 0, dim, 7, 3.0, 1.0, 0, 0, truth);
  sd_tree_opts o = {n, 3, 0};
  sd_tree t;
  CHECK_INT(sd_tree_build(x, (size_t)n, dim, &o, &t), 0);
  CHECK_INT(t.m, n);
  CHECK(nondecreasing(&t));
  CHECK(tree_valid(&t));
  brute_ward(x, n, dim, ref);
  qsort(ref, (size_t)n - 1, sizeof(double), dbl_cmp);
  double err = 0.0;
  for (int i = 0; i + 1 < n && t.m == n; i++)
    err = fmax(err, fabs(t.merges[i].distance - ref[i]) / (1.0 + ref[i]));
  CHECK(err < 1e-4);
  sd_tree_free(&t);
  free(x);
}

static void test_hier_small_and_same(void) {
  int32_t truth[300], lab[300];
  float *x = make_data(300, 0, 8, 3, 5.0, 1.0, 0, 0, truth);
  sd_tree_opts o = {0, 5, 0};
  sd_tree a, b;
  float *cent = NULL;
  int kout;
  /* default micro is min(n, 500): one leaf per row here */
  CHECK_INT(sd_tree_build(x, 300, 8, &o, &a), 0);
  CHECK(a.m >= 290 && a.m <= 300);
  CHECK_INT(sd_tree_build(x, 300, 8, &o, &b), 0);
  CHECK_INT(a.m, b.m);
  CHECK(memcmp(a.leaf_of, b.leaf_of, 300 * sizeof(int32_t)) == 0);
  CHECK(memcmp(a.merges, b.merges, (size_t)(a.m - 1) * sizeof(sd_merge)) ==
        0);
  CHECK_INT(sd_tree_cut(&a, 3, 0.0, 0, lab, &cent, &kout), 0);
  CHECK(same_partition(lab, truth, 300));
  free(cent);
  sd_tree_free(&a);
  sd_tree_free(&b);
  /* a single row, and duplicated rows (k-means leaves empty clusters) */
  o.micro = 4;
  CHECK_INT(sd_tree_build(x, 1, 8, &o, &a), 0);
  CHECK_INT(a.m, 1);
  CHECK_INT(sd_tree_cut(&a, 1, 0.0, 0, lab, &cent, &kout), 0);
  CHECK_INT(kout, 1);
  CHECK_INT(lab[0], 0);
  CHECK(fabs(cent[3] - x[3]) < 1e-6);
  free(cent);
  sd_tree_free(&a);
  float dup[20 * 2];
  for (int i = 0; i < 20; i++) dup[2 * i] = (float)(i % 2), dup[2 * i + 1] = 1;
  o.micro = 8;
  CHECK_INT(sd_tree_build(dup, 20, 2, &o, &a), 0);
  CHECK(a.m >= 2 && a.m <= 8);
  CHECK(tree_valid(&a));
  CHECK_INT(sd_tree_cut(&a, 2, 0.0, 0, lab, &cent, &kout), 0);
  for (int i = 0; i < 20; i++) CHECK_INT(lab[i], lab[i % 2]);
  CHECK(lab[0] != lab[1]);
  free(cent);
  sd_tree_free(&a);
  free(x);
}

static void test_hier_invalid(void) {
  float x[8] = {0, 1, 2, 3, 4, 5, 6, 7}, *cent = (float *)1;
  int32_t lab[4];
  int kout = 9;
  sd_tree_opts o = {2, 1, 0}, bad;
  sd_tree t;
  CHECK_INT(sd_tree_build(NULL, 4, 2, &o, &t), SD_EINVAL);
  CHECK(t.merges == NULL && t.leaf_of == NULL);
  sd_tree_free(&t);
  sd_tree_free(NULL);
  CHECK_INT(sd_tree_build(x, 4, 2, NULL, &t), SD_EINVAL);
  CHECK_INT(sd_tree_build(x, 4, 2, &o, NULL), SD_EINVAL);
  CHECK_INT(sd_tree_build(x, 0, 2, &o, &t), SD_EINVAL);
  CHECK_INT(sd_tree_build(x, 4, 0, &o, &t), SD_EINVAL);
  CHECK_INT(sd_tree_build(x, SIZE_MAX / 4, 2, &o, &t), SD_EINVAL);
  bad = o, bad.micro = -1;
  CHECK_INT(sd_tree_build(x, 4, 2, &bad, &t), SD_EINVAL);
  bad = o, bad.micro = 100000;
  CHECK_INT(sd_tree_build(x, 4, 2, &bad, &t), SD_EINVAL);
  x[3] = NAN;
  CHECK_INT(sd_tree_build(x, 4, 2, &o, &t), SD_EINVAL);
  x[3] = 3;
  CHECK_INT(sd_tree_build(x, 4, 2, &o, &t), 0);
  CHECK_INT(sd_tree_cut(&t, 3, 0.0, 0, lab, &cent, &kout), SD_EINVAL);
  CHECK(cent == NULL && kout == 0);
  CHECK_INT(sd_tree_cut(&t, -1, 0.0, 0, lab, &cent, &kout), SD_EINVAL);
  CHECK_INT(sd_tree_cut(&t, 0, NAN, 0, lab, &cent, &kout), SD_EINVAL);
  CHECK_INT(sd_tree_cut(&t, 1, 0.0, 0, NULL, &cent, &kout), SD_EINVAL);
  CHECK_INT(sd_tree_cut(&t, 1, 0.0, 0, lab, NULL, &kout), SD_EINVAL);
  CHECK_INT(sd_tree_cut(&t, 1, 0.0, 0, lab, &cent, NULL), SD_EINVAL);
  CHECK_INT(sd_tree_cut(NULL, 1, 0.0, 0, lab, &cent, &kout), SD_EINVAL);
  CHECK_INT(sd_tree_cut(&t, 0, INFINITY, 0, lab, &cent, &kout), 0);
  CHECK_INT(kout, 1);
  free(cent);
  sd_tree_free(&t);
}

/* ---- density ---- */

static void check_density_blobs(int unit) {
  size_t nb = 1500, ng = 400, n = nb + ng;
  int dim = unit ? 32 : 16, blobs = 5, consistent;
  int32_t *truth = xmalloc(n * sizeof(int32_t));
  int32_t *lab = xmalloc(n * sizeof(int32_t));
  float *x = make_data(nb, ng, dim, blobs, 10.0, unit ? 0.05 : 0.5, 15.0,
                       unit, truth);
  sd_density_opts o = {0, 0, unit, 1, 0, 0};
  sd_density_result r, r2;
  double bg;
  CHECK_INT(sd_density_fit(x, n, dim, &o, &r), 0);
  CHECK_INT(r.k, blobs);
  CHECK_INT(r.dim, dim);
  double rec = blob_recall(r.labels, truth, n, blobs, &consistent, &bg);
  CHECK(consistent);
  CHECK(rec > 0.95);
  CHECK(bg > 0.95);
  size_t noise = 0;
  for (size_t i = 0; i < n; i++) noise += r.labels[i] < 0;
  CHECK(noise == r.noise);
  CHECK(centroid_err(x, r.labels, n, dim, r.centroids, r.k, unit) < 1e-4);
  /* determinism */
  CHECK_INT(sd_density_fit(x, n, dim, &o, &r2), 0);
  CHECK_INT(r2.k, r.k);
  CHECK(memcmp(r.labels, r2.labels, n * sizeof(int32_t)) == 0);
  CHECK(memcmp(r.centroids, r2.centroids,
               (size_t)r.k * (size_t)dim * sizeof(float)) == 0);
  sd_density_result_free(&r2);
  /* the same through the sampling path (2/3 of the rows worked) */
  o.max_points = 1300;
  CHECK_INT(sd_density_fit(x, n, dim, &o, &r2), 0);
  CHECK_INT(r2.k, blobs);
  rec = blob_recall(r2.labels, truth, n, blobs, &consistent, &bg);
  CHECK(consistent);
  CHECK(rec > 0.9);
  CHECK(bg > (unit ? 0.9 : 0.95)); /* random directions: all about as far */
  CHECK(centroid_err(x, r2.labels, n, dim, r2.centroids, r2.k, unit) < 1e-4);
  sd_density_result_free(&r2);
  sd_density_result_free(&r);
  CHECK(r.labels == NULL && r.centroids == NULL);
  free(x);
  free(truth);
  free(lab);
}

/* Small sample of a big set: 5 x 1200 blob rows + 1000 background, 1000
 * worked. */
static void test_density_sampling(void) {
  size_t nb = 6000, ng = 1000, n = nb + ng;
  int dim = 16, blobs = 5, consistent;
  int32_t *truth = xmalloc(n * sizeof(int32_t));
  float *x = make_data(nb, ng, dim, blobs, 10.0, 0.5, 15.0, 0, truth);
  sd_density_opts o = {10, 0, 0, 99, 1000, 0};
  sd_density_result r;
  double bg;
  CHECK_INT(sd_density_fit(x, n, dim, &o, &r), 0);
  CHECK_INT(r.k, blobs);
  double rec = blob_recall(r.labels, truth, n, blobs, &consistent, &bg);
  CHECK(consistent);
  CHECK(rec > 0.8); /* unsampled rows beyond their neighbour's core: noise */
  CHECK(bg > 0.95);
  sd_density_result_free(&r);
  free(x);
  free(truth);
}

/*
 * Against the brute-force HDBSCAN (certified rounds and the contracted
 * pass get used). Merges of equal weight (common: many edges weigh some
 * point's core distance) may pair up in another order, which can move a
 * boundary point or two between a cluster and noise: exact agreement only
 * for min_samples 1, where no such ties arise.
 */
static void check_density_reference(size_t nb, size_t ng, int dim, int mcs,
                                     int ms, int unit, double sigma) {
  size_t n = nb + ng;
  int32_t *truth = xmalloc(n * sizeof(int32_t));
  int32_t *ref = xmalloc(n * sizeof(int32_t));
  float *x = make_data(nb, ng, dim, 6, 4.0, sigma, 6.0, unit, truth);
  sd_density_opts o = {mcs, ms, unit, 1, 0, 0};
  sd_density_result r;
  int k = ref_hdbscan(x, (int)n, dim, mcs, ms ? ms : mcs, unit, ref);
  CHECK_INT(sd_density_fit(x, n, dim, &o, &r), 0);
  CHECK_INT(r.k, k);
  if (ms == 1)
    CHECK(same_partition(r.labels, ref, n));
  else
    CHECK(mismatches(r.labels, ref, n) <= n / 200);
  sd_density_result_free(&r);
  free(x);
  free(truth);
  free(ref);
}

static void test_density_tiny(void) {
  float x[6 * 3] = {0, 0, 0, 1, 0, 0, 0, 1, 0, 5, 5, 5, 5, 6, 5, 6, 5, 5};
  sd_density_opts o = {0, 0, 0, 0, 0, 0};
  sd_density_result r;
  CHECK_INT(sd_density_fit(x, 6, 3, &o, &r), 0); /* fewer rows than 15 */
  CHECK_INT(r.k, 0);
  CHECK(r.noise == 6);
  for (int i = 0; i < 6; i++) CHECK_INT(r.labels[i], -1);
  sd_density_result_free(&r);
  CHECK_INT(sd_density_fit(x, 1, 3, &o, &r), 0);
  CHECK_INT(r.k, 0);
  CHECK_INT(r.labels[0], -1);
  sd_density_result_free(&r);
  o.min_cluster_size = 3;
  o.min_samples = 2;
  CHECK_INT(sd_density_fit(x, 6, 3, &o, &r), 0);
  CHECK_INT(r.k, 2);
  for (int i = 0; i < 6; i++) CHECK_INT(r.labels[i], r.labels[i / 3 * 3]);
  CHECK(r.labels[0] != r.labels[3] && r.labels[0] >= 0 && r.labels[3] >= 0);
  sd_density_result_free(&r);
}

static void test_density_invalid(void) {
  float x[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  sd_density_opts o = {2, 1, 0, 0, 0, 0}, bad;
  sd_density_result r;
  CHECK_INT(sd_density_fit(NULL, 4, 2, &o, &r), SD_EINVAL);
  CHECK(r.labels == NULL && r.centroids == NULL && r.k == 0);
  sd_density_result_free(&r);
  sd_density_result_free(NULL);
  CHECK_INT(sd_density_fit(x, 4, 2, NULL, &r), SD_EINVAL);
  CHECK_INT(sd_density_fit(x, 4, 2, &o, NULL), SD_EINVAL);
  CHECK_INT(sd_density_fit(x, 0, 2, &o, &r), SD_EINVAL);
  CHECK_INT(sd_density_fit(x, 4, 0, &o, &r), SD_EINVAL);
  CHECK_INT(sd_density_fit(x, 4, 100000, &o, &r), SD_EINVAL);
  CHECK_INT(sd_density_fit(x, SIZE_MAX / 4, 2, &o, &r), SD_EINVAL);
  bad = o, bad.min_cluster_size = 1;
  CHECK_INT(sd_density_fit(x, 4, 2, &bad, &r), SD_EINVAL);
  bad = o, bad.min_cluster_size = -3;
  CHECK_INT(sd_density_fit(x, 4, 2, &bad, &r), SD_EINVAL);
  bad = o, bad.min_samples = -1;
  CHECK_INT(sd_density_fit(x, 4, 2, &bad, &r), SD_EINVAL);
  bad = o, bad.min_samples = 100000;
  CHECK_INT(sd_density_fit(x, 4, 2, &bad, &r), SD_EINVAL);
  bad = o, bad.max_points = SIZE_MAX;
  CHECK_INT(sd_density_fit(x, 4, 2, &bad, &r), SD_EINVAL);
  x[5] = NAN;
  CHECK_INT(sd_density_fit(x, 4, 2, &o, &r), SD_EINVAL);
  bad = o, bad.max_points = 2; /* the NaN row may be outside the sample */
  CHECK_INT(sd_density_fit(x, 4, 2, &bad, &r), SD_EINVAL);
  x[5] = INFINITY;
  CHECK_INT(sd_density_fit(x, 4, 2, &o, &r), SD_EINVAL);
  x[5] = 5;
  CHECK_INT(sd_density_fit(x, 4, 2, &o, &r), 0);
  sd_density_result_free(&r);
}

int main(void) {
  td_seed(987654321);
  check_hier_blobs(0);
  check_hier_blobs(1);
  test_hier_exact_ward();
  test_hier_small_and_same();
  test_hier_invalid();
  check_density_blobs(0);
  check_density_blobs(1);
  test_density_sampling();
  check_density_reference(600, 150, 3, 10, 5, 0, 0.6);
  check_density_reference(1800, 300, 8, 15, 0, 0, 1.0);
  check_density_reference(1000, 200, 12, 8, 1, 1, 0.15);
  test_density_tiny();
  test_density_invalid();
  return check_done("test_cluster_algos");
}
