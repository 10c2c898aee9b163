/* Unit tests of tokenize.c: words, n-gram features, hashing. */
#include "check.h"
#include "segmentd/err.h"
#include "segmentd/tokenize.h"

#include <stdlib.h>

static void test_words(void) {
  sd_words w;
  const char *t = "How do I get a REFUND? It's 2x_fast, naïve!";
  CHECK_INT(sd_words_split(t, strlen(t), &w), 0);
  const char *want[] = {"how", "do", "get", "refund", "it", "2x_fast", "naïve"};
  CHECK_INT(w.n, 7);
  for (size_t i = 0; i < w.n && i < 7; i++) {
    CHECK_INT(w.len[i], strlen(want[i]));
    CHECK(!memcmp(w.buf + w.off[i], want[i], w.len[i]));
  }
  sd_words_free(&w);
  CHECK_INT(sd_words_split("", 0, &w), 0);
  CHECK_INT(w.n, 0);
  sd_words_free(&w);
}

static void test_features(void) {
  sd_sparse a, b, c;
  const char *t = "refund my card";
  CHECK_INT(sd_features(t, strlen(t), 20, &a), 0);
  /* char grams: " refund " 6+5+4, " my " 2+1 (+the whole for n=4? no: "
     my " is 4 bytes: 2 trigrams, 1 four-gram), " card " 4+3+2; words: 3
     unigrams + 2 bigrams => 15 + 3 + 9 + 5 = 32 occurrences */
  float total = 0;
  for (size_t i = 0; i < a.n; i++) {
    total += a.val[i];
    if (i) CHECK(a.idx[i] > a.idx[i - 1]);
    CHECK(a.idx[i] < (1u << 20));
  }
  CHECK_NEAR(total, 32, 0);
  CHECK_INT(sd_features("REFUND my card", 14, 20, &b), 0); /* case folded */
  CHECK_INT(a.n, b.n);
  CHECK(!memcmp(a.idx, b.idx, a.n * sizeof(uint32_t)));
  CHECK_INT(sd_features("refund my card refund", 21, 20, &c), 0);
  CHECK(c.n > a.n); /* the bigram "card refund" is new */
  sd_sparse_free(&a);
  sd_sparse_free(&b);
  sd_sparse_free(&c);
  CHECK_INT(sd_features("x", 1, 2, &a), SD_EINVAL);
  CHECK_INT(sd_features("a", 1, 20, &a), 0); /* " a " once, no words */
  CHECK_INT(a.n, 1);
  sd_sparse_free(&a);
}

static void test_hash(void) {
  CHECK(sd_hash64("abc", 3, 0) == sd_hash64("abc", 3, 0));
  CHECK(sd_hash64("abc", 3, 0) != sd_hash64("abd", 3, 0));
  CHECK(sd_hash64("abc", 3, 0) != sd_hash64("abc", 3, 1));
}

static void test_long_text(void) {
  size_t n = 16384;
  char *t = malloc(n);
  for (size_t i = 0; i < n; i++) t[i] = (i % 7 == 6) ? ' ' : (char)('a' + i % 26);
  sd_sparse f;
  CHECK_INT(sd_features(t, n, 20, &f), 0);
  CHECK(f.n > 100);
  sd_sparse_free(&f);
  memset(t, 0xff, n); /* arbitrary bytes never crash the tokeniser */
  CHECK_INT(sd_features(t, n, 20, &f), 0);
  sd_sparse_free(&f);
  free(t);
}

int main(void) {
  test_words();
  test_features();
  test_hash();
  test_long_text();
  return check_done("test_tokenize");
}
