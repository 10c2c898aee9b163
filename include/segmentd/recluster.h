/*
 * recluster.h -- batch re-clustering of a space, off the hot path.
 *
 * Owns: drawing a time-aware sample of a space's entities from the
 * database (Efraimidis-Spirakis weighted reservoir, weights doubling every
 * half-life of recency), refitting the built-in encoder's LSA projection on
 * the sampled texts, fitting a model with the requested family (kmeans,
 * hierarchical, density), choosing K by silhouette when K is not given,
 * measuring quality and bootstrap stability (Hennig 2007), and matching
 * the new clusters to the live ones (Hungarian on centroid cosine, with a
 * threshold) so ids stay stable, with lineage (born, split, merged,
 * retired). The result is an sd_proposal that the core writer installs
 * atomically (core.h).
 *
 * Threads: runs on the maintenance thread with that thread's read-only
 * connection (store.h); it never writes. Memory: sd_recluster_run fills a
 * proposal that sd_proposal_free releases (NULL-safe).
 */
#ifndef SEGMENTD_RECLUSTER_H
#define SEGMENTD_RECLUSTER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "segmentd/config.h"
#include "segmentd/embed.h"

typedef enum { SD_ALGO_KMEANS, SD_ALGO_HIER, SD_ALGO_DENSITY } sd_algo;

/* "kmeans" | "hierarchical" | "density" -> 0, or SD_EINVAL. */
int sd_algo_parse(const char *name, sd_algo *out);
const char *sd_algo_name(sd_algo a);

typedef struct {
  int space;           /* SD_SPACE_INTENTS | SD_SPACE_SEGMENTS */
  sd_algo algo;
  int k;               /* 0 = choose by silhouette */
  int refit_encoder;   /* intents + built-in embedder: refit LSA first */
  uint64_t seed;
  int64_t cause_alert; /* the drift alert that asked for it, or 0 */
} sd_recluster_req;

/* What the live model looked like when the job started. */
typedef struct {
  int has_model, k;
  int64_t version;
  const int32_t *ids;  /* k live cluster ids */
  int32_t next_id;     /* first unused cluster id */
  const sd_proj *proj; /* encoder projection in use (intents) */
  int64_t client_embedder_id; /* embedders row of client-supplied vectors */
  const float *beh_idf;       /* the behaviour view's weights (segments) */
} sd_live_model;

typedef struct {
  char kind[8];        /* born | split | merged | retired */
  json_t *from, *to;   /* arrays of cluster ids (owned) */
} sd_lineage_event;

typedef struct sd_proposal {
  int space, k, dim;
  sd_algo algo;
  float *centroids;    /* k x dim, unit rows */
  int32_t *ids;        /* stable ids after matching */
  float *weights;      /* sample members per cluster */
  double inertia;
  size_t sample_size, noise;
  double kept_share;   /* share of matched sample points that kept an id */
  json_t *quality;     /* silhouette, davies_bouldin, k_selection,
                          stability (owned) */
  sd_proj *proj;       /* new encoder projection, or NULL (owned ref) */
  sd_lineage_event *events;
  int n_events;
  int32_t next_id;
  int64_t duration_ms;
  /* drift reference: up to --drift-sample points of the sample, evenly
   * spread, with their cluster (row of centroids) and cosine to it */
  int64_t cause_alert; /* from the request */
  float *ref_x;
  int32_t *ref_label;
  float *ref_sim;
  size_t ref_n;
} sd_proposal;

void sd_proposal_free(sd_proposal *p);

/*
 * Runs the whole pipeline for req against the live model. enc is the
 * shared encoder (document frequencies); db_path locates the database
 * (the calling thread's reader connection is used). 0 or a negative
 * sd_err with msg set (e.g. SD_EINVAL "not enough points").
 */
int sd_recluster_run(const sd_config *cfg, const sd_encoder *enc,
                     const sd_recluster_req *req, const sd_live_model *live,
                     sd_proposal *out, char *msg, size_t msglen);

#endif
