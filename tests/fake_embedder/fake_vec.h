/*
 * fake_vec.h -- the deterministic bag-of-words embedding of fake_embedder.
 *
 * Owns the one algorithm shared by the fake server (fake_embedder.c) and
 * the integration harness (harness_fake.c, fake_embedding()), so a test can
 * compute the exact vector the fake answers for a text:
 *   words  maximal runs of ASCII letters/digits (and bytes >= 0x80, so UTF-8
 *          words stay words), ASCII letters lower-cased;
 *   word   FNV-1a 64 of the lower-cased word seeds splitmix64, which yields
 *          dim values uniform in [-1, 1) that are added to the sum;
 *   result the sum L2-normalised; a text without words gives e_0 (out[0] =
 *          1, the rest 0).
 * Texts that share words therefore get vectors with a high cosine, and
 * unrelated texts nearly orthogonal ones (for dim >= ~32).
 */
#ifndef SD_FAKE_VEC_H
#define SD_FAKE_VEC_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define FAKE_VEC_FNV_OFFSET 14695981039346656037ull
#define FAKE_VEC_FNV_PRIME 1099511628211ull

static inline uint64_t fake_vec_splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline int fake_vec_is_word(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c >= 0x80;
}

/* Adds the word's pseudo-random vector (seeded by its hash) to out. */
static inline void fake_vec_add_word(const unsigned char *w, size_t n, int dim,
                                     float *out) {
  uint64_t h = FAKE_VEC_FNV_OFFSET;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = w[i];
    if (c >= 'A' && c <= 'Z')
      c = (unsigned char)(c - 'A' + 'a');
    h = (h ^ c) * FAKE_VEC_FNV_PRIME;
  }
  uint64_t s = h;
  for (int d = 0; d < dim; d++) {
    double u = (double)(fake_vec_splitmix64(&s) >> 11) / 9007199254740992.0;
    out[d] += (float)(2.0 * u - 1.0);
  }
}

/* The embedding of text[0..len) into out[0..dim), dim >= 1. */
static inline void fake_vec_embed(const char *text, size_t len, int dim,
                                  float *out) {
  const unsigned char *t = (const unsigned char *)text;
  for (int d = 0; d < dim; d++)
    out[d] = 0.0f;
  size_t i = 0;
  while (i < len) {
    while (i < len && !fake_vec_is_word(t[i]))
      i++;
    size_t start = i;
    while (i < len && fake_vec_is_word(t[i]))
      i++;
    if (i > start)
      fake_vec_add_word(t + start, i - start, dim, out);
  }
  double ss = 0.0;
  for (int d = 0; d < dim; d++)
    ss += (double)out[d] * (double)out[d];
  if (ss <= 0.0) {
    out[0] = 1.0f;
    return;
  }
  double inv = 1.0 / sqrt(ss);
  for (int d = 0; d < dim; d++)
    out[d] = (float)((double)out[d] * inv);
}

/* The number of words of text[0..len) (the fake's "token" count). */
static inline size_t fake_vec_words(const char *text, size_t len) {
  const unsigned char *t = (const unsigned char *)text;
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    if (fake_vec_is_word(t[i]) && (i == 0 || !fake_vec_is_word(t[i - 1])))
      n++;
  return n;
}

#endif
