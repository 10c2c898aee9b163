/*
 * embed_lsa.c -- latent semantic analysis of hashed TF-IDF rows by
 * randomised truncated SVD (see embed_lsa.h).
 *
 * The fit follows Halko, Martinsson & Tropp (2011), Algorithms 4.4 and 5.1,
 * as scikit-learn's randomized_svd does:
 *   1. The columns of X (n x buckets, sparse) are compacted to the u buckets
 *      that occur; Omega (u x l, l = dim + oversample) is standard Gaussian
 *      from a seeded xoshiro256** stream.
 *   2. Range finder: Q = orth(X Omega), then power_iters times
 *      Q = orth(X orth1(X^T Q)). Sparse-times-dense products are one
 *      cblas_saxpy of length l per nonzero.
 *   3. B = Q^T X is kept as its transpose W = X^T Q (u x l). The l x l
 *      matrix B B^T = W^T W is diagonalised by cyclic Jacobi in double:
 *      B B^T = U S^2 U^T, so V = B^T U S^-1 = W (U S^-1), one sgemm.
 *
 * orth() is Cholesky-QR2 (Fukaya et al. 2014): the Gram matrix A^T A is
 * accumulated in double (dsyrk over blocks of rows converted from float),
 * factored A^T A = R^T R by a Cholesky that drops numerically dependent
 * columns (their Q column becomes zero: the rank of X is below l), and
 * A <- A R^-1 by cblas_strmm in place; twice, so Q is orthonormal to float
 * precision even when A is ill-conditioned. Doubles in the small l x l
 * parts cost nothing and keep the squared condition number of the Gram
 * matrix harmless. orth1() is a single pass, used on X^T Q: with Q
 * orthonormal its condition number is at most sigma_1 / sigma_l, so one
 * pass renormalises it well enough, and the u x l Gram matrices are the
 * dominant cost of the fit (u, the buckets, is usually several times n).
 *
 * The fitted table holds the sorted bucket ids and one row of dim floats
 * per bucket; sd_lsa_project finds rows by binary search. Signs are fixed
 * (the largest entry of each left singular vector in the Q basis is
 * positive), so a seed gives one table for a given BLAS.
 */
#include "segmentd/embed_lsa.h"

#include <assert.h>
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "segmentd/alloc.h"
#include "segmentd/err.h"
#include "segmentd/rng.h"

#define LSA_MAGIC "SDLS"
#define LSA_FORMAT 1u
#define LSA_HEADER 16u          /* magic, format, dim, buckets */
#define LSA_BLOCK_ROWS 512      /* rows per double Gram / sgemm block */
#define LSA_DROP_TOL 1e-12      /* Cholesky: dependent when d < tol*a_jj */
#define LSA_ZERO_SV 1e-6        /* sigma_j < this * sigma_0: zero column */
#define LSA_JACOBI_SWEEPS 64    /* cyclic Jacobi converges in ~10 */

struct sd_lsa {
  int dim;
  size_t u;          /* buckets kept */
  uint32_t *bucket;  /* u, strictly increasing */
  float *sv;         /* dim singular values, largest first */
  float *v;          /* u x dim projection rows */
};

/* ---- random directions ---- */

/* Uniform in (-1, 1) with 53 random bits. */
static double lsa_rng_sym(sd_rng *r) {
  return (double)(sd_rng_next(r) >> 11) * 0x1.0p-52 - 1.0;
}

/* n standard normal floats (Marsaglia's polar method). */
static void lsa_gauss_fill(sd_rng *r, float *out, size_t n) {
  for (size_t i = 0; i < n; i += 2) {
    double a, b, s;
    do {
      a = lsa_rng_sym(r);
      b = lsa_rng_sym(r);
      s = a * a + b * b;
    } while (s >= 1.0 || s == 0.0);
    double f = sqrt(-2.0 * log(s) / s);
    out[i] = (float)(a * f);
    if (i + 1 < n) out[i + 1] = (float)(b * f);
  }
}

/* ---- memory ---- */

/* ---- sparse rows ---- */

int sd_csr_push(sd_csr *m, const uint32_t *idx, const float *val, size_t n) {
  if (!m || (n > 0 && (!idx || !val))) return SD_EINVAL;
  for (size_t i = 1; i < n; i++)
    if (idx[i] <= idx[i - 1]) return SD_EINVAL;
  if (m->nnz > SIZE_MAX / 8 || n > SIZE_MAX / 8 - m->nnz ||
      m->n_rows > SIZE_MAX / 64)
    return SD_ENOMEM;
  if (!m->ptr || m->n_rows + 2 > m->ptr_cap) {
    size_t nc = m->ptr_cap ? m->ptr_cap * 2 : 64;
    while (nc < m->n_rows + 2) nc *= 2;
    size_t *np = realloc(m->ptr, nc * sizeof(*np));
    if (!np) return SD_ENOMEM;
    if (!m->ptr) np[0] = 0;
    m->ptr = np;
    m->ptr_cap = nc;
  }
  if (m->nnz + n > m->cap || !m->col) {
    size_t nc = m->cap ? m->cap * 2 : 256;
    while (nc < m->nnz + n) nc *= 2;
    uint32_t *ncol = sd_malloc_n(nc, 1, sizeof(*ncol));
    float *nval = sd_malloc_n(nc, 1, sizeof(*nval));
    if (!ncol || !nval) {
      free(ncol);
      free(nval);
      return SD_ENOMEM;
    }
    if (m->nnz) {
      memcpy(ncol, m->col, m->nnz * sizeof(*ncol));
      memcpy(nval, m->val, m->nnz * sizeof(*nval));
    }
    free(m->col);
    free(m->val);
    m->col = ncol;
    m->val = nval;
    m->cap = nc;
  }
  if (n) {
    memcpy(m->col + m->nnz, idx, n * sizeof(*idx));
    memcpy(m->val + m->nnz, val, n * sizeof(*val));
  }
  m->nnz += n;
  m->ptr[++m->n_rows] = m->nnz;
  return 0;
}

void sd_csr_free(sd_csr *m) {
  if (!m) return;
  free(m->ptr);
  free(m->col);
  free(m->val);
  memset(m, 0, sizeof(*m));
}

/* Well-formed rows: offsets in order, columns increasing, values finite. */
static int lsa_check_csr(const sd_csr *m) {
  if (!m->ptr || m->ptr[0] != 0 || m->ptr[m->n_rows] != m->nnz)
    return SD_EINVAL;
  if (m->nnz > 0 && (!m->col || !m->val)) return SD_EINVAL;
  for (size_t i = 0; i < m->n_rows; i++) {
    size_t a = m->ptr[i], b = m->ptr[i + 1];
    if (b < a || b > m->nnz) return SD_EINVAL;
    for (size_t k = a; k < b; k++) {
      if (!isfinite(m->val[k])) return SD_EINVAL;
      if (k > a && m->col[k] <= m->col[k - 1]) return SD_EINVAL;
    }
  }
  return 0;
}

static int lsa_cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* Index of bucket b in the sorted a[0..n), or -1. */
static long lsa_find(const uint32_t *a, size_t n, uint32_t b) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (a[mid] < b)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && a[lo] == b ? (long)lo : -1;
}

/*
 * The buckets that occur in m, sorted (*bucket, *u), and each nonzero's
 * compact column in *ccol (nnz entries). 0 or SD_ENOMEM.
 */
static int lsa_compact(const sd_csr *m, uint32_t **bucket, size_t *u,
                       uint32_t **ccol) {
  uint32_t *b = sd_malloc_n(m->nnz, 1, sizeof(*b));
  uint32_t *c = sd_malloc_n(m->nnz, 1, sizeof(*c));
  if (!b || !c) {
    free(b);
    free(c);
    return SD_ENOMEM;
  }
  memcpy(b, m->col, m->nnz * sizeof(*b));
  qsort(b, m->nnz, sizeof(*b), lsa_cmp_u32);
  size_t n = 0;
  for (size_t k = 0; k < m->nnz; k++)
    if (k == 0 || b[k] != b[n - 1]) b[n++] = b[k];
  for (size_t k = 0; k < m->nnz; k++)
    c[k] = (uint32_t)lsa_find(b, n, m->col[k]);
  uint32_t *shrunk = realloc(b, n * sizeof(*b));
  *bucket = shrunk ? shrunk : b;
  *u = n;
  *ccol = c;
  return 0;
}

/* ---- products of the sparse X (n x u) with dense l-column blocks ---- */

typedef struct {
  const sd_csr *m;
  const uint32_t *ccol; /* compact columns of m's nonzeros */
  size_t u;
} lsa_x;

/* y (n x l) = X w, w u x l. */
static void lsa_mul(const lsa_x *x, const float *w, int l, float *y) {
  const sd_csr *m = x->m;
  memset(y, 0, m->n_rows * (size_t)l * sizeof(float));
  for (size_t i = 0; i < m->n_rows; i++) {
    float *yi = y + i * (size_t)l;
    for (size_t k = m->ptr[i]; k < m->ptr[i + 1]; k++)
      cblas_saxpy(l, m->val[k], w + (size_t)x->ccol[k] * (size_t)l, 1, yi, 1);
  }
}

/* w (u x l) = X^T y, y n x l. */
static void lsa_mul_t(const lsa_x *x, const float *y, int l, float *w) {
  const sd_csr *m = x->m;
  memset(w, 0, x->u * (size_t)l * sizeof(float));
  for (size_t i = 0; i < m->n_rows; i++) {
    const float *yi = y + i * (size_t)l;
    for (size_t k = m->ptr[i]; k < m->ptr[i + 1]; k++)
      cblas_saxpy(l, m->val[k], yi, 1, w + (size_t)x->ccol[k] * (size_t)l, 1);
  }
}

/* ---- small dense linear algebra in double ---- */

typedef struct {
  int l;
  double *g;   /* l x l Gram matrix (upper) */
  double *r;   /* l x l Cholesky factor */
  double *ri;  /* l x l its inverse */
  double *blk; /* LSA_BLOCK_ROWS x l: rows converted to double */
  float *rif;  /* l x l the inverse in float, for strmm */
} lsa_ws;

static void lsa_ws_free(lsa_ws *w) {
  free(w->g);
  free(w->r);
  free(w->ri);
  free(w->blk);
  free(w->rif);
  memset(w, 0, sizeof(*w));
}

static int lsa_ws_init(lsa_ws *w, int l) {
  memset(w, 0, sizeof(*w));
  w->l = l;
  w->g = sd_malloc_n((size_t)l, (size_t)l, sizeof(double));
  w->r = sd_malloc_n((size_t)l, (size_t)l, sizeof(double));
  w->ri = sd_malloc_n((size_t)l, (size_t)l, sizeof(double));
  w->blk = sd_malloc_n(LSA_BLOCK_ROWS, (size_t)l, sizeof(double));
  w->rif = sd_malloc_n((size_t)l, (size_t)l, sizeof(float));
  if (!w->g || !w->r || !w->ri || !w->blk || !w->rif) {
    lsa_ws_free(w);
    return SD_ENOMEM;
  }
  return 0;
}

/* g (upper triangle) = a^T a for a (rows x l floats), accumulated in double. */
static void lsa_gram(const float *a, size_t rows, lsa_ws *w) {
  int l = w->l;
  memset(w->g, 0, (size_t)l * (size_t)l * sizeof(double));
  for (size_t i0 = 0; i0 < rows; i0 += LSA_BLOCK_ROWS) {
    size_t b = rows - i0 < LSA_BLOCK_ROWS ? rows - i0 : LSA_BLOCK_ROWS;
    const float *src = a + i0 * (size_t)l;
    for (size_t e = 0; e < b * (size_t)l; e++) w->blk[e] = src[e];
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, l, (int)b, 1.0, w->blk,
                l, 1.0, w->g, l);
  }
}

/*
 * Upper Cholesky factor r of the Gram matrix g (upper triangle read),
 * right-looking so the updates run along rows. A column whose squared
 * distance to the span of the earlier ones is below LSA_DROP_TOL times its
 * squared norm is dependent: its row of r is zero (r_jj = 0).
 */
static void lsa_chol(lsa_ws *w) {
  int l = w->l;
  double *r = w->r;
  memcpy(r, w->g, (size_t)l * (size_t)l * sizeof(double));
  for (int j = 0; j < l; j++) {
    double *rj = r + (size_t)j * (size_t)l;
    double d = rj[j], a = w->g[(size_t)j * (size_t)l + j];
    if (!(a > 0.0) || !(d > LSA_DROP_TOL * a)) {
      for (int c = 0; c < l; c++) rj[c] = 0.0;
      continue;
    }
    double s = sqrt(d), inv = 1.0 / s;
    rj[j] = s;
    for (int c = j + 1; c < l; c++) rj[c] *= inv;
    for (int i = j + 1; i < l; i++) {
      double f = rj[i];
      double *ri = r + (size_t)i * (size_t)l;
      for (int c = i; c < l; c++) ri[c] -= f * rj[c];
    }
  }
  for (int i = 1; i < l; i++)
    for (int c = 0; c < i; c++) r[(size_t)i * (size_t)l + c] = 0.0;
}

/* ri = r^-1 for the upper r, with dropped (r_jj = 0) rows and columns 0. */
static void lsa_tri_inv(lsa_ws *w) {
  int l = w->l;
  const double *r = w->r;
  double *ri = w->ri;
  memset(ri, 0, (size_t)l * (size_t)l * sizeof(double));
  for (int c = 0; c < l; c++) {
    if (r[(size_t)c * (size_t)l + c] == 0.0) continue;
    ri[(size_t)c * (size_t)l + c] = 1.0 / r[(size_t)c * (size_t)l + c];
    for (int i = c - 1; i >= 0; i--) {
      const double *rr = r + (size_t)i * (size_t)l;
      if (rr[i] == 0.0) continue;
      double s = 0.0;
      for (int k = i + 1; k <= c; k++)
        s += rr[k] * ri[(size_t)k * (size_t)l + c];
      ri[(size_t)i * (size_t)l + c] = -s / rr[i];
    }
  }
}

/* a (rows x l) <- a R^-1 where a^T a = R^T R: one Cholesky-QR pass. */
static void lsa_orth_pass(float *a, size_t rows, lsa_ws *w) {
  int l = w->l;
  lsa_gram(a, rows, w);
  lsa_chol(w);
  lsa_tri_inv(w);
  for (size_t e = 0; e < (size_t)l * (size_t)l; e++)
    w->rif[e] = (float)w->ri[e];
  cblas_strmm(CblasRowMajor, CblasRight, CblasUpper, CblasNoTrans,
              CblasNonUnit, (int)rows, l, 1.0f, w->rif, l, a, l);
}

/* Orthonormal columns spanning those of a (dependent ones zeroed). */
static void lsa_orth(float *a, size_t rows, lsa_ws *w) {
  lsa_orth_pass(a, rows, w);
  lsa_orth_pass(a, rows, w);
}

/*
 * Eigen-decomposition of the symmetric n x n matrix a (full storage,
 * destroyed) by cyclic Jacobi rotations: on return lam[i] are the
 * eigenvalues (unsorted) and row i of e the unit eigenvector of lam[i].
 */
static void lsa_jacobi(double *a, int n, double *e, double *lam) {
  size_t N = (size_t)n;
  memset(e, 0, N * N * sizeof(double));
  for (size_t i = 0; i < N; i++) e[i * N + i] = 1.0;
  for (int sweep = 0; sweep < LSA_JACOBI_SWEEPS; sweep++) {
    double off = 0.0, diag = 0.0;
    for (size_t p = 0; p < N; p++) {
      diag += a[p * N + p] * a[p * N + p];
      for (size_t q = p + 1; q < N; q++) off += a[p * N + q] * a[p * N + q];
    }
    if (!(off > 1e-30 * diag)) break;
    for (size_t p = 0; p + 1 < N; p++) {
      for (size_t q = p + 1; q < N; q++) {
        double apq = a[p * N + q];
        double app = a[p * N + p], aqq = a[q * N + q];
        if (fabs(apq) <= 1e-18 * (fabs(app) + fabs(aqq))) {
          a[p * N + q] = a[q * N + p] = 0.0; /* below the diagonal's noise */
          continue;
        }
        double theta = (aqq - app) / (2.0 * apq);
        double t = (theta >= 0 ? 1.0 : -1.0) /
                   (fabs(theta) + sqrt(theta * theta + 1.0));
        double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
        double *rp = a + p * N, *rq = a + q * N;
        for (size_t k = 0; k < N; k++) { /* rows p and q */
          double xp = rp[k], xq = rq[k];
          rp[k] = c * xp - s * xq;
          rq[k] = s * xp + c * xq;
        }
        for (size_t k = 0; k < N; k++) { /* columns p and q */
          double *rk = a + k * N;
          double xp = rk[p], xq = rk[q];
          rk[p] = c * xp - s * xq;
          rk[q] = s * xp + c * xq;
        }
        a[p * N + q] = a[q * N + p] = 0.0;
        double *ep = e + p * N, *eq = e + q * N;
        for (size_t k = 0; k < N; k++) {
          double xp = ep[k], xq = eq[k];
          ep[k] = c * xp - s * xq;
          eq[k] = s * xp + c * xq;
        }
      }
    }
  }
  for (size_t i = 0; i < N; i++) lam[i] = a[i * N + i];
}

/* ---- the fit ---- */

sd_lsa_opts sd_lsa_defaults(int dim) {
  sd_lsa_opts o;
  memset(&o, 0, sizeof(o));
  o.dim = dim;
  o.oversample = 10;
  o.power_iters = 5;
  o.seed = 0;
  return o;
}

void sd_lsa_free(sd_lsa *l) {
  if (!l) return;
  free(l->bucket);
  free(l->sv);
  free(l->v);
  free(l);
}

static int lsa_check_opts(const sd_csr *m, const sd_lsa_opts *o) {
  if (!m || !o) return SD_EINVAL;
  if (o->dim < 1 || o->dim > SD_LSA_MAX_DIM) return SD_EINVAL;
  if (o->oversample < 0 || o->oversample > SD_LSA_MAX_OVERSAMPLE)
    return SD_EINVAL;
  if (o->power_iters < 0 || o->power_iters > SD_LSA_MAX_POWER_ITERS)
    return SD_EINVAL;
  if (m->n_rows < (size_t)o->dim || m->n_rows > INT_MAX) return SD_EINVAL;
  return lsa_check_csr(m);
}

/* The range finder: y (n x l) orthonormal, spanning ~ the top of range(X).
 * w (u x l) is scratch. */
static void lsa_range(const lsa_x *x, int l, int iters, uint64_t seed,
                      float *w, float *y, lsa_ws *ws) {
  sd_rng rng;
  sd_rng_init(&rng, seed);
  lsa_gauss_fill(&rng, w, x->u * (size_t)l);
  lsa_mul(x, w, l, y);
  lsa_orth(y, x->m->n_rows, ws);
  for (int it = 0; it < iters; it++) {
    lsa_mul_t(x, y, l, w);
    lsa_orth_pass(w, x->u, ws); /* orth1: see the top of the file */
    lsa_mul(x, w, l, y);
    lsa_orth(y, x->m->n_rows, ws);
  }
}

/*
 * From W = B^T = X^T Q (u x l, in l->v's buffer): singular values into
 * l->sv and V = W U S^-1 (u x dim) written over W in place, row block by
 * row block (block i's output ends before block i+1's input starts).
 */
static int lsa_finish(sd_lsa *out, int l, lsa_ws *ws) {
  int dim = out->dim, rc = SD_ENOMEM;
  size_t L = (size_t)l;
  double *e = sd_malloc_n(L, L, sizeof(double));
  double *lam = sd_malloc_n(L, 1, sizeof(double));
  int *ord = sd_malloc_n(L, 1, sizeof(int));
  float *mx = sd_malloc_n(L, (size_t)dim, sizeof(float));
  float *tmp = sd_malloc_n(LSA_BLOCK_ROWS, (size_t)dim, sizeof(float));
  if (!e || !lam || !ord || !mx || !tmp) goto done;
  lsa_gram(out->v, out->u, ws); /* B B^T */
  for (size_t i = 0; i < L; i++)
    for (size_t j = 0; j < i; j++) ws->g[i * L + j] = ws->g[j * L + i];
  lsa_jacobi(ws->g, l, e, lam);
  for (int i = 0; i < l; i++) { /* insertion sort, largest first */
    int j = i;
    while (j > 0 && lam[ord[j - 1]] < lam[i]) {
      ord[j] = ord[j - 1];
      j--;
    }
    ord[j] = i;
  }
  double s0 = lam[ord[0]] > 0 ? sqrt(lam[ord[0]]) : 0.0;
  for (int j = 0; j < dim; j++) {
    const double *ej = e + (size_t)ord[j] * L;
    double s = lam[ord[j]] > 0 ? sqrt(lam[ord[j]]) : 0.0;
    size_t big = 0;
    for (size_t k = 1; k < L; k++)
      if (fabs(ej[k]) > fabs(ej[big])) big = k;
    int zero = !(s > 0.0) || s < LSA_ZERO_SV * s0;
    double f = zero ? 0.0 : (ej[big] < 0 ? -1.0 : 1.0) / s;
    out->sv[j] = (float)s;
    for (size_t k = 0; k < L; k++) mx[k * (size_t)dim + j] = (float)(ej[k] * f);
  }
  for (size_t i0 = 0; i0 < out->u; i0 += LSA_BLOCK_ROWS) {
    size_t b = out->u - i0 < LSA_BLOCK_ROWS ? out->u - i0 : LSA_BLOCK_ROWS;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)b, dim, l,
                1.0f, out->v + i0 * L, l, mx, dim, 0.0f, tmp, dim);
    memcpy(out->v + i0 * (size_t)dim, tmp, b * (size_t)dim * sizeof(float));
  }
  float *shrunk = realloc(out->v, out->u * (size_t)dim * sizeof(float));
  if (shrunk) out->v = shrunk;
  rc = 0;
done:
  free(e);
  free(lam);
  free(ord);
  free(mx);
  free(tmp);
  return rc;
}

int sd_lsa_fit(const sd_csr *m, const sd_lsa_opts *o, sd_lsa **out) {
  if (!out) return SD_EINVAL;
  *out = NULL;
  int rc = lsa_check_opts(m, o);
  if (rc) return rc;
  if (m->nnz == 0) return SD_EINVAL;
  sd_lsa *r = calloc(1, sizeof(*r));
  uint32_t *ccol = NULL;
  float *y = NULL;
  size_t l;
  lsa_x x;
  lsa_ws ws;
  memset(&ws, 0, sizeof(ws));
  if (!r) return SD_ENOMEM;
  r->dim = o->dim;
  rc = lsa_compact(m, &r->bucket, &r->u, &ccol);
  if (rc) goto fail;
  rc = SD_EINVAL;
  if (r->u > INT_MAX) goto fail;
  /* l: dim + oversample, but no more than the rank can be (>= dim). */
  l = (size_t)o->dim + (size_t)o->oversample;
  if (l > m->n_rows) l = m->n_rows;
  if (l > r->u) l = r->u;
  if (l < (size_t)o->dim) l = (size_t)o->dim;
  rc = SD_ENOMEM;
  r->sv = sd_malloc_n((size_t)o->dim, 1, sizeof(float));
  r->v = sd_malloc_n(r->u, l, sizeof(float));
  y = sd_malloc_n(m->n_rows, l, sizeof(float));
  if (!r->sv || !r->v || !y || lsa_ws_init(&ws, (int)l)) goto fail;
  x.m = m;
  x.ccol = ccol;
  x.u = r->u;
  lsa_range(&x, (int)l, o->power_iters, o->seed, r->v, y, &ws);
  lsa_mul_t(&x, y, (int)l, r->v); /* B^T = X^T Q */
  free(y);
  y = NULL;
  free(ccol);
  ccol = NULL;
  rc = lsa_finish(r, (int)l, &ws);
  if (rc) goto fail;
  lsa_ws_free(&ws);
  *out = r;
  return 0;
fail:
  lsa_ws_free(&ws);
  free(y);
  free(ccol);
  sd_lsa_free(r);
  return rc;
}

/* ---- use ---- */

int sd_lsa_dim(const sd_lsa *l) { return l->dim; }

size_t sd_lsa_buckets(const sd_lsa *l) { return l->u; }

const float *sd_lsa_singular_values(const sd_lsa *l) { return l->sv; }

void sd_lsa_project(const sd_lsa *l, const uint32_t *idx, const float *val,
                    size_t n, float *out) {
  assert(l && out && (n == 0 || (idx && val)));
  memset(out, 0, (size_t)l->dim * sizeof(float));
  for (size_t j = 0; j < n; j++) {
    long r = lsa_find(l->bucket, l->u, idx[j]);
    if (r >= 0)
      cblas_saxpy(l->dim, val[j], l->v + (size_t)r * (size_t)l->dim, 1, out,
                  1);
  }
}

/* ---- serialisation ---- */

static void lsa_put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

static uint32_t lsa_get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static void lsa_putf(unsigned char *p, float f) {
  uint32_t v;
  memcpy(&v, &f, sizeof(v));
  lsa_put32(p, v);
}

static float lsa_getf(const unsigned char *p) {
  uint32_t v = lsa_get32(p);
  float f;
  memcpy(&f, &v, sizeof(f));
  return f;
}

/* Bytes of a version-1 blob, or 0 when it would not fit in a size_t. */
static size_t lsa_blob_size(uint64_t dim, uint64_t u) {
  uint64_t n = LSA_HEADER + 4 * dim + 4 * u + 4 * u * dim; /* < 2^45 */
  return n > SIZE_MAX ? 0 : (size_t)n;
}

int sd_lsa_save(const sd_lsa *l, void **blob, size_t *len) {
  if (!l || !blob || !len) return SD_EINVAL;
  *blob = NULL;
  *len = 0;
  size_t n = lsa_blob_size((uint64_t)l->dim, (uint64_t)l->u);
  unsigned char *p = n ? malloc(n) : NULL;
  if (!p) return SD_ENOMEM;
  size_t dv = l->u * (size_t)l->dim;
  memcpy(p, LSA_MAGIC, 4);
  lsa_put32(p + 4, LSA_FORMAT);
  lsa_put32(p + 8, (uint32_t)l->dim);
  lsa_put32(p + 12, (uint32_t)l->u);
  unsigned char *q = p + LSA_HEADER;
  for (int j = 0; j < l->dim; j++, q += 4) lsa_putf(q, l->sv[j]);
  for (size_t i = 0; i < l->u; i++, q += 4) lsa_put32(q, l->bucket[i]);
  for (size_t i = 0; i < dv; i++, q += 4) lsa_putf(q, l->v[i]);
  *blob = p;
  *len = n;
  return 0;
}

/* Header and sizes of a blob; SD_EINVAL unless they are consistent. */
static int lsa_check_header(const unsigned char *p, size_t len, int *dim,
                            size_t *u) {
  if (!p || len < LSA_HEADER || memcmp(p, LSA_MAGIC, 4) != 0 ||
      lsa_get32(p + 4) != LSA_FORMAT)
    return SD_EINVAL;
  uint32_t d = lsa_get32(p + 8), n = lsa_get32(p + 12);
  if (d < 1 || d > SD_LSA_MAX_DIM || n < 1) return SD_EINVAL;
  size_t want = lsa_blob_size(d, n);
  if (want == 0 || want != len) return SD_EINVAL;
  *dim = (int)d;
  *u = n;
  return 0;
}

int sd_lsa_load(const void *blob, size_t len, sd_lsa **out) {
  if (!out) return SD_EINVAL;
  *out = NULL;
  const unsigned char *p = blob;
  int dim;
  size_t u;
  int rc = lsa_check_header(p, len, &dim, &u);
  if (rc) return rc;
  sd_lsa *l = calloc(1, sizeof(*l));
  if (!l) return SD_ENOMEM;
  l->dim = dim;
  l->u = u;
  l->sv = sd_malloc_n((size_t)dim, 1, sizeof(float));
  l->bucket = sd_malloc_n(u, 1, sizeof(uint32_t));
  l->v = sd_malloc_n(u, (size_t)dim, sizeof(float));
  if (!l->sv || !l->bucket || !l->v) {
    sd_lsa_free(l);
    return SD_ENOMEM;
  }
  const unsigned char *q = p + LSA_HEADER;
  rc = 0;
  for (int j = 0; j < dim; j++, q += 4) {
    l->sv[j] = lsa_getf(q);
    if (!isfinite(l->sv[j]) || !(l->sv[j] >= 0.0f) ||
        (j > 0 && l->sv[j] > l->sv[j - 1]))
      rc = SD_EINVAL;
  }
  for (size_t i = 0; i < u; i++, q += 4) {
    l->bucket[i] = lsa_get32(q);
    if (i > 0 && l->bucket[i] <= l->bucket[i - 1]) rc = SD_EINVAL;
  }
  for (size_t i = 0; i < u * (size_t)dim; i++, q += 4) {
    l->v[i] = lsa_getf(q);
    if (!isfinite(l->v[i])) rc = SD_EINVAL;
  }
  if (rc) {
    sd_lsa_free(l);
    return rc;
  }
  *out = l;
  return 0;
}
