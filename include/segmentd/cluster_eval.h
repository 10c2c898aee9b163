/*
 * cluster_eval.h -- comparing and scoring clusterings.
 *
 * Owns: the Hungarian assignment (rectangular, maximising a score), the
 * external agreement measures between two labelings (contingency table,
 * NMI, ARI, accuracy under the best one-to-one matching, per-cluster
 * purity), and the internal quality measures of a clustering of vectors
 * (silhouette on a sample, Davies-Bouldin), with distances through
 * cblas_sgemm. Pure functions on plain arrays; thread-safe.
 *
 * Conventions: labels are int32 in [0, n_labels); a negative label means
 * "unassigned" (noise) and the point is skipped by the external measures.
 * Outputs are caller-allocated unless said otherwise. Functions return 0
 * or a negative sd_err (err.h).
 */
#ifndef SEGMENTD_CLUSTER_EVAL_H
#define SEGMENTD_CLUSTER_EVAL_H

#include <stddef.h>
#include <stdint.h>

/*
 * Hungarian algorithm on an r x c score matrix (row-major, doubles),
 * maximising the total score of a matching of min(r, c) pairs.
 * row_to_col[i] is the column matched to row i, or -1 when r > c and row i
 * is left out. O(max(r,c)^3); r, c <= 4096.
 */
int sd_hungarian_max(const double *score, int r, int c, int32_t *row_to_col);

/* Contingency table of two labelings: table[a * nb + b] counts points with
 * label a in la and b in lb (points where either is negative skipped). */
int sd_contingency(const int32_t *la, int na, const int32_t *lb, int nb,
                   size_t n, int64_t *table);

typedef struct {
  size_t n;       /* points counted (both labels non-negative) */
  double nmi;     /* normalised mutual information, arithmetic mean norm. */
  double ari;     /* adjusted Rand index */
  double accuracy;/* best one-to-one matching of clusters to classes */
} sd_agreement;

/* NMI, ARI and accuracy between predicted clusters and true classes. */
int sd_agreement_compute(const int32_t *pred, int n_pred, const int32_t *truth,
                         int n_truth, size_t n, sd_agreement *out);

/*
 * Mean silhouette of the labeled rows of x (n x dim) with k clusters,
 * computed on a uniform sample of at most max_sample rows (seeded); cosine
 * distance (1 - x.y) when spherical, else Euclidean. Rows with a negative
 * label are skipped; clusters of one point score 0 (Rousseeuw 1987).
 */
int sd_silhouette(const float *x, size_t n, int dim, const int32_t *labels,
                  int k, int spherical, size_t max_sample, uint64_t seed,
                  double *out);

/* Davies-Bouldin index (lower is better) of labeled rows and centroids. */
int sd_davies_bouldin(const float *x, size_t n, int dim,
                      const int32_t *labels, const float *centroids, int k,
                      double *out);

#endif
