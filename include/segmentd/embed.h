/*
 * embed.h -- the built-in text encoder: hashed n-gram features, TF-IDF with
 * document frequencies learned from the stream, and a dense random
 * projection to dim, L2-normalised.
 *
 * Owns: the document-frequency table and the projection. Threads: exactly
 * one thread (the core writer) may call sd_encoder_observe; any thread may
 * call sd_encoder_encode at the same time (the table is read and written
 * with relaxed atomics, so a reader sees some recent, valid state).
 *
 * Memory: sd_encoder_new allocates, sd_encoder_free releases (NULL is fine).
 * Output vectors are caller-owned arrays of dim floats.
 */
#ifndef SEGMENTD_EMBED_H
#define SEGMENTD_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "segmentd/embed_lsa.h"
#include "segmentd/tokenize.h"

#define SD_ENCODER_BITS 20 /* 2^20 feature buckets */
#define SD_ENCODER_VERSION "hash20-tfidf-rp1"   /* random projection */
#define SD_ENCODER_LSA_VERSION "hash20-tfidf-lsa" /* + "-v<version>" */

typedef struct sd_encoder sd_encoder;

int sd_encoder_new(int dim, unsigned bits, uint64_t seed, sd_encoder **out);
void sd_encoder_free(sd_encoder *e);

int sd_encoder_dim(const sd_encoder *e);
unsigned sd_encoder_bits(const sd_encoder *e);
uint64_t sd_encoder_docs(const sd_encoder *e);

/* Counts the features of one more document (writer thread only). */
void sd_encoder_observe(sd_encoder *e, const sd_sparse *features);

/* TF-IDF weights the features, projects them to dim and L2-normalises into
 * out. A text without features gives the zero vector. Thread-safe. */
int sd_encoder_encode(const sd_encoder *e, const sd_sparse *features,
                      float *out);

/* Convenience: features + encode in one call. */
int sd_encoder_encode_text(const sd_encoder *e, const char *text, size_t len,
                           float *out);

/* TF-IDF weights of features (sublinear tf, smoothed idf from the learned
 * document frequencies), L2-normalised, into w (f->n floats). */
void sd_encoder_tfidf(const sd_encoder *e, const sd_sparse *f, float *w);

/*
 * A fitted projection, shared by reference: the writer holds one, every
 * snapshot that uses it holds one. version 0 is the random projection
 * (lsa NULL). Created with one reference; the last sd_proj_unref frees it.
 */
typedef struct sd_proj {
  _Atomic int refs;
  int64_t version;     /* 0 = random projection */
  int64_t embedder_id; /* embedders row of vectors made with it */
  sd_lsa *lsa;         /* owned; NULL for version 0 */
} sd_proj;

sd_proj *sd_proj_new(int64_t version, int64_t embedder_id, sd_lsa *lsa);
sd_proj *sd_proj_ref(sd_proj *p);
void sd_proj_unref(sd_proj *p);

/* Encodes with a projection: p NULL or version 0 = random projection. */
int sd_encoder_encode_proj(const sd_encoder *e, const sd_proj *p,
                           const sd_sparse *f, float *out);
int sd_encoder_encode_text_proj(const sd_encoder *e, const sd_proj *p,
                                const char *text, size_t len, float *out);

#endif
