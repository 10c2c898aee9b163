/*
 * experiments.h -- segment-aware experiments and outcome counts.
 *
 * Owns: experiment definitions and their storage (tables experiments,
 * experiment_assignments, experiment_strata of migration 0012), sticky
 * assignment (the variant, the segment pinned and the time, written once
 * by the writer), the balancing scheme, the erasure of a user's
 * assignments, and the counting queries behind
 * GET /v1/spaces/segments/outcomes and GET /v1/experiments/{name}/results
 * (users and converted users per segment and variant). Turning counts into
 * intervals is stats_ci.h's business; JSON and HTTP are the handlers'.
 *
 * Assignment. The user's hash u = H(experiment name, user id) in [0, 1)
 * decides. stratify "none": the variant whose cumulative-weight bucket
 * holds u (stateless, the same answer in any order). stratify "segments":
 * each stratum (the user's segment when first assigned; users without a
 * segment form one stratum) deals permuted blocks: a block has B slots,
 * slots[i] = weights[i] B of them for variant i (B the smallest block
 * size <= 1000 whose slots match every weight within 0.001), and a new
 * user draws, with u, one of the block's free slots uniformly (an urn
 * without replacement). Every completed block holds each variant exactly
 * slots[i] times, so within a stratum the counts never stray more than B
 * from the weights. Either way the first answer is stored, with the
 * segment and the time, and every later answer reads it (sticky).
 *
 * Threads and connections. sd_exp_op_* run on the core writer as a job's
 * fn (sd_core_submit / core.h), inside its transaction. sd_exp_read_*
 * run on any thread through that thread's read-only connection
 * (sd_store_reader). sd_exp_erase_user runs inside the writer's erasure
 * transaction. Memory: every out-array is malloc'd for the caller to
 * free(); definitions are plain values.
 */
#ifndef SEGMENTD_EXPERIMENTS_H
#define SEGMENTD_EXPERIMENTS_H

#include <stddef.h>
#include <stdint.h>

#include "segmentd/core.h"
#include "segmentd/ingest.h"

#define SD_EXP_NAME_MAX 64      /* bytes of a name: [A-Za-z0-9._-] */
#define SD_EXP_VARIANTS_MAX 8
#define SD_EXP_VARIANT_MAX 64   /* bytes of a variant name */
#define SD_EXP_WINDOW_MAX 365   /* days */
#define SD_EXP_WEIGHT_TOL 1e-3  /* |sum(weights) - 1| allowed */
#define SD_EXP_BLOCK_MAX 1000
#define SD_EXP_LIST_MAX 1000    /* experiments listed by GET /v1/experiments */

struct sd_store;

typedef struct {
  int64_t id;                   /* 0 before it is stored */
  char name[SD_EXP_NAME_MAX + 1];
  int n_variants;               /* 2..SD_EXP_VARIANTS_MAX; [0] is control */
  char variants[SD_EXP_VARIANTS_MAX][SD_EXP_VARIANT_MAX + 1];
  double weights[SD_EXP_VARIANTS_MAX];
  int stratify;                 /* 1: by segment; 0: none */
  char event_type[SD_MAX_ID + 1];
  int window_days;              /* 1..SD_EXP_WINDOW_MAX */
  int64_t created_at, stopped_at; /* epoch ms; stopped_at 0 = running */
} sd_exp_def;

/* ---- the balancing scheme (pure) ---- */

/* The block of weights w[0..k): fills slots[0..k) and returns B, the
 * smallest size in [k, SD_EXP_BLOCK_MAX] with slots[i] >= 1, sum = B and
 * |slots[i]/B - w[i]| <= 0.001 for every i; -1 when none exists. */
int sd_exp_block(const double *w, int k, int *slots);

/* H(name, user) in [0, 1): 53 bits of a 64-bit hash. */
double sd_exp_unit(const char *name, const char *user_id);

/* The variant of a user with hash u: stratified, the free slot u picks
 * in the current block of a stratum whose variants were dealt counts[i]
 * times; else (counts NULL) the weight bucket of u. */
int sd_exp_pick(double u, const double *w, const int *slots, int k,
                const int64_t *counts);

/* ---- writer operations (a job's fn; arg is the op) ---- */

typedef struct {
  const sd_exp_def *def;  /* borrowed until the job is done */
  int duplicate;          /* out: the name is taken */
  int unknown_event;      /* out: no event of def->event_type was stored */
  int64_t id, created_at; /* out */
} sd_exp_create_op;
int sd_exp_op_create(sd_core *c, void *op /* sd_exp_create_op */);

typedef struct {
  const char *name;       /* borrowed */
  int found;              /* out */
  sd_exp_def def;         /* out: the stopped definition (stopped_at: now,
                             or when an earlier DELETE stopped it) */
  int64_t users;          /* out: its assignments */
} sd_exp_stop_op;
int sd_exp_op_stop(sd_core *c, void *op /* sd_exp_stop_op */);

/* The stored assignment of a user. */
typedef struct {
  int variant;          /* index into the definition's variants */
  int has_segment;
  int64_t segment;
  int64_t assigned_at;
} sd_exp_assignment;

typedef struct {
  const char *name, *user_id; /* borrowed */
  int found_exp, found_user;  /* out */
  int stopped;                /* out: stopped and the user not assigned */
  int created;                /* out: assigned by this op */
  char variant[SD_EXP_VARIANT_MAX + 1]; /* out */
  sd_exp_assignment a;        /* out when assigned */
} sd_exp_assign_op;
int sd_exp_op_assign(sd_core *c, void *op /* sd_exp_assign_op */);

/* Deletes every assignment of user_id (inside the erasure's transaction on
 * the writer connection); *n = rows deleted. 0 or SD_EDB. */
int sd_exp_erase_user(struct sd_store *db, const char *user_id, int64_t *n);

/* ---- reads (the calling thread's read-only connection) ---- */

/* The definition of name: 0, SD_ENOTFOUND or SD_EDB. *users = the
 * assignments it holds (users may be NULL). */
int sd_exp_read_def(const char *name, sd_exp_def *def, int64_t *users);

/* Up to SD_EXP_LIST_MAX definitions by creation, with their assignment
 * counts (both arrays malloc'd; *n may be 0). 0 or SD_EDB/SD_ENOMEM. */
int sd_exp_read_list(sd_exp_def **defs, int64_t **users, size_t *n);

/* The fast path of GET .../assignment/{user}: the definition (variant
 * names, stopped_at) and the user's stored assignment in one statement.
 * 0 with *assigned 0/1, SD_ENOTFOUND (no experiment) or SD_EDB. */
int sd_exp_read_assignment(const char *name, const char *user_id,
                           sd_exp_def *def, int *assigned,
                           sd_exp_assignment *a);

/* One cell of a count: users in a segment (and variant), how many
 * converted, and how many are still inside their window. */
typedef struct {
  int has_segment;
  int64_t segment;
  int variant;          /* -1 for outcome counts */
  int64_t users, converted, open;
} sd_exp_cell;

/* Per (segment pinned at assignment, variant): users, and users with an
 * event of the outcome type in [assigned_at, assigned_at + window). */
int sd_exp_read_cells(const sd_exp_def *def, int64_t now_ms,
                      sd_exp_cell **cells, size_t *n);

/* Per current segment (users.cluster): users, and users with an event of
 * event_type in [first_seen, first_seen + window_ms), first_seen being the
 * time of the user's earliest stored event or text. */
int sd_exp_read_outcomes(const char *event_type, int64_t window_ms,
                         int64_t now_ms, sd_exp_cell **cells, size_t *n);

/* 1 when an event of this type was ever stored, 0 if not, or SD_EDB. */
int sd_exp_read_event_type_known(const char *type);

#endif
