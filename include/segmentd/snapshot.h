/*
 * snapshot.h -- the immutable, published read view of the models.
 *
 * Owns: sd_snapshot, a self-contained copy of what readers need (per space:
 * centroids, cluster ids, sizes, labels, top terms, representatives), its
 * arena, its reference count, and the global "current" pointer.
 *
 * Threads: the core writer builds a snapshot and publishes it; any thread
 * may sd_snapshot_acquire() the current one and read it without locks until
 * it calls sd_snapshot_release(). Publishing swaps the pointer under a
 * mutex held only for the swap; the old snapshot is freed by whoever drops
 * its last reference.
 */
#ifndef SEGMENTD_SNAPSHOT_H
#define SEGMENTD_SNAPSHOT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "segmentd/views.h"

#define SD_SPACES 2
#define SD_SPACE_INTENTS 0
#define SD_SPACE_SEGMENTS 1
#define SD_TOP_TERMS 10
#define SD_REPS 5

typedef struct {
  const char *id;   /* entity id */
  const char *text; /* a text (intents) or NULL */
  float similarity;
} sd_snap_rep;

typedef struct {
  int32_t id;
  int64_t size;
  double share, cohesion;
  double stability; /* bootstrap Jaccard, NAN when not measured */
  const char *label;
  int label_manual;
  const char *description; /* or NULL */
  const char *terms[SD_TOP_TERMS]; /* intents: words; segments: event types */
  int n_terms;
  sd_snap_rep reps[SD_REPS];
  int n_reps;
  int32_t intents[3];       /* segments: the members' most written intents */
  float intent_share[3];    /* share of the members' texts in each */
  int n_intents;
  int64_t created_at;
} sd_snap_cluster;

typedef struct {
  const char *name;   /* "intents" | "segments" */
  const char *entity; /* "texts" | "users" */
  int has_model, k, dim;
  int64_t version, trained_at, updated_at;
  int64_t points;   /* entities with a vector */
  int64_t points_at_train; /* points when the model was trained */
  int32_t next_id;  /* first cluster id never used in this space */
  int reassigning;  /* entities are still being moved onto this model */
  int64_t assigned; /* entities in a cluster */
  double inertia;
  const char *quality; /* the model's quality JSON, or NULL */
  const char *algorithm;
  float *centroids; /* k x dim, L2-normalised rows */
  sd_snap_cluster *clusters;
} sd_snap_space;

typedef struct sd_snap_chunk sd_snap_chunk;

typedef struct sd_snapshot {
  atomic_int refs;
  sd_snap_space spaces[SD_SPACES];
  const char *beh_names[SD_BEH_DIM]; /* an event type per bucket, or NULL */
  const char *ctx_names[SD_CTX_DIM]; /* a "key=value" per bucket, or NULL */
  float beh_idf[SD_BEH_DIM];         /* the behaviour view's weights */
  struct sd_proj *proj; /* the encoder projection of the intents model
                           (a reference, released with the snapshot) */
  sd_snap_chunk *arena;
} sd_snapshot;

/* A new empty snapshot holding one reference. NULL on ENOMEM. */
sd_snapshot *sd_snapshot_new(void);

/* Arena allocation inside the snapshot (freed with it); NULL on ENOMEM. */
void *sd_snapshot_alloc(sd_snapshot *s, size_t n);
const char *sd_snapshot_strdup(sd_snapshot *s, const char *str);

/* Makes s current (taking over the caller's reference). */
void sd_snapshot_publish(sd_snapshot *s);

/* The current snapshot with a new reference, or NULL before the first
 * publish. Pair with sd_snapshot_release. */
sd_snapshot *sd_snapshot_acquire(void);
void sd_snapshot_release(sd_snapshot *s);

/* Drops the current pointer (at shutdown). */
void sd_snapshot_clear(void);

/* The space of a name, or NULL. */
const sd_snap_space *sd_snapshot_space(const sd_snapshot *s, const char *name);

/* The index of cluster id in the space's model, or -1. */
int sd_snap_cluster_index(const sd_snap_space *sp, int64_t id);

#endif
