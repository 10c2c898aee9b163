/* Unit tests of embed_builtin.c: TF-IDF, projection, normalisation. */
#include "check.h"
#include "segmentd/embed.h"
#include "segmentd/err.h"

#include <math.h>
#include <stdlib.h>

static float dot(const float *a, const float *b, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
  return (float)s;
}

static void observe(sd_encoder *e, const char *t) {
  sd_sparse f;
  CHECK_INT(sd_features(t, strlen(t), SD_ENCODER_BITS, &f), 0);
  sd_encoder_observe(e, &f);
  sd_sparse_free(&f);
}

int main(void) {
  sd_encoder *e;
  const int dim = 256;
  CHECK_INT(sd_encoder_new(0, 20, 1, &e), SD_EINVAL);
  CHECK_INT(sd_encoder_new(dim, 20, 1, &e), 0);
  const char *corpus[] = {
      "my card has not arrived yet", "when will my card arrive",
      "the card still has not arrived", "I want a refund for this purchase",
      "how do I get a refund", "refund my purchase please",
      "what is the exchange rate", "exchange rate for dollars"};
  for (int i = 0; i < 8; i++) observe(e, corpus[i]);
  CHECK_INT(sd_encoder_docs(e), 8);
  float a[256], b[256], c[256], d[256];
  CHECK_INT(sd_encoder_encode_text(e, "my card has not arrived", 23, a), 0);
  CHECK_INT(sd_encoder_encode_text(e, "when does my card arrive", 24, b), 0);
  CHECK_INT(sd_encoder_encode_text(e, "refund my purchase", 18, c), 0);
  CHECK_INT(sd_encoder_encode_text(e, "my card has not arrived", 23, d), 0);
  CHECK_NEAR(dot(a, a, dim), 1.0, 1e-4);       /* unit length */
  CHECK_NEAR(dot(a, d, dim), 1.0, 1e-4);       /* deterministic */
  CHECK(dot(a, b, dim) > dot(a, c, dim) + 0.1); /* same topic is closer */
  for (int i = 0; i < dim; i++) CHECK(isfinite(a[i]));
  /* a second encoder with the same seed projects identically */
  sd_encoder *e2;
  CHECK_INT(sd_encoder_new(dim, 20, 1, &e2), 0);
  for (int i = 0; i < 8; i++) observe(e2, corpus[i]);
  CHECK_INT(sd_encoder_encode_text(e2, "my card has not arrived", 23, b), 0);
  CHECK_NEAR(dot(a, b, dim), 1.0, 1e-5);
  /* idf: a word seen everywhere weighs less than a rare one */
  sd_sparse f;
  memset(c, 0, sizeof(c));
  CHECK_INT(sd_features("", 0, 20, &f), 0);
  CHECK_INT(sd_encoder_encode(e, &f, c), 0); /* no features: zero vector */
  CHECK_NEAR(dot(c, c, dim), 0, 0);
  sd_sparse_free(&f);
  sd_encoder_free(e2);
  sd_encoder_free(e);
  sd_encoder_free(NULL);
  return check_done("test_encoder");
}
