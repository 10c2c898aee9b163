/*
 * core.h -- the core writer: the one thread that owns SQLite writes and
 * the mutable models.
 *
 * Owns: the bounded ingest queue, group commit (every batch waiting when
 * the writer wakes goes into one transaction), embedding texts with the
 * built-in encoder, updating user views, assigning entities and moving
 * centroids online, training a space's first model once it holds enough
 * points, persisting and reloading models, and publishing snapshots.
 *
 * Threads: sd_core_submit may be called from any thread; the job's done
 * callback runs on the writer thread after the batch is committed (or has
 * failed) and the snapshot reflecting it is published. Memory: the caller
 * owns each job and must keep it alive until its done callback has run.
 */
#ifndef SEGMENTD_CORE_H
#define SEGMENTD_CORE_H

#include "segmentd/config.h"
#include "segmentd/drift.h"
#include "segmentd/embed.h"
#include "segmentd/ingest.h"

typedef struct sd_core sd_core;
struct sd_maint;
struct sd_proposal;

typedef struct sd_job {
  sd_batch batch;             /* what to store (owned by the caller) */
  int rc;                     /* result: 0 or a negative sd_err */
  size_t accepted, duplicates;
  size_t pending;             /* accepted texts waiting for an embedding */
  void (*done)(struct sd_job *job, void *ud);
  void *ud;
  struct sd_proposal *install;/* set: install this model instead */
  struct core_part *part;     /* set: store this projection part instead */
  int (*fn)(sd_core *c, void *arg); /* set: run this on the writer, in its
                                       own transaction, then publish */
  void *fn_arg;
  int quiet;                  /* fn: changes nothing readers see (no new
                                 snapshot after it) */
  void *ud2;                  /* install: the summary (json_t *) */
  struct sd_job *next;        /* queue link (core-owned while queued) */
} sd_job;

/* Opens the database, loads stored models and rebuilds in-memory state,
 * then starts the writer. 0 or a negative sd_err with msg set. */
int sd_core_start(const sd_config *cfg, sd_core **out, char *msg,
                  size_t msglen);

/* Queues a job. SD_EBUSY when the queue is full, SD_ESHUTDOWN once
 * stopping; on error the done callback will not run. */
int sd_core_submit(sd_core *c, sd_job *job);

/* Stops taking jobs, finishes every queued one, persists the models,
 * checkpoints the WAL and joins the writer. Idempotent. */
void sd_core_stop(sd_core *c);
void sd_core_free(sd_core *c);

/* Installs a re-clustered model (from the maintenance thread): queues it
 * to the writer and waits until it is live. On success *summary is a new
 * JSON object describing the installed model. */
int sd_core_install(sd_core *c, struct sd_proposal *p, json_t **summary,
                    char *msg, size_t msglen);

/* Stores part seq of projection version (a slice of sd_lsa_save()'s blob)
 * in its own short transaction, ahead of the install that uses it. */
int sd_core_store_part(sd_core *c, int64_t version, int seq, const void *data,
                       size_t len);

/* ---- administrative writes (core_admin.c), run as a job's fn ---- */

/* PATCH of a cluster: label and/or description (NULL value = clear). */
typedef struct {
  int space;
  int64_t id;
  int set_label, set_description;
  const char *label, *description; /* borrowed until the job is done */
  int found;                        /* out: the cluster exists */
} sd_label_op;
int sd_core_op_label(sd_core *c, void *op /* sd_label_op */);

/* Erasure of every event, text, embedding and assignment of a user. */
typedef struct {
  const char *user_id;   /* borrowed until the job is done */
  int64_t events, texts; /* out: rows deleted */
  int64_t assignments;   /* out: experiment assignments deleted */
  int found;             /* out: the user existed */
} sd_erase_op;
int sd_core_op_erase(sd_core *c, void *op /* sd_erase_op */);

/* A drift baseline pinned by hand (core_drift.c, drift.h): source
 * SD_DRIFT_BASE_CURRENT or SD_DRIFT_BASE_NEXT of the live model's
 * reference, stored with the pin, audited, then installed. SD_ECONFLICT
 * with msg saying why (no model, no reference, too few points). */
typedef struct {
  int space, source;
  const char *pinned_by;    /* the API key's entry, or NULL; borrowed */
  sd_drift_base_info info;  /* out: the baseline now */
  char msg[192];            /* out: why it was refused */
} sd_drift_pin_op;
int sd_core_op_drift_pin(sd_core *c, void *op /* sd_drift_pin_op */);

/* Retention (core_retention.c): deletes the listed events or texts that
 * are still older than cutoff, then recomputes from what is left the
 * views and segment of every user they belonged to (a user left with
 * nothing is removed). With audit set, only records the run (the totals
 * in the out fields) in the audit table. */
typedef struct {
  int texts;              /* 0: ids are events.id; 1: texts.id */
  const int64_t *ids;     /* borrowed until the job is done */
  size_t n;
  int64_t cutoff;         /* epoch ms: rows with ts < cutoff go */
  int audit;              /* record the run instead (days, totals, ms) */
  long days;
  int64_t ms;
  int64_t events, texts_deleted, users_recomputed, users_removed; /* out,
                             added to (so one op can total a run) */
} sd_retain_op;
int sd_core_op_retain(sd_core *c, void *op /* sd_retain_op */);

/* The intents mix of each segment: n rows of (segment id, intent id,
 * texts), from the maintenance thread's periodic count; copied. Shown as
 * the segments' dominant intents from the next snapshot on. */
int sd_core_set_segment_intents(sd_core *c, const int64_t *rows, size_t n);

/* fn(ud) runs on the writer after each ingest group commit while the
 * segments webhook stream is on (it may have added outbox rows). */
void sd_core_on_outbox(sd_core *c, void (*fn)(void *ud), void *ud);

/* ---- the embedding queue (embed_queue.h) ---- */

/* fn(ud) runs on the writer after each commit that queued texts for an
 * embedding. Set once, before texts arrive. */
void sd_core_on_pending(sd_core *c, void (*fn)(void *ud), void *ud);

/* Marks queued texts as rejected by the embedder for good: they stay
 * stored, leave the queue's pending count and are retried only by a
 * re-embed. Run as a job's fn. */
typedef struct {
  const int64_t *seqs;   /* embed_queue.seq, borrowed until the job is done */
  size_t n;
  int attempts;
  const char *error;
} sd_embed_fail_op;
int sd_core_op_embed_failed(sd_core *c, void *op /* sd_embed_fail_op */);

/* Texts waiting for an embedding and texts that failed (any thread). */
void sd_core_embed_counts(const sd_core *c, int64_t *pending, int64_t *failed);
int sd_core_remote(const sd_core *c);

/* Lets the writer ask the maintenance thread for first models and for the
 * segments re-cluster that follows an encoder refit. */
void sd_core_set_maint(sd_core *c, struct sd_maint *m);

/* Runs fn(c, arg) on the writer in its own transaction (committed when fn
 * returns 0, rolled back otherwise) and waits for it; jobs of this kind
 * are not bounded by --queue-max. fn's result, or SD_ESHUTDOWN. */
int sd_core_run(sd_core *c, int (*fn)(sd_core *c, void *arg), void *arg,
                int quiet);

/* The writer's connection: only for a job's fn, which runs on the writer
 * inside its transaction. */
struct sd_store *sd_core_db(sd_core *c);

/* The drift windows (drift.h), owned by the core. */
struct sd_drift *sd_core_drift(sd_core *c);

/* Read-side accessors (any thread). */
const sd_encoder *sd_core_encoder(const sd_core *c);
const sd_config *sd_core_config(const sd_core *c);
int sd_core_queue_depth(sd_core *c);
int64_t sd_core_started_at(const sd_core *c);
int64_t sd_core_client_embedder(const sd_core *c);

#endif
