/*
 * embed_lsa.h -- a projection of hashed TF-IDF features fitted to the
 * domain: latent semantic analysis by randomised truncated SVD
 * (Halko, Martinsson & Tropp 2011), the same method as scikit-learn's
 * TruncatedSVD(algorithm="randomized").
 *
 * Owns: the sparse document-term matrix type (CSR over hashed buckets),
 * fitting the top-`dim` right singular vectors of it, and the fitted
 * projection table (one dense row of `dim` floats per bucket seen in the
 * fit; unseen buckets project to zero). Products with dense blocks go
 * through OpenBLAS (cblas_saxpy / cblas_sgemm). Pure and thread-safe once
 * fitted: sd_lsa_project may run on many threads at once.
 *
 * Memory: sd_csr owns its arrays (sd_csr_free); sd_lsa_fit allocates an
 * sd_lsa freed with sd_lsa_free (NULL-safe).
 */
#ifndef SEGMENTD_EMBED_LSA_H
#define SEGMENTD_EMBED_LSA_H

#include <stddef.h>
#include <stdint.h>

/* Rows of sparse vectors: row i is col[ptr[i] .. ptr[i+1]) with val. */
typedef struct {
  size_t n_rows;
  size_t *ptr;  /* n_rows + 1 */
  uint32_t *col;/* bucket index */
  float *val;
  size_t nnz, cap;
  size_t ptr_cap; /* entries allocated in ptr (managed by sd_csr_push) */
} sd_csr;

/* Appends a row (idx strictly increasing). 0 or SD_ENOMEM. Start from a
 * zeroed sd_csr. Also SD_EINVAL (m unchanged) when idx is not strictly
 * increasing or idx/val are NULL with n > 0. */
int sd_csr_push(sd_csr *m, const uint32_t *idx, const float *val, size_t n);
/* Frees the arrays and zeroes m; NULL and zeroed structs are fine. */
void sd_csr_free(sd_csr *m);

typedef struct sd_lsa sd_lsa;

typedef struct {
  int dim;          /* components kept (e.g. 256) */
  int oversample;   /* extra random directions (default 10) */
  int power_iters;  /* power iterations (default 5, as scikit-learn) */
  uint64_t seed;
} sd_lsa_opts;

/* Limits checked by sd_lsa_fit and sd_lsa_load. */
#define SD_LSA_MAX_DIM 1024
#define SD_LSA_MAX_OVERSAMPLE 256
#define SD_LSA_MAX_POWER_ITERS 32

/* dim components, oversample 10, power_iters 5, seed 0. */
sd_lsa_opts sd_lsa_defaults(int dim);

/* Fits the projection on the rows of m (rows already TF-IDF weighted and
 * L2-normalised by the caller). Needs n_rows >= dim. The same m, opts and
 * BLAS give the same table. Only the buckets that occur in m are kept.
 * Components beyond the numerical rank of m get singular value ~0 and a
 * zero projection column. 0, SD_EINVAL (bad options, n_rows < dim, no
 * nonzero, a malformed m or a non-finite value) or SD_ENOMEM. Memory while
 * fitting: about 4 * ((dim + oversample) * (buckets + n_rows) + nnz)
 * bytes; the result keeps 4 * dim * buckets bytes. */
int sd_lsa_fit(const sd_csr *m, const sd_lsa_opts *o, sd_lsa **out);
void sd_lsa_free(sd_lsa *l);

int sd_lsa_dim(const sd_lsa *l);
/* Buckets with a projection row (those seen in the fit). */
size_t sd_lsa_buckets(const sd_lsa *l);
/* Singular values, largest first (dim of them). */
const float *sd_lsa_singular_values(const sd_lsa *l);

/* out (dim floats) = sum_j val[j] * V[idx[j]] (not normalised). Buckets
 * not seen in the fit contribute nothing. */
void sd_lsa_project(const sd_lsa *l, const uint32_t *idx, const float *val,
                    size_t n, float *out);

/*
 * Serialises the fitted table (to store it in SQLite) and reads it back.
 * Format (version 1, all little-endian): "SDLS", u32 version, u32 dim,
 * u32 buckets, dim f32 singular values, buckets u32 bucket ids (strictly
 * increasing), buckets x dim f32 projection rows. sd_lsa_save allocates
 * *blob (caller frees with free()); 0 or SD_ENOMEM. sd_lsa_load copies
 * what it needs (blob is not kept); SD_EINVAL on any malformed blob (size,
 * magic, version, limits, order, non-finite or negative values), SD_ENOMEM.
 */
int sd_lsa_save(const sd_lsa *l, void **blob, size_t *len);
int sd_lsa_load(const void *blob, size_t len, sd_lsa **out);

#endif
