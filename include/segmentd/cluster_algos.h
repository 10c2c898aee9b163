/*
 * cluster_algos.h -- the batch clustering families beyond k-means:
 * hierarchical (Ward linkage over micro-clusters, keeping the tree) and
 * density-based (low-density points left unassigned as noise).
 *
 * Owns: building micro-clusters with k-means (cluster_kmeans.h), Ward
 * agglomeration of them with the full merge tree, cutting the tree at k
 * clusters or at a distance, and density clustering. Pure functions on
 * plain arrays; thread-safe. Results are allocated here and freed with the
 * matching _free function (NULL-safe). 0 or a negative sd_err.
 */
#ifndef SEGMENTD_CLUSTER_ALGOS_H
#define SEGMENTD_CLUSTER_ALGOS_H

#include <stddef.h>
#include <stdint.h>

/* ---- hierarchical ---- */

typedef struct {
  int a, b;        /* merged nodes: 0..m-1 are leaves (micro-clusters),
                      m + i is the node made by merge i */
  double distance; /* Ward merge cost (increase of within-cluster SS) */
  int64_t size;    /* points under the new node */
} sd_merge;

typedef struct {
  int m, dim;           /* leaves (micro-clusters) and dimension */
  float *leaf_centroids;/* m x dim */
  int64_t *leaf_sizes;  /* m */
  int32_t *leaf_of;     /* n: micro-cluster of each input row */
  size_t n;
  sd_merge *merges;     /* m - 1 merges, distances non-decreasing */
} sd_tree;

typedef struct {
  int micro;          /* micro-clusters (default min(n, 20 * k_hint, 500)) */
  uint64_t seed;
  int spherical;      /* rows are L2-normalised; centroids re-normalised */
} sd_tree_opts;

/* Builds micro-clusters of x (n x dim) and the Ward tree over them. */
int sd_tree_build(const float *x, size_t n, int dim, const sd_tree_opts *o,
                  sd_tree *out);
void sd_tree_free(sd_tree *t);

/* Cuts the tree into k clusters (1 <= k <= m), or (k == 0) at the given
 * merge distance. labels[n] gets each row's cluster in [0, k_out);
 * centroids (k_out x dim, allocated here, free()) are size-weighted means of
 * leaves (re-normalised when spherical). */
int sd_tree_cut(const sd_tree *t, int k, double distance, int spherical,
                int32_t *labels, float **centroids, int *k_out);

/* ---- density ---- */

typedef struct {
  int min_cluster_size; /* smallest group kept as a cluster (default 15) */
  int min_samples;      /* core-distance neighbour count (default = min
                           cluster size) */
  int spherical;        /* cosine distance on L2-normalised rows */
  uint64_t seed;
  size_t max_points;    /* work on at most this many rows (sampled, then the
                           rest assigned to the nearest core cluster member
                           if within its core distance, else noise);
                           default 20000 */
  int allow_single_cluster; /* all rows may form one cluster (HDBSCAN's
                               option; default 0: at least two) */
} sd_density_opts;

typedef struct {
  int k;             /* clusters found */
  int dim;
  int32_t *labels;   /* n: cluster in [0, k) or -1 for noise */
  float *centroids;  /* k x dim: means of members (normalised if spherical) */
  size_t noise;      /* rows labelled -1 */
} sd_density_result;

/* HDBSCAN-style clustering (Campello et al. 2013): mutual reachability
 * distances, minimum spanning tree, condensed tree with min_cluster_size,
 * clusters chosen by excess of mass; leftover points are noise. */
int sd_density_fit(const float *x, size_t n, int dim,
                   const sd_density_opts *o, sd_density_result *out);
void sd_density_result_free(sd_density_result *r);

#endif
