/*
 * embed_builtin.c -- the built-in encoder (see embed.h).
 *
 * TF-IDF is sublinear (1 + ln tf) with smoothed idf ln((1+N)/(1+df)) + 1,
 * L2-normalised in the sparse space. The projection row of a bucket is a
 * deterministic +-1/sqrt(dim) vector generated from the bucket's hash
 * (Achlioptas), so it costs no memory; rows are accumulated with
 * cblas_saxpy. Cosine similarities survive the projection up to O(1/sqrt(dim)).
 */
#include "segmentd/embed.h"
#include "segmentd/err.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct sd_encoder {
  int dim;
  unsigned bits;
  uint64_t seed;
  _Atomic uint32_t *df;
  _Atomic uint64_t docs;
};

int sd_encoder_new(int dim, unsigned bits, uint64_t seed, sd_encoder **out) {
  *out = NULL;
  if (dim < 1 || dim > 65536 || bits < 4 || bits > 26) return SD_EINVAL;
  sd_encoder *e = calloc(1, sizeof(*e));
  if (!e) return SD_ENOMEM;
  e->df = calloc((size_t)1 << bits, sizeof(*e->df));
  if (!e->df) {
    free(e);
    return SD_ENOMEM;
  }
  e->dim = dim;
  e->bits = bits;
  e->seed = seed;
  atomic_init(&e->docs, 0);
  *out = e;
  return 0;
}

void sd_encoder_free(sd_encoder *e) {
  if (!e) return;
  free((void *)e->df);
  free(e);
}

int sd_encoder_dim(const sd_encoder *e) { return e->dim; }
unsigned sd_encoder_bits(const sd_encoder *e) { return e->bits; }

uint64_t sd_encoder_docs(const sd_encoder *e) {
  return atomic_load_explicit(&((sd_encoder *)e)->docs, memory_order_relaxed);
}

void sd_encoder_observe(sd_encoder *e, const sd_sparse *f) {
  for (size_t i = 0; i < f->n; i++)
    atomic_fetch_add_explicit(&e->df[f->idx[i]], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&e->docs, 1, memory_order_relaxed);
}

/* Fills row with the bucket's +-s projection row. */
static void enc_row(const sd_encoder *e, uint32_t bucket, float s, float *row) {
  uint64_t x = e->seed ^ ((uint64_t)bucket * 0x9e3779b97f4a7c15ULL);
  for (int j = 0; j < e->dim; j += 64) {
    x += 0x9e3779b97f4a7c15ULL; /* splitmix64 */
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    int lim = e->dim - j < 64 ? e->dim - j : 64;
    for (int b = 0; b < lim; b++) row[j + b] = ((z >> b) & 1) ? s : -s;
  }
}

int sd_encoder_encode(const sd_encoder *e, const sd_sparse *f, float *out) {
  sd_encoder *m = (sd_encoder *)e; /* atomics need a non-const object */
  memset(out, 0, sizeof(float) * (size_t)e->dim);
  if (f->n == 0) return 0;
  float *w = malloc(sizeof(float) * (f->n + (size_t)e->dim));
  if (!w) return SD_ENOMEM;
  float *row = w + f->n;
  double n_docs = (double)atomic_load_explicit(&m->docs, memory_order_relaxed);
  double norm = 0;
  for (size_t i = 0; i < f->n; i++) {
    double df = atomic_load_explicit(&m->df[f->idx[i]], memory_order_relaxed);
    if (df > n_docs) df = n_docs;
    double idf = log((1.0 + n_docs) / (1.0 + df)) + 1.0;
    w[i] = (float)((1.0 + log(f->val[i])) * idf);
    norm += (double)w[i] * w[i];
  }
  float inv = norm > 0 ? (float)(1.0 / sqrt(norm)) : 0.0f;
  float s = 1.0f / sqrtf((float)e->dim);
  for (size_t i = 0; i < f->n; i++) {
    enc_row(e, f->idx[i], s, row);
    cblas_saxpy(e->dim, w[i] * inv, row, 1, out, 1);
  }
  free(w);
  float len = cblas_snrm2(e->dim, out, 1);
  if (len > 0) cblas_sscal(e->dim, 1.0f / len, out, 1);
  return 0;
}

int sd_encoder_encode_text(const sd_encoder *e, const char *text, size_t len,
                           float *out) {
  sd_sparse f;
  int rc = sd_features(text, len, e->bits, &f);
  if (rc < 0) return rc;
  rc = sd_encoder_encode(e, &f, out);
  sd_sparse_free(&f);
  return rc;
}
