/*
 * fuzz_tokenize.c -- libFuzzer target for sd_words_split and sd_features
 * (tokenize.h) and the c-TF-IDF vocabulary (label_terms.h).
 *
 * Input: arbitrary bytes, the text (exact length, no terminator). Byte 0
 * also picks the cluster (0..3) for sd_terms_add. Checks: words lie inside
 * the text, are 2+ lower-case word bytes; features are sorted, unique,
 * inside 2^20 buckets with positive counts; adding the text (+1) gives top
 * terms (a word or two adjacent words "w1 w2", no stop word, words of 2..64
 * bytes) in its cluster only, and removing it (-1) leaves no term.
 */
#include "fuzz_check.h"
#include "segmentd/err.h"
#include "segmentd/label_terms.h"
#include "segmentd/tokenize.h"

#include <stdint.h>
#include <string.h>

#define K 4
#define TOP 5
#define BITS 20

static int is_word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c >= 0x80;
}

static void fuzz_words(const char *text, size_t len) {
  sd_words w;
  int rc = sd_words_split(text, len, &w);
  FUZZ_CHECK(rc == 0);
  FUZZ_CHECK(w.n <= len / 2);
  for (size_t i = 0; i < w.n; i++) {
    FUZZ_CHECK(w.len[i] >= 2);
    FUZZ_CHECK((size_t)w.off[i] + w.len[i] <= len);
    if (i) FUZZ_CHECK(w.off[i] > w.off[i - 1] + w.len[i - 1]);
    for (uint32_t j = 0; j < w.len[i]; j++)
      FUZZ_CHECK(is_word_byte((unsigned char)w.buf[w.off[i] + j]));
  }
  sd_words_free(&w);
}

static void fuzz_features(const char *text, size_t len) {
  sd_sparse s;
  int rc = sd_features(text, len, BITS, &s);
  FUZZ_CHECK(rc == 0);
  FUZZ_CHECK(s.n <= s.cap || s.n == 0);
  for (size_t i = 0; i < s.n; i++) {
    FUZZ_CHECK(s.idx[i] < (1u << BITS));
    if (i) FUZZ_CHECK(s.idx[i] > s.idx[i - 1]);
    FUZZ_CHECK(s.val[i] >= 1.0f);
  }
  sd_sparse_free(&s);
}

/* A word of a top term: 2..64 word bytes, not a stop word. */
static void check_word(const char *s, size_t l) {
  FUZZ_CHECK(l >= 2 && l <= 64 && !sd_is_stopword(s, l));
  for (size_t j = 0; j < l; j++) FUZZ_CHECK(is_word_byte((unsigned char)s[j]));
}

/* A top term: one word, or two joined by a single space. */
static void check_term(const char *s) {
  const char *sp = strchr(s, ' ');
  if (!sp) {
    check_word(s, strlen(s));
    return;
  }
  check_word(s, (size_t)(sp - s));
  check_word(sp + 1, strlen(sp + 1));
}

static void fuzz_terms(const char *text, size_t len, int c) {
  sd_terms *t = sd_terms_new();
  if (!t) return;
  const char *top[K * TOP];
  FUZZ_CHECK(sd_terms_add(t, c, text, len, +1) == 0);
  FUZZ_CHECK(sd_terms_top(t, K, TOP, top) == 0);
  for (int i = 0; i < K * TOP; i++) {
    if (!top[i]) continue;
    FUZZ_CHECK(i / TOP == c); /* only cluster c has words */
    check_term(top[i]);
  }
  FUZZ_CHECK(sd_terms_add(t, c, text, len, -1) == 0);
  FUZZ_CHECK(sd_terms_top(t, K, TOP, top) == 0);
  for (int i = 0; i < K * TOP; i++) FUZZ_CHECK(top[i] == NULL);
  sd_terms_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  fuzz_words(text, size);
  fuzz_features(text, size);
  fuzz_terms(text, size, size ? data[0] % K : 0);
  return 0;
}
