/*
 * test_lsa.c -- the LSA projection (embed_lsa.h) on small planted sparse
 * matrices: singular values against a brute-force reference (deflated power
 * iteration on the dense X X^T in double), orthonormal projection rows,
 * topic separation after projection, rank-deficient input, determinism,
 * a bit-identical save/load round trip, corrupt blobs and bad arguments.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "segmentd/embed_lsa.h"
#include "segmentd/err.h"

#define T_TOPICS 8
#define T_TERMS 24    /* buckets per topic profile */
#define T_NOISE 200   /* noise buckets shared by all topics */
#define T_NOISE_NNZ 3 /* noise nonzeros per row */
#define T_MAXNNZ (T_TERMS + T_NOISE_NNZ)

/* ---- a tiny deterministic PRNG (xorshift64*) ---- */

static uint64_t t_state = 88172645463325252ULL;

static uint64_t t_next(void) {
  t_state ^= t_state >> 12;
  t_state ^= t_state << 25;
  t_state ^= t_state >> 27;
  return t_state * 2685821657736338717ULL;
}

static double t_unit(void) { return (double)(t_next() >> 11) * 0x1.0p-53; }

/* ---- planted data ---- */

typedef struct {
  sd_csr m;
  int n;
  int *topic;            /* topic of each row */
  double *dense;         /* n x T_COLS dense copy, columns = bucket slots */
  uint32_t bucket[T_TOPICS * T_TERMS + T_NOISE]; /* slot -> bucket id */
} t_data;

#define T_COLS (T_TOPICS * T_TERMS + T_NOISE)

static int t_cmp_pair(const void *a, const void *b) {
  const uint32_t *x = a, *y = b;
  return (x[0] > y[0]) - (x[0] < y[0]);
}

/*
 * Rows of `topics` planted topics (topic t has 20 + 5t rows): a scaled copy
 * of the topic's fixed profile over its own T_TERMS buckets, plus (when
 * noise > 0) T_NOISE_NNZ small values on shared noise buckets; each row
 * L2-normalised. Topic row counts differ, so the planted singular values
 * (about sqrt(rows of the topic)) are well separated.
 */
static void t_make(t_data *d, int topics, double noise) {
  memset(d, 0, sizeof(*d));
  for (int s = 0; s < T_COLS; s++) { /* distinct ids spread over 2^20 */
    uint32_t b;
    int dup;
    do {
      b = (uint32_t)(t_next() >> 44);
      dup = 0;
      for (int r = 0; r < s; r++) dup |= d->bucket[r] == b;
    } while (dup);
    d->bucket[s] = b;
  }
  double prof[T_TOPICS][T_TERMS];
  for (int t = 0; t < topics; t++)
    for (int j = 0; j < T_TERMS; j++) prof[t][j] = 0.5 + t_unit();
  for (int t = 0; t < topics; t++) d->n += 20 + 5 * t;
  d->topic = malloc(sizeof(int) * (size_t)d->n);
  d->dense = calloc((size_t)d->n * T_COLS, sizeof(double));
  int row = 0;
  for (int t = 0; t < topics; t++) {
    for (int i = 0; i < 20 + 5 * t; i++, row++) {
      double *x = d->dense + (size_t)row * T_COLS;
      double sc = 0.5 + t_unit();
      d->topic[row] = t;
      for (int j = 0; j < T_TERMS; j++) x[t * T_TERMS + j] = sc * prof[t][j];
      for (int k = 0; noise > 0 && k < T_NOISE_NNZ; k++)
        x[T_TOPICS * T_TERMS + (int)(t_next() % T_NOISE)] += noise * t_unit();
      double nn = 0;
      for (int c = 0; c < T_COLS; c++) nn += x[c] * x[c];
      uint32_t pair[T_MAXNNZ][2];
      int nz = 0;
      for (int c = 0; c < T_COLS; c++) {
        if (x[c] == 0) continue;
        x[c] = (double)(float)(x[c] / sqrt(nn)); /* what the CSR holds */
        pair[nz][0] = d->bucket[c];
        pair[nz][1] = (uint32_t)c;
        nz++;
      }
      qsort(pair, (size_t)nz, sizeof(pair[0]), t_cmp_pair);
      uint32_t idx[T_MAXNNZ];
      float val[T_MAXNNZ];
      for (int k = 0; k < nz; k++) {
        idx[k] = pair[k][0];
        val[k] = (float)x[pair[k][1]];
      }
      CHECK_INT(sd_csr_push(&d->m, idx, val, (size_t)nz), 0);
    }
  }
}

static void t_free(t_data *d) {
  sd_csr_free(&d->m);
  free(d->topic);
  free(d->dense);
}

/* The top k singular values of the dense rows: deflated power iteration on
 * X X^T in double. */
static void t_reference_sv(const t_data *d, int k, double *sv) {
  int n = d->n;
  double *g = calloc((size_t)n * n, sizeof(double));
  double *v = malloc(sizeof(double) * (size_t)n);
  double *w = malloc(sizeof(double) * (size_t)n);
  for (int i = 0; i < n; i++)
    for (int j = 0; j <= i; j++) {
      double s = 0;
      const double *a = d->dense + (size_t)i * T_COLS;
      const double *b = d->dense + (size_t)j * T_COLS;
      for (int c = 0; c < T_COLS; c++) s += a[c] * b[c];
      g[(size_t)i * n + j] = g[(size_t)j * n + i] = s;
    }
  for (int e = 0; e < k; e++) {
    for (int i = 0; i < n; i++) v[i] = t_unit() - 0.5;
    double lam = 0;
    for (int it = 0; it < 250; it++) {
      double nn = 0;
      for (int i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < n; j++) s += g[(size_t)i * n + j] * v[j];
        w[i] = s;
      }
      lam = 0;
      for (int i = 0; i < n; i++) lam += v[i] * w[i];
      for (int i = 0; i < n; i++) nn += w[i] * w[i];
      nn = sqrt(nn);
      if (nn == 0) break;
      for (int i = 0; i < n; i++) v[i] = w[i] / nn;
    }
    double vn = 0;
    for (int i = 0; i < n; i++) vn += v[i] * v[i];
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++)
        g[(size_t)i * n + j] -= lam * v[i] * v[j] / vn;
    sv[e] = lam > 0 ? sqrt(lam) : 0;
  }
  free(g);
  free(v);
  free(w);
}

/* Projection of row i of the CSR into out (dim floats), L2-normalised. */
static void t_project_row(const sd_lsa *l, const sd_csr *m, size_t i,
                          float *out, int normalise) {
  size_t a = m->ptr[i], b = m->ptr[i + 1];
  sd_lsa_project(l, m->col + a, m->val + a, b - a, out);
  if (!normalise) return;
  double nn = 0;
  for (int j = 0; j < sd_lsa_dim(l); j++) nn += (double)out[j] * out[j];
  for (int j = 0; j < sd_lsa_dim(l); j++) out[j] = (float)(out[j] / sqrt(nn));
}

/* ---- tests ---- */

static void test_csr(void) {
  sd_csr m;
  memset(&m, 0, sizeof(m));
  uint32_t idx[3] = {5, 9, 100}, bad[3] = {5, 5, 6};
  float val[3] = {1, 2, 3};
  CHECK_INT(sd_csr_push(&m, idx, val, 3), 0);
  CHECK_INT(sd_csr_push(&m, NULL, NULL, 0), 0); /* empty row */
  CHECK_INT(sd_csr_push(&m, bad, val, 3), SD_EINVAL);
  CHECK_INT(sd_csr_push(&m, NULL, val, 2), SD_EINVAL);
  for (int r = 0; r < 200; r++) CHECK_INT(sd_csr_push(&m, idx + 1, val, 2), 0);
  CHECK_INT(m.n_rows, 202);
  CHECK_INT(m.nnz, 3 + 400);
  CHECK_INT(m.ptr[0], 0);
  CHECK_INT(m.ptr[1], 3);
  CHECK_INT(m.ptr[2], 3);
  CHECK_INT(m.ptr[202], 403);
  CHECK_INT(m.col[4], 100);
  CHECK(m.val[2] == 3.0f);
  sd_csr_free(&m);
  CHECK(m.ptr == NULL && m.n_rows == 0);
  sd_csr_free(&m);
  sd_csr_free(NULL);
}

static void test_singular_values(void) {
  t_data d;
  t_make(&d, T_TOPICS, 0.05);
  sd_lsa_opts o = sd_lsa_defaults(12);
  o.seed = 7;
  sd_lsa *l = NULL;
  CHECK_INT(sd_lsa_fit(&d.m, &o, &l), 0);
  if (!l) {
    t_free(&d);
    return;
  }
  CHECK_INT(sd_lsa_dim(l), 12);
  double ref[12];
  t_reference_sv(&d, 12, ref);
  const float *sv = sd_lsa_singular_values(l);
  for (int j = 0; j < T_TOPICS; j++) /* planted: tight */
    CHECK_NEAR(sv[j], ref[j], 1e-4 * ref[j]);
  for (int j = T_TOPICS; j < 12; j++) /* noise: within 1% */
    CHECK_NEAR(sv[j], ref[j], 0.01 * ref[j]);
  for (int j = 1; j < 12; j++) CHECK(sv[j] <= sv[j - 1]);
  CHECK(sv[T_TOPICS] < 0.1 * sv[T_TOPICS - 1]);

  /* Rows of V (one per bucket) have orthonormal planted columns. */
  size_t u = sd_lsa_buckets(l);
  CHECK(u > T_TOPICS * T_TERMS && u <= T_COLS);
  double vtv[T_TOPICS][T_TOPICS];
  memset(vtv, 0, sizeof(vtv));
  float row[12];
  for (int s = 0; s < T_COLS; s++) {
    float one = 1.0f;
    sd_lsa_project(l, &d.bucket[s], &one, 1, row);
    for (int a = 0; a < T_TOPICS; a++)
      for (int b = 0; b < T_TOPICS; b++) vtv[a][b] += (double)row[a] * row[b];
  }
  double worst = 0;
  for (int a = 0; a < T_TOPICS; a++)
    for (int b = 0; b < T_TOPICS; b++) {
      double e = fabs(vtv[a][b] - (a == b));
      worst = e > worst ? e : worst;
    }
  CHECK(worst < 1e-4);

  /* A bucket never seen projects to zero. */
  uint32_t unseen = 1u << 21;
  float one = 1.0f;
  sd_lsa_project(l, &unseen, &one, 1, row);
  for (int j = 0; j < 12; j++) CHECK(row[j] == 0.0f);
  sd_lsa_free(l);
  t_free(&d);
}

static void test_topics(void) {
  t_data d;
  t_make(&d, T_TOPICS, 0.3);
  sd_lsa_opts o = sd_lsa_defaults(T_TOPICS);
  sd_lsa *l = NULL;
  CHECK_INT(sd_lsa_fit(&d.m, &o, &l), 0);
  if (!l) {
    t_free(&d);
    return;
  }
  float *p = malloc(sizeof(float) * (size_t)d.n * T_TOPICS);
  double min_in = 2, max_out = -2, min_len = 2;
  for (int i = 0; i < d.n; i++) {
    float *pi = p + (size_t)i * T_TOPICS;
    t_project_row(l, &d.m, (size_t)i, pi, 0);
    double nn = 0;
    for (int j = 0; j < T_TOPICS; j++) nn += (double)pi[j] * pi[j];
    min_len = sqrt(nn) < min_len ? sqrt(nn) : min_len;
    for (int j = 0; j < T_TOPICS; j++) pi[j] = (float)(pi[j] / sqrt(nn));
  }
  for (int i = 0; i < d.n; i++)
    for (int k = i + 1; k < d.n; k++) {
      double c = 0;
      for (int j = 0; j < T_TOPICS; j++)
        c += (double)p[(size_t)i * T_TOPICS + j] * p[(size_t)k * T_TOPICS + j];
      if (d.topic[i] == d.topic[k])
        min_in = c < min_in ? c : min_in;
      else
        max_out = c > max_out ? c : max_out;
    }
  CHECK(min_in > 0.9);
  CHECK(max_out < 0.2);
  CHECK(min_in > max_out);
  CHECK(min_len > 0.8); /* the planted part of each unit row survives */
  free(p);
  sd_lsa_free(l);
  t_free(&d);
}

static void test_rank_deficient(void) {
  t_data d;
  t_make(&d, 3, 0.0); /* exact rank 3, 75 rows, 72 buckets */
  sd_lsa_opts o = sd_lsa_defaults(8);
  sd_lsa *l = NULL;
  CHECK_INT(sd_lsa_fit(&d.m, &o, &l), 0);
  if (!l) {
    t_free(&d);
    return;
  }
  const float *sv = sd_lsa_singular_values(l);
  double ref[3];
  t_reference_sv(&d, 3, ref);
  for (int j = 0; j < 3; j++) CHECK_NEAR(sv[j], ref[j], 1e-4 * ref[j]);
  for (int j = 3; j < 8; j++) CHECK(sv[j] < 1e-3 * sv[0]);
  float out[8];
  int finite = 1;
  for (int i = 0; i < d.n; i++) {
    t_project_row(l, &d.m, (size_t)i, out, 0);
    for (int j = 0; j < 8; j++) finite &= isfinite(out[j]) != 0;
    for (int j = 3; j < 8; j++) CHECK(fabsf(out[j]) < 1e-2f);
  }
  CHECK(finite);
  sd_lsa_free(l);

  /* Fewer buckets than dim: still a table, trailing components zero. */
  sd_csr m;
  memset(&m, 0, sizeof(m));
  uint32_t idx[2] = {3, 40};
  for (int i = 0; i < 10; i++) {
    float val[2] = {1.0f + (float)i, (float)(i % 3)};
    CHECK_INT(sd_csr_push(&m, idx, val, 2), 0);
  }
  CHECK_INT(sd_lsa_fit(&m, &o, &l), 0);
  if (l) {
    CHECK_INT(sd_lsa_buckets(l), 2);
    CHECK(sd_lsa_singular_values(l)[1] > 0);
    CHECK(sd_lsa_singular_values(l)[2] < 1e-3 * sd_lsa_singular_values(l)[0]);
    sd_lsa_project(l, idx, (float[]){1.0f, 1.0f}, 2, out);
    for (int j = 0; j < 8; j++) CHECK(isfinite(out[j]));
    for (int j = 2; j < 8; j++) CHECK(out[j] == 0.0f);
  }
  sd_lsa_free(l);
  sd_csr_free(&m);
  t_free(&d);
}

static void test_save_load(void) {
  t_data d;
  t_make(&d, T_TOPICS, 0.1);
  sd_lsa_opts o = sd_lsa_defaults(10);
  o.seed = 42;
  sd_lsa *a = NULL, *b = NULL, *c = NULL;
  CHECK_INT(sd_lsa_fit(&d.m, &o, &a), 0);
  CHECK_INT(sd_lsa_fit(&d.m, &o, &c), 0);
  if (!a || !c) {
    sd_lsa_free(a);
    sd_lsa_free(c);
    t_free(&d);
    return;
  }
  void *blob = NULL, *blob2 = NULL, *blob3 = NULL;
  size_t len = 0, len2 = 0, len3 = 0;
  CHECK_INT(sd_lsa_save(a, &blob, &len), 0);
  CHECK_INT(len, 16 + 4 * 10 + 4 * sd_lsa_buckets(a) * (1 + 10));
  CHECK_INT(sd_lsa_save(c, &blob3, &len3), 0); /* same seed, same table */
  CHECK(len3 == len && memcmp(blob, blob3, len) == 0);
  CHECK_INT(sd_lsa_load(blob, len, &b), 0);
  if (b) {
    CHECK_INT(sd_lsa_dim(b), 10);
    CHECK_INT(sd_lsa_buckets(b), sd_lsa_buckets(a));
    CHECK(memcmp(sd_lsa_singular_values(a), sd_lsa_singular_values(b),
                 10 * sizeof(float)) == 0);
    CHECK_INT(sd_lsa_save(b, &blob2, &len2), 0);
    CHECK(len2 == len && memcmp(blob, blob2, len) == 0);
    int same = 1;
    for (int i = 0; i < d.n; i++) {
      float pa[10], pb[10];
      t_project_row(a, &d.m, (size_t)i, pa, 0);
      t_project_row(b, &d.m, (size_t)i, pb, 0);
      same &= memcmp(pa, pb, sizeof(pa)) == 0;
    }
    CHECK(same);
  }
  free(blob2);
  free(blob3);

  /* Corrupt blobs: each rejected with SD_EINVAL, *out NULL. */
  unsigned char *cb = malloc(len + 8);
  sd_lsa *x = (sd_lsa *)&x;
  CHECK_INT(sd_lsa_load(NULL, len, &x), SD_EINVAL);
  CHECK(x == NULL);
  CHECK_INT(sd_lsa_load(blob, 0, &x), SD_EINVAL);
  CHECK_INT(sd_lsa_load(blob, 15, &x), SD_EINVAL);
  CHECK_INT(sd_lsa_load(blob, len - 1, &x), SD_EINVAL);
  memcpy(cb, blob, len);
  memset(cb + len, 0, 8);
  CHECK_INT(sd_lsa_load(cb, len + 4, &x), SD_EINVAL);
  size_t u = sd_lsa_buckets(a);
  size_t off_sv = 16, off_b = 16 + 40, off_v = 16 + 40 + 4 * u;
  struct {
    size_t off;
    uint32_t v;
  } bad[] = {
      {0, 0},                 /* magic */
      {4, 2},                 /* format version */
      {8, 0},                 /* dim 0 */
      {8, 11},                /* dim disagrees with the size */
      {8, SD_LSA_MAX_DIM + 1},/* over the cap */
      {12, 0},                /* no buckets */
      {12, (uint32_t)u + 1},  /* bucket count disagrees with the size */
      {12, 0xffffffffu},      /* huge */
      {off_sv, 0x7fc00000u},  /* NaN singular value */
      {off_sv + 4, 0x7f800000u}, /* +Inf */
      {off_sv + 8, 0xbf800000u}, /* -1 */
      {off_sv + 36, 0x7f000000u},/* increasing singular values */
      {off_b + 4, 0},            /* bucket ids out of order */
      {off_v + 4 * 17, 0x7f800000u}, /* Inf in V */
      {off_v + 4 * (u * 10 - 1), 0xffc00000u}, /* NaN, last float */
  };
  for (size_t t = 0; t < sizeof(bad) / sizeof(bad[0]); t++) {
    memcpy(cb, blob, len);
    unsigned char *p = cb + bad[t].off;
    if (bad[t].off == 0) {
      memcpy(p, "SDLT", 4);
    } else {
      p[0] = (unsigned char)bad[t].v;
      p[1] = (unsigned char)(bad[t].v >> 8);
      p[2] = (unsigned char)(bad[t].v >> 16);
      p[3] = (unsigned char)(bad[t].v >> 24);
    }
    x = (sd_lsa *)&x;
    int rc = sd_lsa_load(cb, len, &x);
    if (rc != SD_EINVAL) fprintf(stderr, "corrupt blob case %zu\n", t);
    CHECK_INT(rc, SD_EINVAL);
    CHECK(x == NULL);
  }
  free(cb);
  free(blob);
  sd_lsa_free(a);
  sd_lsa_free(b);
  sd_lsa_free(c);
  t_free(&d);
}

static void test_bad_args(void) {
  t_data d;
  t_make(&d, 2, 0.1); /* 45 rows */
  sd_lsa *l = (sd_lsa *)&l;
  sd_lsa_opts o = sd_lsa_defaults(8);
  o.dim = 46; /* n_rows < dim */
  CHECK_INT(sd_lsa_fit(&d.m, &o, &l), SD_EINVAL);
  CHECK(l == NULL);
  o.dim = 45; /* n_rows == dim is fine */
  CHECK_INT(sd_lsa_fit(&d.m, &o, &l), 0);
  sd_lsa_free(l);
  o = sd_lsa_defaults(0);
  CHECK_INT(sd_lsa_fit(&d.m, &o, &l), SD_EINVAL);
  o = sd_lsa_defaults(SD_LSA_MAX_DIM + 1);
  CHECK_INT(sd_lsa_fit(&d.m, &o, &l), SD_EINVAL);
  o = sd_lsa_defaults(4);
  o.oversample = -1;
  CHECK_INT(sd_lsa_fit(&d.m, &o, &l), SD_EINVAL);
  o = sd_lsa_defaults(4);
  o.power_iters = -1;
  CHECK_INT(sd_lsa_fit(&d.m, &o, &l), SD_EINVAL);
  o = sd_lsa_defaults(4);
  CHECK_INT(sd_lsa_fit(NULL, &o, &l), SD_EINVAL);
  CHECK_INT(sd_lsa_fit(&d.m, NULL, &l), SD_EINVAL);
  CHECK_INT(sd_lsa_fit(&d.m, &o, NULL), SD_EINVAL);
  float keep = d.m.val[5];
  d.m.val[5] = NAN;
  CHECK_INT(sd_lsa_fit(&d.m, &o, &l), SD_EINVAL);
  d.m.val[5] = keep;
  CHECK(l == NULL);

  sd_csr e; /* rows without any nonzero */
  memset(&e, 0, sizeof(e));
  CHECK_INT(sd_lsa_fit(&e, &o, &l), SD_EINVAL);
  for (int i = 0; i < 6; i++) CHECK_INT(sd_csr_push(&e, NULL, NULL, 0), 0);
  CHECK_INT(sd_lsa_fit(&e, &o, &l), SD_EINVAL);
  sd_csr_free(&e);
  sd_lsa_free(NULL);
  t_free(&d);
}

int main(void) {
  test_csr();
  test_singular_values();
  test_topics();
  test_rank_deficient();
  test_save_load();
  test_bad_args();
  return check_done("test_lsa");
}
