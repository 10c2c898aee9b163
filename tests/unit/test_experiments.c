/*
 * test_experiments.c -- the balancing scheme of experiments.c: block sizes
 * of weights (reference values from a brute-force search in Debian's
 * /usr/bin/python3 over the rule in experiments.h), the hash in [0, 1)
 * and its spread, permuted blocks dealing exactly the weights' counts in
 * every finished block whatever the hashes, and the unstratified weight
 * buckets.
 */
#include "check.h"
#include "segmentd/experiments.h"

#include <stdio.h>

static void block_case(const double *w, int k, int want, const int *slots) {
  int got[SD_EXP_VARIANTS_MAX] = {0};
  CHECK_INT(sd_exp_block(w, k, got), want);
  for (int i = 0; slots && i < k; i++) CHECK_INT(got[i], slots[i]);
}

static void test_blocks(void) {
  block_case((const double[]){0.5, 0.5}, 2, 2, (const int[]){1, 1});
  block_case((const double[]){0.3, 0.7}, 2, 10, (const int[]){3, 7});
  block_case((const double[]){1 / 3.0, 1 / 3.0, 1 / 3.0}, 3, 3, (const int[]){1, 1, 1});
  block_case((const double[]){0.123, 0.877}, 2, 49, (const int[]){6, 43});
  block_case((const double[]){0.25, 0.25, 0.5}, 3, 4, (const int[]){1, 1, 2});
  block_case((const double[]){0.1, 0.2, 0.3, 0.4}, 4, 10, (const int[]){1, 2, 3, 4});
  block_case((const double[]){0.0005, 0.9995}, 2, -1, NULL);
}

static void test_unit(void) {
  double u = sd_exp_unit("promo", "u-1");
  CHECK(u >= 0 && u < 1);
  CHECK(u == sd_exp_unit("promo", "u-1"));   /* deterministic */
  CHECK(u != sd_exp_unit("promo2", "u-1"));  /* per experiment */
  int low = 0;
  char id[32];
  for (int i = 0; i < 10000; i++) {
    snprintf(id, sizeof(id), "user-%d", i);
    low += sd_exp_unit("promo", id) < 0.5;
  }
  CHECK(low > 4800 && low < 5200); /* 4 sigma of 50 */
}

/* Deals n users into one stratum with their hashes; every finished block
 * holds exactly slots[i] of variant i. */
static void deal(const double *w, int k, int n) {
  int slots[SD_EXP_VARIANTS_MAX];
  int b = sd_exp_block(w, k, slots);
  int64_t counts[SD_EXP_VARIANTS_MAX] = {0};
  char id[32];
  int exact = 1;
  for (int i = 0; i < n; i++) {
    snprintf(id, sizeof(id), "u%d", i);
    int v = sd_exp_pick(sd_exp_unit("deal", id), w, slots, k, counts);
    CHECK(v >= 0 && v < k);
    counts[v]++;
    if ((i + 1) % b == 0)
      for (int j = 0; j < k; j++) exact &= counts[j] == (int64_t)slots[j] * ((i + 1) / b);
  }
  CHECK(exact);
}

static void test_pick(void) {
  deal((const double[]){0.5, 0.5}, 2, 1001);
  deal((const double[]){0.3, 0.7}, 2, 1000);
  deal((const double[]){0.25, 0.25, 0.5}, 3, 999);
  /* a block's last slot is forced: the second user of a 50/50 block gets
   * the variant the first did not, whatever its hash */
  int slots[2] = {1, 1};
  const double w[2] = {0.5, 0.5};
  CHECK_INT(sd_exp_pick(0.01, w, slots, 2, (const int64_t[]){5, 4}), 1);
  CHECK_INT(sd_exp_pick(0.99, w, slots, 2, (const int64_t[]){4, 5}), 0);
  /* unstratified: the weight bucket of u */
  const double w3[3] = {0.2, 0.3, 0.5};
  CHECK_INT(sd_exp_pick(0.1, w3, NULL, 3, NULL), 0);
  CHECK_INT(sd_exp_pick(0.2, w3, NULL, 3, NULL), 1);
  CHECK_INT(sd_exp_pick(0.49, w3, NULL, 3, NULL), 1);
  CHECK_INT(sd_exp_pick(0.51, w3, NULL, 3, NULL), 2);
  CHECK_INT(sd_exp_pick(0.999999, w3, NULL, 3, NULL), 2);
}

int main(void) {
  test_blocks();
  test_unit();
  test_pick();
  return check_done("test_experiments");
}
