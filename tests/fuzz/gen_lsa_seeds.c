/*
 * gen_lsa_seeds.c -- writes seed blobs for fuzz_lsa_load into the folder
 * argv[1]: a real table fitted by sd_lsa_fit on a dozen short texts
 * (dim 4) and saved with sd_lsa_save, a hand-made minimal one (dim 1, one
 * bucket), and a few near-misses (bad magic, version, order, NaN,
 * truncated). scripts/fuzz.sh builds and runs it before each lsa_load run;
 * the committed files in tests/fuzz/corpus/fuzz_lsa_load/ are its output.
 */
#include "segmentd/embed_lsa.h"
#include "segmentd/tokenize.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int put(const char *dir, const char *name, const void *p, size_t n) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
    fprintf(stderr, "gen_lsa_seeds: cannot write %s\n", path);
    return 1;
  }
  return 0;
}

static void le32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void lef(unsigned char *p, float f) {
  uint32_t v;
  memcpy(&v, &f, 4);
  le32(p, v);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: gen_lsa_seeds DIR\n");
    return 2;
  }
  const char *dir = argv[1];
  static const char *const texts[] = {
      "my card was declined", "card declined at the shop",
      "how do I top up", "top up failed", "where is my card",
      "card has not arrived", "exchange rate for euros",
      "what exchange rate do you use", "cancel my transfer",
      "transfer is pending", "pin is blocked", "unblock my pin"};
  size_t nt = sizeof(texts) / sizeof(texts[0]);
  sd_csr m;
  memset(&m, 0, sizeof(m));
  for (size_t i = 0; i < nt; i++) {
    sd_sparse s;
    /* 6 bits: a small table (<= 64 buckets) that still has overlap */
    if (sd_features(texts[i], strlen(texts[i]), 6, &s) != 0) return 1;
    double norm = 0;
    for (size_t j = 0; j < s.n; j++) norm += (double)s.val[j] * s.val[j];
    for (size_t j = 0; j < s.n; j++) s.val[j] /= (float)sqrt(norm);
    if (sd_csr_push(&m, s.idx, s.val, s.n) != 0) return 1;
    sd_sparse_free(&s);
  }
  sd_lsa_opts o = sd_lsa_defaults(4);
  o.seed = 1;
  sd_lsa *l = NULL;
  void *blob = NULL;
  size_t len = 0;
  if (sd_lsa_fit(&m, &o, &l) != 0 || sd_lsa_save(l, &blob, &len) != 0) {
    fprintf(stderr, "gen_lsa_seeds: fit/save failed\n");
    return 1;
  }
  int bad = put(dir, "fitted_dim4", blob, len);
  /* near-misses of the fitted blob */
  unsigned char *b = malloc(len);
  if (!b) return 1;
  memcpy(b, blob, len);
  b[0] = 'X';
  bad |= put(dir, "bad_magic", b, len);
  memcpy(b, blob, len);
  le32(b + 4, 2);
  bad |= put(dir, "bad_version", b, len);
  bad |= put(dir, "truncated", blob, len - 1);
  memcpy(b, blob, len);
  lef(b + len - 4, NAN);
  bad |= put(dir, "nan_row", b, len);
  free(b);
  free(blob);
  sd_lsa_free(l);
  sd_csr_free(&m);

  /* minimal: dim 1, one bucket (id 7), sv 1, row 0.5 = 28 bytes */
  unsigned char mini[28];
  memcpy(mini, "SDLS", 4);
  le32(mini + 4, 1);
  le32(mini + 8, 1);
  le32(mini + 12, 1);
  lef(mini + 16, 1.0f);
  le32(mini + 20, 7);
  lef(mini + 24, 0.5f);
  bad |= put(dir, "minimal_dim1", mini, sizeof(mini));
  /* dim 2, two buckets out of order (3, 3): must be rejected */
  unsigned char dup[16 + 8 + 8 + 16];
  memcpy(dup, "SDLS", 4);
  le32(dup + 4, 1);
  le32(dup + 8, 2);
  le32(dup + 12, 2);
  lef(dup + 16, 2.0f);
  lef(dup + 20, 1.0f);
  le32(dup + 24, 3);
  le32(dup + 28, 3);
  for (int i = 0; i < 4; i++) lef(dup + 32 + 4 * i, (float)i - 1.5f);
  bad |= put(dir, "dup_bucket", dup, sizeof(dup));
  return bad;
}
