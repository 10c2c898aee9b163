/* Unit tests of space.c: member counts, online updates, representatives
 * chosen by maximal marginal relevance, members removed. */
#include "check.h"
#include "segmentd/space.h"

#include <math.h>

enum { D = 8 };

static float unit(float *v) { /* normalises v; returns its first coordinate */
  float n = 0;
  for (int i = 0; i < D; i++) n += v[i] * v[i];
  for (int i = 0; i < D; i++) v[i] /= sqrtf(n);
  return v[0];
}

int main(void) {
  sd_space sp;
  CHECK_INT(sd_space_init(&sp, SD_SPACE_SEGMENTS, D, 1e9), 0);
  int32_t ids[1] = {7};
  float cen[D] = {1}, w[1] = {1};
  CHECK_INT(sd_space_set_model(&sp, 1, ids, cen, w, 1, 1000, 0, "kmeans"), 0);
  /* members e0 + 0.4 e_j: all equally similar to the centroid (e0); three
     near-duplicates along e1, four others along e2..e5 */
  const char *names[7] = {"dup-a", "dup-b", "dup-c", "x", "y", "z", "v"};
  for (int i = 0; i < 7; i++) {
    float v[D] = {1};
    v[i < 3 ? 1 : i - 1] = 0.4f;
    float sim = unit(v);
    sd_space_member_add(&sp, 0, sim, names[i], NULL, 0, v);
  }
  CHECK_INT(sp.sizes[0], 7);
  sd_snapshot *snap = sd_snapshot_new();
  sd_snap_space out;
  CHECK_INT(sd_space_snapshot(&sp, snap, &out, 2000), 0);
  CHECK_INT(out.clusters[0].n_reps, SD_REPS);
  int dups = 0;
  for (int r = 0; r < out.clusters[0].n_reps; r++)
    dups += !strncmp(out.clusters[0].reps[r].id, "dup", 3);
  CHECK_INT(dups, 1); /* diversity: one of the near-duplicates stands for all */
  CHECK(!strncmp(out.clusters[0].reps[0].id, "dup", 3)); /* the most similar first */
  sd_snapshot_release(snap);
  /* removing a member takes it out of counts and candidates */
  sd_space_member_remove(&sp, 0, 0.928f, "dup-a", NULL, 0);
  CHECK_INT(sp.sizes[0], 6);
  for (int r = 0; r < SD_REP_POOL && sp.reps[0][r].id; r++)
    CHECK(strcmp(sp.reps[0][r].id, "dup-a") != 0);
  /* an online update moves the centroid towards the point, still unit */
  float x[D] = {0, 1};
  sd_space_update(&sp, 0, x, 2000);
  CHECK(sp.centroids[1] > 0.1f);
  float n = 0;
  for (int i = 0; i < D; i++) n += sp.centroids[i] * sp.centroids[i];
  CHECK_NEAR(n, 1.0, 1e-5);
  /* unlearning a point is the inverse of learning it */
  float before[D];
  memcpy(before, sp.centroids, sizeof(before));
  float wb = sp.weights[0];
  float y[D] = {0.6f, 0, 0.8f};
  sd_space_update(&sp, 0, y, 2000);
  sd_space_unlearn(&sp, 0, y);
  CHECK_NEAR(sp.weights[0], wb, 1e-5);
  for (int i = 0; i < D; i++) CHECK_NEAR(sp.centroids[i], before[i], 1e-5);
  sd_space_free(&sp);
  return check_done("test_space");
}
