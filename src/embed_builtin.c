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
#include "segmentd/rng.h"

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
    uint64_t z = sd_splitmix64(&x);
    int lim = e->dim - j < 64 ? e->dim - j : 64;
    for (int b = 0; b < lim; b++) row[j + b] = ((z >> b) & 1) ? s : -s;
  }
}

void sd_encoder_tfidf(const sd_encoder *e, const sd_sparse *f, float *w) {
  sd_encoder *m = (sd_encoder *)e; /* atomics need a non-const object */
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
  for (size_t i = 0; i < f->n; i++) w[i] *= inv;
}

static void enc_normalise(int dim, float *out) {
  float len = cblas_snrm2(dim, out, 1);
  if (len > 0) cblas_sscal(dim, 1.0f / len, out, 1);
}

int sd_encoder_encode_proj(const sd_encoder *e, const sd_proj *p,
                           const sd_sparse *f, float *out) {
  memset(out, 0, sizeof(float) * (size_t)e->dim);
  if (f->n == 0) return 0;
  if (p && p->lsa && sd_lsa_dim(p->lsa) != e->dim) return SD_EINVAL;
  float *w = malloc(sizeof(float) * (f->n + (size_t)e->dim));
  if (!w) return SD_ENOMEM;
  sd_encoder_tfidf(e, f, w);
  if (p && p->lsa) {
    sd_lsa_project(p->lsa, f->idx, w, f->n, out);
  } else {
    float *row = w + f->n, s = 1.0f / sqrtf((float)e->dim);
    for (size_t i = 0; i < f->n; i++) {
      enc_row(e, f->idx[i], s, row);
      cblas_saxpy(e->dim, w[i], row, 1, out, 1);
    }
  }
  free(w);
  enc_normalise(e->dim, out);
  return 0;
}

int sd_encoder_encode(const sd_encoder *e, const sd_sparse *f, float *out) {
  return sd_encoder_encode_proj(e, NULL, f, out);
}

int sd_encoder_encode_text_proj(const sd_encoder *e, const sd_proj *p,
                                const char *text, size_t len, float *out) {
  sd_sparse f;
  int rc = sd_features(text, len, e->bits, &f);
  if (rc < 0) return rc;
  rc = sd_encoder_encode_proj(e, p, &f, out);
  sd_sparse_free(&f);
  return rc;
}

sd_proj *sd_proj_new(int64_t version, int64_t embedder_id, sd_lsa *lsa) {
  sd_proj *p = calloc(1, sizeof(*p));
  if (!p) return NULL;
  atomic_init(&p->refs, 1);
  p->version = version;
  p->embedder_id = embedder_id;
  p->lsa = lsa;
  return p;
}

sd_proj *sd_proj_ref(sd_proj *p) {
  if (p) atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
  return p;
}

void sd_proj_unref(sd_proj *p) {
  if (p && atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1) {
    sd_lsa_free(p->lsa);
    free(p);
  }
}

int sd_encoder_encode_text(const sd_encoder *e, const char *text, size_t len,
                           float *out) {
  return sd_encoder_encode_text_proj(e, NULL, text, len, out);
}
