/*
 * tokenize.h -- text to hashed sparse features, for the built-in encoder and
 * for cluster top terms.
 *
 * Owns: lower-casing, splitting a UTF-8 text into words, the feature set of
 * the built-in encoder (character 3-5 grams of each space-separated token
 * padded with spaces, word unigrams and bigrams of runs of 2+ word
 * characters), hashing features into 2^bits buckets, and the sparse vector
 * type. Pure functions: thread-safe, no globals.
 *
 * Memory: sd_sparse and sd_words own their arrays; release them with
 * sd_sparse_free / sd_words_free (both accept NULL and zeroed structs).
 */
#ifndef SEGMENTD_TOKENIZE_H
#define SEGMENTD_TOKENIZE_H

#include <stddef.h>
#include <stdint.h>

/* A sparse vector: idx strictly increasing, val the weight of each index. */
typedef struct {
  uint32_t *idx;
  float *val;
  size_t n, cap;
} sd_sparse;

void sd_sparse_free(sd_sparse *s);

/* Word tokens (runs of 2+ word characters: ASCII letters, digits, '_', and
 * any non-ASCII byte), lower-cased, as offsets into one owned buffer. */
typedef struct {
  char *buf;        /* lower-cased copy of the text */
  uint32_t *off;    /* start of word i in buf */
  uint32_t *len;    /* length of word i */
  size_t n;
} sd_words;

int sd_words_split(const char *text, size_t len, sd_words *out);
void sd_words_free(sd_words *w);

/* 64-bit hash of a byte string (seeded FNV-1a with a strong finaliser). */
uint64_t sd_hash64(const void *data, size_t len, uint64_t seed);

/*
 * The built-in encoder's features of a text, hashed into 2^bits buckets,
 * with their raw counts, as a sparse vector (idx sorted, unique). Texts are
 * capped by the caller (ingest limits); 0 or a negative sd_err.
 */
int sd_features(const char *text, size_t len, unsigned bits, sd_sparse *out);

#endif
