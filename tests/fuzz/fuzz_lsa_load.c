/*
 * fuzz_lsa_load.c -- libFuzzer target for sd_lsa_load (embed_lsa.h).
 *
 * Input: arbitrary bytes as a stored projection blob (exact length). Garbage
 * must be rejected with SD_EINVAL (or SD_ENOMEM) and nothing leaked. A blob
 * that loads must: report a dim in 1..SD_LSA_MAX_DIM, buckets >= 1 and
 * non-increasing non-negative singular values; project a few buckets (two
 * present, one absent, one empty row) without reading out of bounds; and
 * save back to exactly the input bytes.
 */
#include "fuzz_check.h"
#include "segmentd/embed_lsa.h"
#include "segmentd/err.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HEADER 16 /* "SDLS", version, dim, buckets */

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static void check_loaded(const sd_lsa *l, const uint8_t *data, size_t size) {
  int dim = sd_lsa_dim(l);
  size_t u = sd_lsa_buckets(l);
  FUZZ_CHECK(dim >= 1 && dim <= SD_LSA_MAX_DIM && u >= 1);
  const float *sv = sd_lsa_singular_values(l);
  for (int j = 0; j < dim; j++) {
    FUZZ_CHECK(isfinite(sv[j]) && sv[j] >= 0.0f);
    if (j) FUZZ_CHECK(sv[j] <= sv[j - 1]);
  }
  /* bucket ids straight from the blob (the format is public) */
  const uint8_t *ids = data + HEADER + 4 * (size_t)dim;
  uint32_t first = get32(ids), last = get32(ids + 4 * (u - 1));
  uint32_t idx[4] = {last, first, first == 0 ? UINT32_MAX : first - 1, first};
  float val[4] = {1.0f, 0.5f, 3.0f, -0.25f};
  float *out = malloc((size_t)dim * sizeof(float));
  if (!out) return;
  sd_lsa_project(l, idx, val, 4, out);
  sd_lsa_project(l, idx, val, 0, out);
  for (int j = 0; j < dim; j++) FUZZ_CHECK(out[j] == 0.0f);
  free(out);
  void *blob = NULL;
  size_t len = 0;
  int rc = sd_lsa_save(l, &blob, &len);
  FUZZ_CHECK(rc == 0 || rc == SD_ENOMEM);
  if (rc == 0) {
    FUZZ_CHECK(len == size && memcmp(blob, data, size) == 0);
    free(blob);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sd_lsa *l = (sd_lsa *)1; /* must be overwritten */
  int rc = sd_lsa_load(data, size, &l);
  if (rc == 0) {
    FUZZ_CHECK(l != NULL);
    check_loaded(l, data, size);
  } else {
    FUZZ_CHECK(rc == SD_EINVAL || rc == SD_ENOMEM);
    FUZZ_CHECK(l == NULL);
  }
  sd_lsa_free(l);
  return 0;
}
