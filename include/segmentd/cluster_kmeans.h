/*
 * cluster_kmeans.h -- batch k-means on dense float32 rows.
 *
 * Owns: k-means++ seeding, several restarts, Lloyd iterations whose
 * point-to-centroid scores are computed with cblas_sgemm, the spherical
 * (cosine) variant, and nearest-centroid assignment of a batch. Knows nothing
 * of HTTP, SQLite or spaces: plain arrays in, plain arrays out.
 *
 * Memory: x and centroids are row-major (n x dim, k x dim). Results are
 * allocated here and released with sd_kmeans_result_free(); inputs are never
 * kept. Functions return 0 or a negative sd_err (err.h).
 */
#ifndef SEGMENTD_CLUSTER_KMEANS_H
#define SEGMENTD_CLUSTER_KMEANS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  int k;            /* clusters wanted, 1 <= k <= n */
  int max_iter;     /* Lloyd iterations per restart (default 50) */
  int restarts;     /* independent k-means++ starts, best inertia kept (>=1) */
  uint64_t seed;    /* PRNG seed: same seed + same input = same result */
  int spherical;    /* 1: cosine; rows assumed L2-normalised, centroids are
                       re-normalised each iteration; 0: squared Euclidean */
  float tol;        /* stop when relative inertia change < tol (0 = run all) */
  const float *init;/* k x dim starting centroids for the first restart
                       (a warm start), or NULL: every restart k-means++ */
} sd_kmeans_opts;

typedef struct {
  int k, dim;
  float *centroids; /* k x dim */
  int32_t *assign;  /* n entries, cluster index in [0, k) */
  double inertia;   /* sum of squared distances (spherical: sum of 1 - cos) */
  int iters;        /* Lloyd iterations run by the kept restart */
} sd_kmeans_result;

/* Sensible defaults for k clusters: max_iter 50, restarts 3, tol 1e-4. */
sd_kmeans_opts sd_kmeans_defaults(int k);

/* Fits k centroids to the n rows of x. On success *out owns its arrays. */
int sd_kmeans_fit(const float *x, size_t n, int dim, const sd_kmeans_opts *o,
                  sd_kmeans_result *out);

/* Frees what sd_kmeans_fit allocated; accepts NULL and zeroed results. */
void sd_kmeans_result_free(sd_kmeans_result *r);

/*
 * Nearest centroid of each of the n rows of x among the k rows of c, in
 * blocks through cblas_sgemm. best[i] is the index; best_sim[i] the score
 * (spherical: cosine x.c; else the negated squared distance, so larger is
 * better). second / second_sim (may be NULL) give the runner-up (-1 and
 * -INFINITY when k == 1). Safe to call from several threads at once.
 */
int sd_kmeans_assign(const float *x, size_t n, const float *c, int k, int dim,
                     int spherical, int32_t *best, float *best_sim,
                     int32_t *second, float *second_sim);

#endif
