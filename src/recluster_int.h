/*
 * recluster_int.h -- internals shared by recluster.c (sampling, loading,
 * the pipeline), recluster_fit.c (families, K choice, quality,
 * stability) and recluster_match.c (stable ids and lineage).
 */
#ifndef SEGMENTD_RECLUSTER_INT_H
#define SEGMENTD_RECLUSTER_INT_H

#include "segmentd/recluster.h"

/* The sampled points of a space. */
typedef struct {
  size_t n;
  int dim;
  int64_t *rowid;
  float *x;          /* n x dim, unit rows */
  int64_t *old_id;   /* live cluster id of each point, or -1 */
} rc_points;

void rc_points_free(rc_points *p);

/* A fitted clustering of the points. */
typedef struct {
  int k;
  int32_t *labels;   /* n, -1 = noise */
  float *centroids;  /* k x dim, unit rows */
  double inertia;
} rc_fit;

void rc_fit_free(rc_fit *f);

/* Fits req's family to the points; chooses K when req->k == 0 and fills
 * quality["k_selection"]. A k-means fit with the live model's K also runs
 * warm from the live clusters (their members' mean in the new space) and
 * keeps that unless a fresh fit is better by --fresh-gain
 * (quality["start"]). */
int rc_fit_model(const sd_config *cfg, const sd_recluster_req *req,
                 const sd_live_model *live, const rc_points *p, rc_fit *out,
                 json_t *quality);

/* Silhouette, Davies-Bouldin and bootstrap stability into quality;
 * stability[k] receives each cluster's mean Jaccard. */
int rc_quality(const sd_config *cfg, const sd_recluster_req *req,
               const rc_points *p, const rc_fit *f, json_t *quality,
               double *stability);

/* Gives the fitted clusters ids (matching live ones) and lineage events. */
int rc_match(const sd_config *cfg, const sd_live_model *live,
             const rc_points *p, const rc_fit *f, sd_proposal *out);

#endif
