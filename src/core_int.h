/*
 * core_int.h -- internals shared by the core writer's files: core.c
 * (thread, queue, lifecycle), core_ingest.c (group commit of batches),
 * core_model.c (training, persisting and reloading models).
 * Everything here runs on the writer thread unless noted.
 */
#ifndef SEGMENTD_CORE_INT_H
#define SEGMENTD_CORE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "segmentd/core.h"
#include "segmentd/space.h"
#include "segmentd/store.h"
#include "segmentd/views.h"
#include "segmentd/views_store.h"

/* One slice of a fitted projection to store (sd_core_store_part). */
typedef struct core_part {
  int64_t version;
  int seq;
  const void *data;
  size_t len;
} core_part;

/* A re-assignment of a space's entities to its new model, in steps. */
typedef struct {
  int active, space;
  int64_t version;
  int phase;        /* 0: entities; 1: users' text views (after a refit) */
  int64_t after;    /* rowid cursor of the phase */
  int refit;        /* the install refitted the encoder's projection */
  sd_job *waiter;   /* the install job answered at the end, or NULL */
  int64_t started_ns;
  int64_t rows;
} core_reassign_state;

struct sd_core {
  const sd_config *cfg;
  int lookups_stale; /* a fn job changed users or texts: after its COMMIT,
                        the lookup cache is cleared (lookup_cache.h) */
  sd_store *db;
  sd_checkpointer *ckpt;       /* WAL checkpoints off the writer */
  sd_encoder *enc;
  int64_t embedder_id, client_embedder_id; /* random projection, client */
  int remote;                  /* texts are embedded by a remote server */
  int64_t remote_embedder_id;  /* its embedders row (remote only) */
  _Atomic int64_t pending;     /* texts queued for an embedding */
  _Atomic int64_t failed;      /* queued texts the embedder rejected */
  int reembed;                 /* a re-embed runs: re-cluster once drained */
  struct sd_drift *drift;      /* windows and references of drift checks */
  sd_proj *raw_proj;           /* random projection for emerging searches */
  void (*on_outbox)(void *ud); /* told after a group commit (webhooks) */
  void *on_outbox_ud;
  void (*on_pending)(void *ud);/* told after a commit that queued texts */
  void *on_pending_ud;
  sd_proj *proj;               /* projection new texts are embedded with */
  _Atomic(struct sd_maint *) maint; /* set once at start */
  sd_views_conf vc;
  sd_space spaces[SD_SPACES];
  char *beh_names[SD_BEH_DIM]; /* first event type seen per bucket */
  char *ctx_names[SD_CTX_DIM]; /* first "key=value" seen per bucket */
  double beh_count[SD_BEH_DIM];/* events per behaviour bucket, all users */
  double beh_total;
  float beh_idf[SD_BEH_DIM];   /* ln((1+total)/(1+count)) + 1, c->vc uses it */
  float *scratch;              /* dim floats for the writer's own use */
  pthread_mutex_t mix_mu;      /* guards the segment x intent mix below */
  int64_t *mix;                /* rows of (segment, intent, texts) */
  size_t n_mix;
  int64_t started_at, last_save;
  /* queue: guarded by mu */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  sd_job *head, *tail;
  int depth, stopping, running;
  int publish_pending;          /* something outside the writer changed */
  pthread_t thread;
  core_reassign_state reassign; /* writer-owned */
};

/* core_ingest.c: stores a group of jobs in one transaction, then applies
 * the in-memory updates; sets each job's rc and counts. */
void core_group(sd_core *c, sd_job **jobs, int n);

/* core_embed.c: the embedder's identity and the embedding queue's
 * counters at start; after a group commit, telling the queue about new
 * texts and re-clustering once a re-embed has drained. */
int core_embed_load(sd_core *c, char *msg, size_t msglen);
void core_embed_committed(sd_core *c, int64_t queued, int64_t embedded);

/* core_drift.c: a model's drift reference, stored with its install and
 * loaded at start; new assignments observed after a group commit. */
int core_drift_store(sd_core *c, const struct sd_proposal *p, int64_t version);
int core_drift_install(sd_core *c, const struct sd_proposal *p);
int core_drift_load(sd_core *c, int space);
int core_drift_init(sd_core *c); /* after the embedder is known */
void core_drift_observe_text(sd_core *c, int idx, float sim, const float *x,
                             const char *id, const char *text, size_t len);
void core_drift_observe_user(sd_core *c, int idx, float sim, const float *x,
                             const char *id);

/* core_ingest.c, shared with retention's re-computation of views: an
 * event's behaviour, time and context views (names of new context
 * features are noted), and writing a user's row with its segment (idx -1:
 * none). */
int core_event_view(sd_core *c, sd_user_state *u, const sd_event *e);
int core_user_store(sd_core *c, const char *user_id, const sd_user_state *u,
                    int idx, float sim, float conf, int64_t now);

/* core_admin.c: an audit row (detail stolen, may be NULL). */
int core_audit(sd_core *c, const char *action, const char *target,
               json_t *detail);

/* core_sync.c: the segments webhook stream (a snapshot, then diffs), each
 * event added inside the transaction of its change. */
int core_sync_snapshot(sd_core *c, int64_t version);
int core_sync_start(sd_core *c); /* a snapshot if the model changed */
int core_sync_diff(sd_core *c, const int64_t *from, const int64_t *to,
                   const char *const *users, size_t n, const char *reason);

/* core_model.c */
int core_load(sd_core *c, char *msg, size_t msglen);
int core_rebuild_members(sd_core *c, int space, int observe_df);
int core_load_cluster_rows(sd_core *c, sd_space *sp);
/* The embedders row of LSA projection `version`. */
int core_projection_embedder(sd_core *c, int64_t version, int64_t *id);
/* Asks the maintenance thread for a first model when a space is due. */
void core_request_first_models(sd_core *c);

/* core_install.c: installs a proposal (writer thread) and starts the
 * re-assignment of its space; job is answered when that ends. 0 (job
 * pending) or a negative sd_err (job not answered). */
int core_install(sd_core *c, struct sd_proposal *p, sd_job *job);

/* Stores one projection part in its own transaction. */
int core_store_part(sd_core *c, const core_part *part);

/* core_reassign.c */
int core_reassign_start(sd_core *c, int space, int64_t version, int refit);
void core_reassign_step(sd_core *c);
int core_reassign_load(sd_core *c);
void core_reassign_abandon(sd_core *c);
int core_save_models(sd_core *c);
int core_publish(sd_core *c);

/* Recomputes beh_idf from the behaviour counts. */
void core_beh_idf(sd_core *c);

/* Reads a float32 BLOB of exactly n floats into out; 0 or -1. */
int core_blob_floats(sqlite3_stmt *st, int col, float *out, int n);

#endif
