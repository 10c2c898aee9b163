/*
 * space.h -- the mutable state of one clustering space (intents or
 * segments), owned by the core writer thread.
 *
 * Owns: the live model (cluster ids, L2-normalised centroids, decayed
 * weights), exact member counts, similarity sums (cohesion), the top
 * representatives of each cluster, per-cluster word counts (intents), the
 * online mini-batch update (Sculley 2010, with time decay of the weights),
 * and copying all of it into a published snapshot.
 *
 * Threads: writer only. Memory: sd_space_init/sd_space_free manage
 * everything inside; sd_space_set_model copies its inputs.
 */
#ifndef SEGMENTD_SPACE_H
#define SEGMENTD_SPACE_H

#include <stddef.h>
#include <stdint.h>

#include "segmentd/label_terms.h"
#include "segmentd/snapshot.h"

#define SD_REP_POOL 20 /* candidates kept per cluster for representatives */
#define SD_REP_LAMBDA 0.7f /* MMR: relevance vs diversity */

typedef struct {
  float sim;
  char *id, *text;
  float *vec; /* the member's vector (dim), or NULL when not known */
} sd_space_rep;

typedef struct {
  int index;                /* SD_SPACE_INTENTS | SD_SPACE_SEGMENTS */
  const char *name, *entity;
  int dim;
  double half_life_ms;
  /* live model */
  int has_model, k;
  int64_t version, trained_at;
  double inertia;
  char algorithm[16];
  int32_t *ids;
  float *centroids;         /* k x dim */
  float *weights;           /* decayed weight per cluster */
  int64_t *weight_t;        /* time each weight was decayed to */
  int64_t *sizes;           /* exact members */
  double *sim_sum;          /* sum of member similarities */
  int64_t *created_at;
  char **label, **description; /* manual, or NULL */
  double *stability;        /* bootstrap Jaccard per cluster, NAN unknown */
  char *quality;            /* the model's quality JSON, or NULL */
  sd_space_rep (*reps)[SD_REP_POOL]; /* most similar first */
  /* not per cluster */
  int64_t points;           /* entities with a vector */
  int64_t points_at_train;  /* points when the live model was installed */
  _Atomic int train_requested; /* first model asked of the maintenance
                                  thread (cleared if that job fails) */
  _Atomic int64_t train_retry_at; /* after a failed first model, not
                                     before this time (epoch ms) */
  int32_t next_id;
  sd_terms *terms;          /* intents only */
  int64_t terms_at;         /* when top terms were last ranked */
  int terms_retries;        /* incomplete rankings in a row (space.c) */
  const char **top_cache;   /* k x SD_TOP_TERMS ranked terms (intents) */
} sd_space;

int sd_space_init(sd_space *sp, int index, int dim, double half_life_ms);
void sd_space_free(sd_space *sp);

/* Installs a model of k clusters (copies; centroids are re-normalised);
 * member counts, representatives and terms start empty. */
int sd_space_set_model(sd_space *sp, int k, const int32_t *ids,
                       const float *centroids, const float *weights,
                       int64_t version, int64_t trained_at, double inertia,
                       const char *algorithm);

/* Records the model's quality JSON (copied) and reads each cluster's
 * stability from its "stability"."per_cluster" object. */
int sd_space_set_quality(sd_space *sp, const char *quality_json);

/* Cluster index of id, or -1. */
int sd_space_index_of(const sd_space *sp, int64_t id);

/* Nearest cluster of x: index, similarity, runner-up similarity and a
 * confidence in [0.5, 1] (logistic of the margin). Needs a model. */
int sd_space_assign(const sd_space *sp, const float *x, int *idx, float *sim,
                    float *conf);

/* Confidence from the best and second-best similarities. */
float sd_confidence(float best, float second);

/* Moves centroid idx towards x (decayed mini-batch step) at time now. */
void sd_space_update(sd_space *sp, int idx, const float *x, int64_t now);

/* Takes x's share back out of centroid idx: the inverse of
 * sd_space_update's step (exact when no decay happened since), weight
 * minus one; a cluster left with weight <= 1 keeps its centroid. Used by
 * erasure. */
void sd_space_unlearn(sd_space *sp, int idx, const float *x);

/* Member bookkeeping: counts, cohesion, representative candidates, terms.
 * text and vec (the member's unit vector, for diverse representatives)
 * may be NULL. remove takes the similarity recorded when the member was
 * added. Representatives are chosen from the SD_REP_POOL most similar
 * members by maximal marginal relevance (Carbonell & Goldstein 1998). */
void sd_space_member_add(sd_space *sp, int idx, float sim, const char *id,
                         const char *text, size_t text_len, const float *vec);
/* Would a member of cluster idx with this similarity enter the pool of
 * representative candidates? (Callers skip fetching its vector if not.) */
int sd_space_rep_wants(const sd_space *sp, int idx, float sim);

void sd_space_member_remove(sd_space *sp, int idx, float sim, const char *id,
                            const char *text, size_t text_len);
/* Forgets every member (counts, cohesion, representatives, terms), before
 * they are counted again from the stored assignments. */
void sd_space_members_clear(sd_space *sp);

/* Copies the space into snapshot space out (arena of snap). Top terms are
 * re-ranked at most once a second (and after a new model). */
int sd_space_snapshot(sd_space *sp, sd_snapshot *snap, sd_snap_space *out,
                      int64_t now);

#endif
