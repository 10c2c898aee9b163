/*
 * cluster_density.c -- HDBSCAN-style density clustering (cluster_algos.h).
 *
 * Campello, Moulavi & Sander 2013, "Density-based clustering based on
 * hierarchical density estimates", in the formulation of McInnes, Healy &
 * Astels (the hdbscan library, 2017): the core distance of a point is the
 * distance to its min_samples-th nearest neighbour, counting the point
 * itself (as hdbscan and scikit-learn do, so min_samples 1 is plain single
 * linkage); mutual reachability mrd(a, b) = max(core a, core b, d(a, b));
 * a minimum spanning tree of the complete mrd graph gives the single-linkage
 * hierarchy; the condensed tree drops splits that shed fewer than
 * min_cluster_size points (those points "fall out" at lambda = 1 / d);
 * clusters are selected by excess of mass, the root excluded; points not
 * under a selected cluster are noise (-1).
 *
 * Distances: Euclidean on rows centred at the sample mean (squared values
 * inside, which order the same way; square roots only for the tree), or
 * 1 - x.y when spherical. Every distance comes from a DENS_TILE x DENS_TILE
 * cblas_sgemm tile, so scratch stays O(tile^2) beyond O(s * dim) for s
 * worked rows.
 *
 * The MST, exactly: a dense Prim would redo one matrix-vector product per
 * point (memory-bound; about 30 s at 20000 x 256 on one core), so instead:
 *  1. one symmetric pass (tiles i <= j) keeps each point's K >= DENS_KNN
 *     nearest neighbours in a max-heap; the core distance is read off it;
 *  2. Borůvka rounds from those lists: a component's cheapest listed
 *     outgoing edge is certified minimal when no member could have a
 *     cheaper unlisted one (lower bound max(core, K-th neighbour distance));
 *  3. when certification stalls, an exact pass over the pairs in different
 *     components (rows ordered by component, tiles inside one component
 *     skipped): while there are more than DENS_MAX_TABLE components a
 *     Borůvka round (each component's cheapest edge), else the cheapest edge
 *     between every pair of components followed by Prim on that small
 *     complete graph (the contracted MST, exact by the cut property).
 * Mutual reachability has many equal weights (a point's core distance),
 * so the first certified round usually leaves about as many components as
 * clusters: the typical cost is the core pass plus one pass over the pairs
 * between those components (about 4 s of CPU at 20000 x 256, one core).
 *
 * Sampling: above max_points rows, a uniform sample (Knuth's Algorithm S,
 * xoshiro256** seeded by splitmix64) is clustered; each other row joins the
 * cluster of its nearest sampled non-noise point when within that point's
 * core distance, else is noise. Centroids are the means of all members
 * (unit when spherical). Deterministic for a seed, input and BLAS.
 */
#include "segmentd/cluster_algos.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "segmentd/alloc.h"
#include "segmentd/err.h"
#include "segmentd/rng.h"

#define DENS_MAX_DIM 65536        /* same sanity cap as k-means */
#define DENS_MAX_POINTS (1u << 20) /* cap on worked rows (ids are int32) */
#define DENS_MAX_SAMPLES 512      /* cap on min_samples (heap memory) */
#define DENS_KNN 32               /* neighbours kept per point, at least */
#define DENS_TILE 256             /* rows per side of an sgemm tile */
#define DENS_MAX_TABLE 1024       /* components for the contracted pass */
#define DENS_DEF_MCS 15
#define DENS_DEF_POINTS 20000
#define DENS_LAMBDA_MAX 1e300     /* lambda of a zero distance */

typedef struct {
  int32_t a, b; /* points (worked-row ids), a < b */
  float w;      /* mutual reachability (squared when Euclidean) */
} dens_edge;

typedef struct {
  const float *x; /* n x dim, borrowed */
  size_t n;
  int dim, spherical, mcs, ms, K;
  int single;      /* the root may be the one cluster */
  int32_t s;       /* worked rows */
  size_t *sidx;    /* s: their rows of x, increasing */
  float *xs;       /* s x dim: worked rows, centred when Euclidean */
  float *base;     /* s: ||xs_i||^2, or 0.5 when spherical (d = 1 - x.y) */
  double *mean;    /* dim: the centre subtracted (zero when spherical) */
  float *nd;       /* s x K: neighbour distances (heap, then ascending) */
  int32_t *nid;    /* s x K: neighbour ids */
  int32_t *ncnt;   /* s: heap fill during the core pass */
  float *core;     /* s: core distances */
  float *tile;     /* DENS_TILE^2: sgemm output */
  int32_t *uf;     /* s: union-find over points */
  int32_t *comp;   /* s: component of each point, dense ids */
  int32_t ncomp;
  dens_edge *mst;  /* s - 1 edges */
  int32_t nmst;
} dens_ws;

/* Rows reordered by component for an exact pass. */
typedef struct {
  float *x, *base, *core; /* s x dim, s, s */
  int32_t *comp, *id;     /* position -> component, worked row */
  int32_t *tcomp;         /* per tile of positions: its component or -1 */
  float *bw;              /* s: cheapest outgoing weight (Borůvka pass) */
  int32_t *bj;            /* s: its other end (position) */
} dens_perm;


/* ---- memory ---- */

static void dens_ws_free(dens_ws *w) {
  free(w->sidx);
  free(w->xs);
  free(w->base);
  free(w->mean);
  free(w->nd);
  free(w->nid);
  free(w->ncnt);
  free(w->core);
  free(w->tile);
  free(w->uf);
  free(w->comp);
  free(w->mst);
  memset(w, 0, sizeof *w);
}

static int dens_ws_init(dens_ws *w) {
  size_t s = (size_t)w->s, d = (size_t)w->dim, k = (size_t)w->K;
  w->sidx = sd_malloc_n(s, 1, sizeof(size_t));
  w->xs = sd_malloc_n(s, d, sizeof(float));
  w->base = sd_malloc_n(s, 1, sizeof(float));
  w->mean = sd_malloc_n(d, 1, sizeof(double));
  w->nd = sd_malloc_n(s, k, sizeof(float));
  w->nid = sd_malloc_n(s, k, sizeof(int32_t));
  w->ncnt = sd_malloc_n(s, 1, sizeof(int32_t));
  w->core = sd_malloc_n(s, 1, sizeof(float));
  w->tile = sd_malloc_n(DENS_TILE, DENS_TILE, sizeof(float));
  w->uf = sd_malloc_n(s, 1, sizeof(int32_t));
  w->comp = sd_malloc_n(s, 1, sizeof(int32_t));
  w->mst = sd_malloc_n(s, 1, sizeof(dens_edge));
  if (!w->sidx || !w->xs || !w->base || !w->mean || !w->nd || !w->nid ||
      !w->ncnt || !w->core || !w->tile || !w->uf || !w->comp || !w->mst) {
    dens_ws_free(w);
    return SD_ENOMEM;
  }
  return 0;
}

/* ---- the worked rows ---- */

/* Picks w->s of the n rows uniformly (Algorithm S: increasing indices). */
static void dens_pick(dens_ws *w, uint64_t seed) {
  sd_rng rng;
  size_t got = 0, s = (size_t)w->s;
  sd_rng_init(&rng, seed);
  for (size_t i = 0; i < w->n && got < s; i++) {
    double need = (double)(s - got), left = (double)(w->n - i);
    if (s == w->n || sd_rng_unit(&rng) * left < need) w->sidx[got++] = i;
  }
}

/*
 * Copies the picked rows into xs, centred at their mean unless spherical,
 * with base[i]. SD_EINVAL if a value is not finite.
 */
static int dens_load(dens_ws *w) {
  size_t s = (size_t)w->s, d = (size_t)w->dim;
  memset(w->mean, 0, d * sizeof(double));
  for (size_t t = 0; t < s; t++) {
    const float *xi = w->x + w->sidx[t] * d;
    for (size_t e = 0; e < d; e++) {
      if (!isfinite(xi[e])) return SD_EINVAL;
      if (!w->spherical) w->mean[e] += xi[e];
    }
  }
  for (size_t e = 0; e < d; e++) w->mean[e] /= (double)s;
  for (size_t t = 0; t < s; t++) {
    const float *xi = w->x + w->sidx[t] * d;
    float *o = w->xs + t * d;
    double nn = 0.0;
    for (size_t e = 0; e < d; e++) {
      o[e] = (float)(xi[e] - w->mean[e]);
      nn += (double)o[e] * o[e];
    }
    if (!isfinite((float)nn)) return SD_EINVAL; /* would overflow sgemm */
    w->base[t] = w->spherical ? 0.5f : (float)nn;
  }
  return 0;
}

/*
 * out[r * bb + c] = distance between row r of xa and row c of xb: the
 * squared Euclidean distance ba[r] + bb[c] - 2 a.b, or 1 - a.b (base 0.5
 * each), clamped to [0, FLT_MAX].
 */
static void dens_tile(const dens_ws *w, const float *xa, const float *ba,
                      int na, const float *xb, const float *bb, int nb,
                      float *out) {
  float alpha = w->spherical ? -1.0f : -2.0f;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, na, nb, w->dim, alpha,
              xa, w->dim, xb, w->dim, 0.0f, out, nb);
  for (int r = 0; r < na; r++) {
    float *o = out + (size_t)r * (size_t)nb, b0 = ba[r];
    for (int c = 0; c < nb; c++) {
      float v = b0 + bb[c] + o[c]; /* NaN and overflow stay in range */
      o[c] = v > 0.0f ? (v < FLT_MAX ? v : FLT_MAX) : 0.0f;
    }
  }
}

/* ---- core distances: K nearest neighbours per point ---- */

/* Offers (d, id) to point i's max-heap of its K nearest; returns its root. */
static float dens_heap_push(dens_ws *w, int32_t i, float d, int32_t id) {
  size_t K = (size_t)w->K, at;
  float *hd = w->nd + (size_t)i * K;
  int32_t *hi = w->nid + (size_t)i * K;
  if ((size_t)w->ncnt[i] < K) { /* sift up */
    at = (size_t)w->ncnt[i]++;
    while (at > 0 && hd[(at - 1) / 2] < d) {
      hd[at] = hd[(at - 1) / 2];
      hi[at] = hi[(at - 1) / 2];
      at = (at - 1) / 2;
    }
  } else { /* replace the root, sift down */
    at = 0;
    for (size_t c = 1; c < K; c = 2 * at + 1) {
      if (c + 1 < K && hd[c + 1] > hd[c]) c++;
      if (!(hd[c] > d)) break;
      hd[at] = hd[c];
      hi[at] = hi[c];
      at = c;
    }
  }
  hd[at] = d;
  hi[at] = id;
  return (size_t)w->ncnt[i] < K ? INFINITY : hd[0];
}

/* Offers every pair of one tile to both ends' heaps (diag: pairs r < c). */
static void dens_core_tile(dens_ws *w, int32_t i0, int bi, int32_t j0, int bj,
                           int diag) {
  float thc[DENS_TILE];
  for (int c = 0; c < bj; c++)
    thc[c] = w->ncnt[j0 + c] < w->K ? INFINITY : w->nd[(size_t)(j0 + c) * w->K];
  for (int r = 0; r < bi; r++) {
    const float *t = w->tile + (size_t)r * (size_t)bj;
    int32_t i = i0 + r;
    float thr = w->ncnt[i] < w->K ? INFINITY : w->nd[(size_t)i * w->K];
    for (int c = diag ? r + 1 : 0; c < bj; c++) {
      if (t[c] < thr) thr = dens_heap_push(w, i, t[c], j0 + c);
      if (t[c] < thc[c]) thc[c] = dens_heap_push(w, j0 + c, t[c], i);
    }
  }
}

/* Sorts point i's heap ascending (heapsort: the root goes to the end). */
static void dens_heap_sort(dens_ws *w, int32_t i) {
  size_t K = (size_t)w->K;
  float *hd = w->nd + (size_t)i * K;
  int32_t *hi = w->nid + (size_t)i * K;
  for (size_t end = K; end-- > 1;) {
    float d = hd[end];
    int32_t id = hi[end];
    size_t at = 0;
    hd[end] = hd[0];
    hi[end] = hi[0];
    for (size_t c = 1; c < end; c = 2 * at + 1) {
      if (c + 1 < end && hd[c + 1] > hd[c]) c++;
      if (!(hd[c] > d)) break;
      hd[at] = hd[c];
      hi[at] = hi[c];
      at = c;
    }
    hd[at] = d;
    hi[at] = id;
  }
}

/* One symmetric pass: neighbour lists (ascending) and core distances. */
static void dens_core_pass(dens_ws *w) {
  size_t d = (size_t)w->dim;
  int32_t s = w->s;
  memset(w->ncnt, 0, (size_t)s * sizeof(int32_t));
  for (int32_t i0 = 0; i0 < s; i0 += DENS_TILE) {
    int bi = s - i0 < DENS_TILE ? (int)(s - i0) : DENS_TILE;
    for (int32_t j0 = i0; j0 < s; j0 += DENS_TILE) {
      int bj = s - j0 < DENS_TILE ? (int)(s - j0) : DENS_TILE;
      dens_tile(w, w->xs + (size_t)i0 * d, w->base + i0, bi,
                w->xs + (size_t)j0 * d, w->base + j0, bj, w->tile);
      dens_core_tile(w, i0, bi, j0, bj, i0 == j0);
    }
  }
  for (int32_t i = 0; i < s; i++) {
    dens_heap_sort(w, i);
    w->core[i] = w->ms >= 2 ? w->nd[(size_t)i * w->K + w->ms - 2] : 0.0f;
  }
}

/* ---- components ---- */

static int32_t dens_find(int32_t *uf, int32_t v) {
  while (uf[v] != v) {
    uf[v] = uf[uf[v]];
    v = uf[v];
  }
  return v;
}

/* Adds the MST edge (a, b) unless they are already joined; 1 if added. */
static int dens_join(dens_ws *w, int32_t a, int32_t b, float wt) {
  int32_t ra = dens_find(w->uf, a), rb = dens_find(w->uf, b);
  if (ra == rb) return 0;
  if (ra < rb)
    w->uf[rb] = ra;
  else
    w->uf[ra] = rb;
  w->mst[w->nmst++] = (dens_edge){a < b ? a : b, a < b ? b : a, wt};
  return 1;
}

/* comp[i] = dense id of i's component, by first appearance; ncomp. */
static void dens_relabel(dens_ws *w) {
  int32_t next = 0;
  for (int32_t i = 0; i < w->s; i++) w->comp[i] = -1;
  for (int32_t i = 0; i < w->s; i++) {
    int32_t r = dens_find(w->uf, i);
    if (w->comp[r] < 0) w->comp[r] = next++;
    w->comp[i] = w->comp[r];
  }
  w->ncomp = next;
}

/* ---- MST step 2: Borůvka rounds certified from the neighbour lists ---- */

/*
 * Point i's cheapest listed edge leaving its component (*cw, *cj; INFINITY
 * if none) and the bound no unlisted edge can beat (returned).
 */
static float dens_listed(const dens_ws *w, int32_t i, float *cw, int32_t *cj) {
  size_t K = (size_t)w->K;
  const float *d = w->nd + (size_t)i * K;
  const int32_t *id = w->nid + (size_t)i * K;
  float ci = w->core[i], best = INFINITY;
  int32_t bj = -1;
  for (size_t t = 0; t < K && d[t] < best; t++) {
    int32_t j = id[t];
    if (w->comp[j] == w->comp[i]) continue;
    float v = d[t] > ci ? d[t] : ci;
    v = v > w->core[j] ? v : w->core[j];
    if (v < best) {
      best = v;
      bj = j;
    }
  }
  *cw = best;
  *cj = bj;
  if (K + 1 >= (size_t)w->s) return INFINITY; /* every point is listed */
  return d[K - 1] > ci ? d[K - 1] : ci;
}

/*
 * One Borůvka round using only the lists: every component whose cheapest
 * listed edge is certified adds it. Scratch: 3 * ncomp values.
 */
static int dens_cert_round(dens_ws *w) {
  int32_t nc = w->ncomp;
  float *bw = sd_malloc_n((size_t)nc, 1, sizeof(float));
  float *lb = sd_malloc_n((size_t)nc, 1, sizeof(float));
  int32_t *ba = sd_malloc_n((size_t)nc, 2, sizeof(int32_t));
  if (!bw || !lb || !ba) {
    free(bw);
    free(lb);
    free(ba);
    return SD_ENOMEM;
  }
  for (int32_t c = 0; c < nc; c++) bw[c] = lb[c] = INFINITY;
  for (int32_t i = 0; i < w->s; i++) {
    int32_t c = w->comp[i], j;
    float cw, bound = dens_listed(w, i, &cw, &j);
    if (bound < lb[c]) lb[c] = bound;
    if (cw < bw[c]) {
      bw[c] = cw;
      ba[2 * c] = i;
      ba[2 * c + 1] = j;
    }
  }
  for (int32_t c = 0; c < nc; c++)
    if (bw[c] < INFINITY && bw[c] <= lb[c])
      dens_join(w, ba[2 * c], ba[2 * c + 1], bw[c]);
  dens_relabel(w);
  free(bw);
  free(lb);
  free(ba);
  return 0;
}

/* ---- MST step 3: exact passes over rows ordered by component ---- */

static void dens_perm_free(dens_perm *p) {
  free(p->x);
  free(p->base);
  free(p->core);
  free(p->comp);
  free(p->id);
  free(p->tcomp);
  free(p->bw);
  free(p->bj);
  memset(p, 0, sizeof *p);
}

static int dens_perm_alloc(const dens_ws *w, dens_perm *p) {
  size_t s = (size_t)w->s, tiles = s / DENS_TILE + 1;
  memset(p, 0, sizeof *p);
  p->x = sd_malloc_n(s, (size_t)w->dim, sizeof(float));
  p->base = sd_malloc_n(s, 1, sizeof(float));
  p->core = sd_malloc_n(s, 1, sizeof(float));
  p->comp = sd_malloc_n(s, 1, sizeof(int32_t));
  p->id = sd_malloc_n(s, 1, sizeof(int32_t));
  p->tcomp = sd_malloc_n(tiles, 1, sizeof(int32_t));
  p->bw = sd_malloc_n(s, 1, sizeof(float));
  p->bj = sd_malloc_n(s, 1, sizeof(int32_t));
  if (!p->x || !p->base || !p->core || !p->comp || !p->id || !p->tcomp ||
      !p->bw || !p->bj) {
    dens_perm_free(p);
    return SD_ENOMEM;
  }
  return 0;
}

/* Orders the rows by component (counting sort, stable) into p. */
static int dens_perm_fill(const dens_ws *w, dens_perm *p) {
  size_t d = (size_t)w->dim;
  int32_t s = w->s;
  int32_t *start = calloc((size_t)w->ncomp + 1, sizeof(int32_t));
  if (!start) return SD_ENOMEM;
  for (int32_t i = 0; i < s; i++) start[w->comp[i] + 1]++;
  for (int32_t c = 0; c < w->ncomp; c++) start[c + 1] += start[c];
  for (int32_t i = 0; i < s; i++) {
    int32_t at = start[w->comp[i]]++;
    p->id[at] = i;
    p->comp[at] = w->comp[i];
    p->base[at] = w->base[i];
    p->core[at] = w->core[i];
    memcpy(p->x + (size_t)at * d, w->xs + (size_t)i * d, d * sizeof(float));
  }
  for (int32_t t0 = 0, t = 0; t0 < s; t0 += DENS_TILE, t++) {
    int32_t end = s - t0 < DENS_TILE ? s : t0 + DENS_TILE;
    p->tcomp[t] = p->comp[t0] == p->comp[end - 1] ? p->comp[t0] : -1;
  }
  free(start);
  return 0;
}

/* Pair visitor of an exact pass: one tile of positions. */
typedef void (*dens_visit)(dens_perm *p, const float *tile, int32_t i0,
                           int bi, int32_t j0, int bj, int diag, void *ctx);

/* Runs visit over every tile pair i <= j holding pairs of two components. */
static void dens_sweep(const dens_ws *w, dens_perm *p, dens_visit visit,
                       void *ctx) {
  size_t d = (size_t)w->dim;
  int32_t s = w->s;
  for (int32_t i0 = 0; i0 < s; i0 += DENS_TILE) {
    int bi = s - i0 < DENS_TILE ? (int)(s - i0) : DENS_TILE;
    int32_t ti = p->tcomp[i0 / DENS_TILE];
    for (int32_t j0 = i0; j0 < s; j0 += DENS_TILE) {
      int bj = s - j0 < DENS_TILE ? (int)(s - j0) : DENS_TILE;
      if (ti >= 0 && ti == p->tcomp[j0 / DENS_TILE]) continue;
      dens_tile(w, p->x + (size_t)i0 * d, p->base + i0, bi,
                p->x + (size_t)j0 * d, p->base + j0, bj, w->tile);
      visit(p, w->tile, i0, bi, j0, bj, i0 == j0, ctx);
    }
  }
}

/* Borůvka visitor: cheapest outgoing edge of every position. */
static void dens_visit_min(dens_perm *p, const float *tile, int32_t i0, int bi,
                           int32_t j0, int bj, int diag, void *ctx) {
  (void)ctx;
  for (int r = 0; r < bi; r++) {
    const float *t = tile + (size_t)r * (size_t)bj;
    int32_t i = i0 + r, ci = p->comp[i], bjx = p->bj[i];
    float bw = p->bw[i], cr = p->core[i];
    for (int c = diag ? r + 1 : 0; c < bj; c++) {
      int32_t j = j0 + c;
      if (p->comp[j] == ci) continue;
      float v = t[c] > cr ? t[c] : cr;
      v = v > p->core[j] ? v : p->core[j];
      if (v < bw) {
        bw = v;
        bjx = j;
      }
      if (v < p->bw[j]) {
        p->bw[j] = v;
        p->bj[j] = i;
      }
    }
    p->bw[i] = bw;
    p->bj[i] = bjx;
  }
}

/* An exact Borůvka round: every component adds its cheapest edge. */
static int dens_boruvka_pass(dens_ws *w, dens_perm *p) {
  int32_t nc = w->ncomp, *best = sd_malloc_n((size_t)nc, 1, sizeof(int32_t));
  int rc = best ? dens_perm_fill(w, p) : SD_ENOMEM;
  if (rc) {
    free(best);
    return rc;
  }
  for (int32_t i = 0; i < w->s; i++) {
    p->bw[i] = INFINITY;
    p->bj[i] = -1;
  }
  dens_sweep(w, p, dens_visit_min, NULL);
  for (int32_t c = 0; c < nc; c++) best[c] = -1;
  for (int32_t i = 0; i < w->s; i++) {
    int32_t c = p->comp[i];
    if (p->bj[i] >= 0 && (best[c] < 0 || p->bw[i] < p->bw[best[c]]))
      best[c] = i;
  }
  for (int32_t c = 0; c < nc; c++)
    if (best[c] >= 0)
      dens_join(w, p->id[best[c]], p->id[p->bj[best[c]]], p->bw[best[c]]);
  dens_relabel(w);
  free(best);
  return 0;
}

/* Cheapest edge between each pair of components (upper triangle). */
typedef struct {
  int32_t nc;
  float *tw;       /* nc x nc weights */
  int32_t *ta;     /* nc x nc x 2: its ends (positions) */
} dens_table;

static void dens_visit_table(dens_perm *p, const float *tile, int32_t i0,
                             int bi, int32_t j0, int bj, int diag, void *ctx) {
  dens_table *tb = ctx;
  for (int r = 0; r < bi; r++) {
    const float *t = tile + (size_t)r * (size_t)bj;
    int32_t i = i0 + r, ci = p->comp[i];
    float cr = p->core[i];
    for (int c = diag ? r + 1 : 0; c < bj; c++) {
      int32_t j = j0 + c, cj = p->comp[j];
      if (cj == ci) continue;
      float v = t[c] > cr ? t[c] : cr;
      v = v > p->core[j] ? v : p->core[j];
      size_t at = ci < cj ? (size_t)ci * (size_t)tb->nc + (size_t)cj
                          : (size_t)cj * (size_t)tb->nc + (size_t)ci;
      if (v < tb->tw[at]) {
        tb->tw[at] = v;
        tb->ta[2 * at] = i;
        tb->ta[2 * at + 1] = j;
      }
    }
  }
}

/* Prim on the complete graph of components; adds its nc - 1 edges. */
static int dens_table_prim(dens_ws *w, const dens_perm *p,
                           const dens_table *tb) {
  int32_t nc = tb->nc, cur = 0;
  float *key = sd_malloc_n((size_t)nc, 1, sizeof(float));
  int32_t *from = sd_malloc_n((size_t)nc, 1, sizeof(int32_t));
  if (!key || !from) {
    free(key);
    free(from);
    return SD_ENOMEM;
  }
  for (int32_t c = 0; c < nc; c++) {
    key[c] = INFINITY;
    from[c] = -1;
  }
  key[0] = -1.0f; /* in the tree */
  for (int32_t step = 1; step < nc; step++) {
    int32_t next = -1;
    for (int32_t c = 0; c < nc; c++) {
      if (key[c] < 0.0f) continue;
      size_t at = cur < c ? (size_t)cur * (size_t)nc + (size_t)c
                          : (size_t)c * (size_t)nc + (size_t)cur;
      if (tb->tw[at] < key[c]) {
        key[c] = tb->tw[at];
        from[c] = (int32_t)at;
      }
      if (next < 0 || key[c] < key[next]) next = c;
    }
    dens_join(w, p->id[tb->ta[2 * (size_t)from[next]]],
              p->id[tb->ta[2 * (size_t)from[next] + 1]], key[next]);
    key[next] = -1.0f;
    cur = next;
  }
  free(key);
  free(from);
  return 0;
}

/* The rest of the MST at once, for few components (<= DENS_MAX_TABLE). */
static int dens_table_pass(dens_ws *w, dens_perm *p) {
  dens_table tb;
  size_t cells = (size_t)w->ncomp * (size_t)w->ncomp;
  tb.nc = w->ncomp;
  tb.tw = sd_malloc_n(cells, 1, sizeof(float));
  tb.ta = sd_malloc_n(cells, 2, sizeof(int32_t));
  int rc = tb.tw && tb.ta ? dens_perm_fill(w, p) : SD_ENOMEM;
  if (rc == 0) {
    for (size_t c = 0; c < cells; c++) tb.tw[c] = INFINITY;
    dens_sweep(w, p, dens_visit_table, &tb);
    rc = dens_table_prim(w, p, &tb);
  }
  if (rc == 0) dens_relabel(w);
  free(tb.tw);
  free(tb.ta);
  return rc;
}

/* ---- the MST ---- */

/* Minimum spanning tree of the mutual reachability graph into w->mst. */
static int dens_mst(dens_ws *w) {
  dens_perm p;
  int rc = 0, have_perm = 0;
  for (int32_t i = 0; i < w->s; i++) w->uf[i] = i;
  w->nmst = 0;
  dens_relabel(w);
  while (rc == 0 && w->ncomp > 1) {
    int32_t before = w->ncomp;
    rc = dens_cert_round(w);
    if (rc || w->ncomp == 1 || (before - w->ncomp) * 4 >= before) continue;
    if (!have_perm) {
      rc = dens_perm_alloc(w, &p);
      have_perm = rc == 0;
      if (rc) break;
    }
    before = w->ncomp;
    if (w->ncomp <= DENS_MAX_TABLE)
      rc = dens_table_pass(w, &p);
    else
      rc = dens_boruvka_pass(w, &p);
    if (rc == 0 && w->ncomp == before) rc = SD_EINTERNAL; /* cannot happen */
  }
  if (have_perm) dens_perm_free(&p);
  return rc;
}

/* ---- single linkage, condensed tree, excess of mass ---- */

typedef struct {
  int32_t s;
  int32_t *left, *right, *size; /* s - 1 merges; node s + t made by t */
  float *dist;                  /* true distance of each merge */
} dens_link;

static void dens_link_free(dens_link *l) {
  free(l->left);
  free(l->right);
  free(l->size);
  free(l->dist);
  memset(l, 0, sizeof *l);
}

static int dens_edge_cmp(const void *pa, const void *pb) {
  const dens_edge *a = pa, *b = pb;
  if (a->w != b->w) return a->w < b->w ? -1 : 1;
  if (a->a != b->a) return a->a < b->a ? -1 : 1;
  return (a->b > b->b) - (a->b < b->b);
}

/* Single-linkage merges from the MST, cheapest first. */
static int dens_linkage(dens_ws *w, dens_link *l) {
  int32_t s = w->s, m = s - 1;
  int32_t *node = sd_malloc_n((size_t)s, 1, sizeof(int32_t));
  memset(l, 0, sizeof *l);
  l->s = s;
  l->left = sd_malloc_n((size_t)s, 1, sizeof(int32_t));
  l->right = sd_malloc_n((size_t)s, 1, sizeof(int32_t));
  l->size = sd_malloc_n((size_t)s, 1, sizeof(int32_t));
  l->dist = sd_malloc_n((size_t)s, 1, sizeof(float));
  if (!node || !l->left || !l->right || !l->size || !l->dist) {
    free(node);
    dens_link_free(l);
    return SD_ENOMEM;
  }
  qsort(w->mst, (size_t)m, sizeof *w->mst, dens_edge_cmp);
  for (int32_t i = 0; i < s; i++) w->uf[i] = node[i] = i;
  for (int32_t t = 0; t < m; t++) {
    int32_t ra = dens_find(w->uf, w->mst[t].a);
    int32_t rb = dens_find(w->uf, w->mst[t].b);
    int32_t na = node[ra], nb = node[rb];
    l->left[t] = na;
    l->right[t] = nb;
    l->size[t] = (na < s ? 1 : l->size[na - s]) +
                 (nb < s ? 1 : l->size[nb - s]);
    l->dist[t] = w->spherical ? w->mst[t].w : sqrtf(w->mst[t].w);
    w->uf[rb] = ra;
    node[ra] = s + t;
  }
  free(node);
  return 0;
}

/* Condensed tree clusters: 0 is the root. */
typedef struct {
  int32_t n;
  int32_t *parent;
  double *birth, *stab; /* lambda at birth; sum of (lambda_out - birth) */
  int32_t *nlab;        /* per linkage node: cluster it belongs/fell to */
  uint8_t *fell;        /* per linkage node: 1 once its points fell out */
} dens_ctree;

static void dens_ctree_free(dens_ctree *c) {
  free(c->parent);
  free(c->birth);
  free(c->stab);
  free(c->nlab);
  free(c->fell);
  memset(c, 0, sizeof *c);
}

static double dens_lambda(float d) {
  return d > 0.0f ? 1.0 / (double)d : DENS_LAMBDA_MAX;
}

/* Node v's children enter as cluster `lab` (fell: their points fall out). */
static void dens_ct_mark(dens_ctree *ct, int32_t v, int32_t lab, int fell) {
  ct->nlab[v] = lab;
  ct->fell[v] = (uint8_t)fell;
}

/* Splits internal node v (merge t) of cluster L per min_cluster_size. */
static void dens_ct_split(dens_ctree *ct, const dens_link *l, int32_t t,
                          int mcs) {
  int32_t s = l->s, v = s + t, L = ct->nlab[v];
  int32_t a = l->left[t], b = l->right[t];
  int32_t sa = a < s ? 1 : l->size[a - s], sb = b < s ? 1 : l->size[b - s];
  if (ct->fell[v]) {
    dens_ct_mark(ct, a, L, 1);
    dens_ct_mark(ct, b, L, 1);
    return;
  }
  double lam = dens_lambda(l->dist[t]);
  int big_a = sa >= mcs, big_b = sb >= mcs;
  if (big_a && big_b) {
    for (int k = 0; k < 2; k++) {
      int32_t c = ct->n++;
      ct->parent[c] = L;
      ct->birth[c] = lam;
      ct->stab[c] = 0.0;
      dens_ct_mark(ct, k == 0 ? a : b, c, 0);
    }
    ct->stab[L] += (double)(sa + sb) * (lam - ct->birth[L]);
    return;
  }
  if (!big_a) ct->stab[L] += (double)sa * (lam - ct->birth[L]);
  if (!big_b) ct->stab[L] += (double)sb * (lam - ct->birth[L]);
  dens_ct_mark(ct, a, L, !big_a);
  dens_ct_mark(ct, b, L, !big_b);
}

/* Builds the condensed tree top-down (a parent is made after its children). */
static int dens_condense(const dens_link *l, int mcs, dens_ctree *ct) {
  int32_t s = l->s;
  size_t nodes = 2 * (size_t)s - 1;
  memset(ct, 0, sizeof *ct);
  ct->parent = sd_malloc_n((size_t)s + 1, 1, sizeof(int32_t));
  ct->birth = sd_malloc_n((size_t)s + 1, 1, sizeof(double));
  ct->stab = sd_malloc_n((size_t)s + 1, 1, sizeof(double));
  ct->nlab = sd_malloc_n(nodes, 1, sizeof(int32_t));
  ct->fell = sd_malloc_n(nodes, 1, sizeof(uint8_t));
  if (!ct->parent || !ct->birth || !ct->stab || !ct->nlab || !ct->fell) {
    dens_ctree_free(ct);
    return SD_ENOMEM;
  }
  ct->n = 1;
  ct->parent[0] = -1;
  ct->birth[0] = 0.0;
  ct->stab[0] = 0.0;
  dens_ct_mark(ct, (int32_t)nodes - 1, 0, 0);
  for (int32_t t = s - 2; t >= 0; t--) dens_ct_split(ct, l, t, mcs);
  return 0;
}

/*
 * Excess of mass: bottom-up, a cluster is kept when its own stability is at
 * least the sum of its children's best; the root only when single is set
 * (then every point is its member). sel[c] = the
 * selected cluster at or above c, or -1. Returns the number selected, with
 * out[c] in [0, k) for selected clusters.
 */
static int dens_select(const dens_ctree *ct, int single, int32_t *sel,
                       int32_t *out) {
  int32_t n = ct->n, k = 0;
  double *sub = calloc((size_t)n, sizeof(double));
  uint8_t *kids = calloc((size_t)n, 1);
  if (!sub || !kids) {
    free(sub);
    free(kids);
    return SD_ENOMEM;
  }
  for (int32_t c = n - 1; c >= 1; c--) {
    int keep = !kids[c] || !(sub[c] > ct->stab[c]);
    out[c] = keep ? 1 : 0;
    if (keep) sub[c] = ct->stab[c];
    sub[ct->parent[c]] += sub[c];
    kids[ct->parent[c]] = 1;
  }
  sel[0] = single && n > 1 && !(sub[0] > ct->stab[0]) ? 0 : -1;
  if (sel[0] == 0) out[0] = 0;
  for (int32_t c = 1; c < n; c++) {
    int32_t up = sel[ct->parent[c]];
    sel[c] = up >= 0 ? up : (out[c] ? c : -1);
  }
  if (sel[0] == 0) k = 1;
  for (int32_t c = 1; c < n; c++) out[c] = sel[c] == c ? k++ : -1;
  free(sub);
  free(kids);
  return k;
}

/* Labels of the worked rows: lab[i] in [0, k) or -1; returns k or < 0. */
static int dens_hdbscan(dens_ws *w, int32_t *lab) {
  dens_link l;
  dens_ctree ct;
  int rc = dens_linkage(w, &l);
  if (rc) return rc;
  rc = dens_condense(&l, w->mcs, &ct);
  dens_link_free(&l);
  if (rc) return rc;
  int32_t *sel = sd_malloc_n((size_t)ct.n, 1, sizeof(int32_t));
  int32_t *out = sd_malloc_n((size_t)ct.n, 1, sizeof(int32_t));
  rc = sel && out ? dens_select(&ct, w->single, sel, out) : SD_ENOMEM;
  for (int32_t i = 0; rc >= 0 && i < w->s; i++) {
    int32_t c = sel[ct.nlab[i]];
    lab[i] = c >= 0 ? out[c] : -1;
  }
  free(sel);
  free(out);
  dens_ctree_free(&ct);
  return rc;
}

/* ---- rows outside the sample ---- */

/* Labelled worked rows (the candidates) and one block of other rows. */
typedef struct {
  size_t q;                    /* labelled worked rows */
  float *xq, *bq, *cq;         /* q x dim rows, base, core distance */
  int32_t *lq;                 /* q: their clusters */
  float *xr, *br, *bd;         /* DENS_TILE rows of a block, base, best */
  int32_t *bj;                 /* DENS_TILE: nearest candidate */
  size_t *rid;                 /* DENS_TILE: rows of x in the block */
  int nr;                      /* rows in the block */
} dens_rest;

static void dens_rest_free(dens_rest *r) {
  free(r->xq);
  free(r->bq);
  free(r->cq);
  free(r->lq);
  free(r->xr);
  free(r->br);
  free(r->bd);
  free(r->bj);
  free(r->rid);
  memset(r, 0, sizeof *r);
}

/* Gathers the labelled worked rows; allocates the block buffers. */
static int dens_rest_init(const dens_ws *w, const int32_t *lab, dens_rest *r) {
  size_t d = (size_t)w->dim, q = 0;
  memset(r, 0, sizeof *r);
  for (int32_t i = 0; i < w->s; i++) q += lab[i] >= 0;
  r->q = q;
  r->xq = sd_malloc_n(q, d, sizeof(float));
  r->bq = sd_malloc_n(q, 1, sizeof(float));
  r->cq = sd_malloc_n(q, 1, sizeof(float));
  r->lq = sd_malloc_n(q, 1, sizeof(int32_t));
  r->xr = sd_malloc_n(DENS_TILE, d, sizeof(float));
  r->br = sd_malloc_n(DENS_TILE, 1, sizeof(float));
  r->bd = sd_malloc_n(DENS_TILE, 1, sizeof(float));
  r->bj = sd_malloc_n(DENS_TILE, 1, sizeof(int32_t));
  r->rid = sd_malloc_n(DENS_TILE, 1, sizeof(size_t));
  if (!r->xq || !r->bq || !r->cq || !r->lq || !r->xr || !r->br || !r->bd ||
      !r->bj || !r->rid) {
    dens_rest_free(r);
    return SD_ENOMEM;
  }
  for (int32_t i = 0, at = 0; i < w->s; i++) {
    if (lab[i] < 0) continue;
    memcpy(r->xq + (size_t)at * d, w->xs + (size_t)i * d, d * sizeof(float));
    r->bq[at] = w->base[i];
    r->cq[at] = w->core[i];
    r->lq[at++] = lab[i];
  }
  return 0;
}

/* Labels the r->nr rows of the block. SD_EINVAL on a non-finite value. */
static int dens_rest_block(const dens_ws *w, dens_rest *r, int32_t *labels) {
  size_t d = (size_t)w->dim;
  for (int k = 0; k < r->nr; k++) {
    const float *xi = w->x + r->rid[k] * d;
    float *o = r->xr + (size_t)k * d;
    double nn = 0.0;
    for (size_t e = 0; e < d; e++) {
      o[e] = (float)(xi[e] - w->mean[e]);
      nn += (double)o[e] * o[e];
    }
    if (!isfinite((float)nn)) return SD_EINVAL;
    r->br[k] = w->spherical ? 0.5f : (float)nn;
    r->bd[k] = INFINITY;
    r->bj[k] = -1;
  }
  for (size_t j0 = 0; j0 < r->q; j0 += DENS_TILE) {
    int nb = r->q - j0 < DENS_TILE ? (int)(r->q - j0) : DENS_TILE;
    dens_tile(w, r->xr, r->br, r->nr, r->xq + j0 * d, r->bq + j0, nb, w->tile);
    for (int k = 0; k < r->nr; k++)
      for (int c = 0; c < nb; c++)
        if (w->tile[(size_t)k * (size_t)nb + (size_t)c] < r->bd[k]) {
          r->bd[k] = w->tile[(size_t)k * (size_t)nb + (size_t)c];
          r->bj[k] = (int32_t)j0 + c;
        }
  }
  for (int k = 0; k < r->nr; k++) {
    int32_t j = r->bj[k];
    labels[r->rid[k]] = j >= 0 && r->bd[k] <= r->cq[j] ? r->lq[j] : -1;
  }
  r->nr = 0;
  return 0;
}

/*
 * labels for all n rows: worked rows from lab; each other row takes the
 * cluster of its nearest labelled worked row if within that row's core
 * distance, else -1.
 */
static int dens_assign(const dens_ws *w, const int32_t *lab, int32_t *labels) {
  dens_rest r;
  size_t t = 0;
  for (int32_t i = 0; i < w->s; i++) labels[w->sidx[i]] = lab[i];
  if ((size_t)w->s == w->n) return 0;
  int rc = dens_rest_init(w, lab, &r);
  for (size_t i = 0; rc == 0 && i < w->n; i++) {
    if (t < (size_t)w->s && w->sidx[t] == i) {
      t++;
      continue;
    }
    r.rid[r.nr++] = i;
    if (r.nr == DENS_TILE) rc = dens_rest_block(w, &r, labels);
  }
  if (rc == 0 && r.nr > 0) rc = dens_rest_block(w, &r, labels);
  dens_rest_free(&r);
  return rc;
}

/* ---- results ---- */

/* Means of each cluster's rows of x (unit when spherical) into out. */
static int dens_centroids(const dens_ws *w, const int32_t *labels, int k,
                          float *out) {
  size_t d = (size_t)w->dim;
  double *sums = sd_malloc_n((size_t)k, d, sizeof(double));
  size_t *cnt = calloc((size_t)k + 1, sizeof(size_t));
  if (!sums || !cnt) {
    free(sums);
    free(cnt);
    return SD_ENOMEM;
  }
  memset(sums, 0, (size_t)k * d * sizeof(double));
  for (size_t i = 0; i < w->n; i++) {
    if (labels[i] < 0) continue;
    double *s = sums + (size_t)labels[i] * d;
    const float *xi = w->x + i * d;
    cnt[labels[i]]++;
    for (size_t e = 0; e < d; e++) s[e] += xi[e];
  }
  for (int c = 0; c < k; c++) {
    double *s = sums + (size_t)c * d, nn = 0.0;
    double scale = cnt[c] ? 1.0 / (double)cnt[c] : 0.0;
    for (size_t e = 0; e < d; e++) nn += s[e] * s[e];
    if (w->spherical && nn > 0.0) scale = 1.0 / sqrt(nn);
    for (size_t e = 0; e < d; e++)
      out[(size_t)c * d + e] = (float)(s[e] * scale);
  }
  free(sums);
  free(cnt);
  return 0;
}

/* Checks the arguments and sets the sizes of w (defaults applied). */
static int dens_params(const float *x, size_t n, int dim,
                       const sd_density_opts *o, dens_ws *w) {
  if (!x || !o || n == 0 || dim < 1 || dim > DENS_MAX_DIM) return SD_EINVAL;
  if (n > SIZE_MAX / sizeof(double) / (size_t)dim) return SD_EINVAL;
  if (o->min_cluster_size < 0 || o->min_cluster_size == 1) return SD_EINVAL;
  if (o->min_samples < 0 || o->min_samples > DENS_MAX_SAMPLES)
    return SD_EINVAL;
  if (o->max_points > DENS_MAX_POINTS) return SD_EINVAL;
  size_t maxp = o->max_points ? o->max_points : DENS_DEF_POINTS;
  memset(w, 0, sizeof *w);
  w->x = x;
  w->n = n;
  w->dim = dim;
  w->spherical = o->spherical ? 1 : 0;
  w->mcs = o->min_cluster_size ? o->min_cluster_size : DENS_DEF_MCS;
  w->single = o->allow_single_cluster;
  w->ms = o->min_samples ? o->min_samples
          : w->mcs < DENS_MAX_SAMPLES ? w->mcs : DENS_MAX_SAMPLES;
  w->s = (int32_t)(n < maxp ? n : maxp);
  if (w->ms > w->s) w->ms = w->s;
  w->K = w->ms - 1 > DENS_KNN ? w->ms - 1 : DENS_KNN;
  if (w->K > w->s - 1) w->K = w->s - 1;
  return 0;
}

/* Everything after the arguments are checked: labels, k, centroids. */
static int dens_run(dens_ws *w, uint64_t seed, sd_density_result *out) {
  int32_t *lab = sd_malloc_n((size_t)w->s, 1, sizeof(int32_t));
  out->labels = sd_malloc_n(w->n, 1, sizeof(int32_t));
  if (!lab || !out->labels) {
    free(lab);
    return SD_ENOMEM;
  }
  dens_pick(w, seed);
  int rc = dens_load(w);
  if (rc == 0 && w->K > 0) dens_core_pass(w);
  if (rc == 0 && w->K == 0) w->core[0] = 0.0f;
  if (rc == 0) rc = dens_mst(w);
  if (rc == 0) rc = dens_hdbscan(w, lab);
  if (rc >= 0) {
    out->k = rc;
    rc = dens_assign(w, lab, out->labels);
  }
  free(lab);
  if (rc) return rc;
  out->centroids = sd_malloc_n((size_t)out->k, (size_t)w->dim, sizeof(float));
  if (!out->centroids) return SD_ENOMEM;
  for (size_t i = 0; i < w->n; i++) out->noise += out->labels[i] < 0;
  return dens_centroids(w, out->labels, out->k, out->centroids);
}

/* ---- public API ---- */

int sd_density_fit(const float *x, size_t n, int dim,
                   const sd_density_opts *o, sd_density_result *out) {
  dens_ws w;
  if (!out) return SD_EINVAL;
  memset(out, 0, sizeof *out);
  int rc = dens_params(x, n, dim, o, &w);
  if (rc) return rc;
  rc = dens_ws_init(&w);
  if (rc) return rc;
  out->dim = dim;
  rc = dens_run(&w, o->seed, out);
  dens_ws_free(&w);
  if (rc) sd_density_result_free(out);
  return rc;
}

void sd_density_result_free(sd_density_result *r) {
  if (!r) return;
  free(r->labels);
  free(r->centroids);
  memset(r, 0, sizeof *r);
}
