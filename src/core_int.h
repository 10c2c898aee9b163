/*
 * core_int.h -- internals shared by the core writer's files: core.c
 * (thread, queue, lifecycle), core_ingest.c (group commit of batches),
 * core_model.c (training, persisting and reloading models).
 * Everything here runs on the writer thread unless noted.
 */
#ifndef SEGMENTD_CORE_INT_H
#define SEGMENTD_CORE_INT_H

#include <pthread.h>

#include "segmentd/core.h"
#include "segmentd/space.h"
#include "segmentd/store.h"
#include "segmentd/views.h"

struct sd_core {
  const sd_config *cfg;
  sd_store *db;
  sd_encoder *enc;
  int64_t embedder_id, client_embedder_id;
  sd_views_conf vc;
  sd_space spaces[SD_SPACES];
  char *beh_names[SD_BEH_DIM]; /* first event type seen per bucket */
  int64_t started_at, last_save;
  /* queue: guarded by mu */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  sd_job *head, *tail;
  int depth, stopping, running;
  pthread_t thread;
};

/* core_ingest.c: stores a group of jobs in one transaction, then applies
 * the in-memory updates; sets each job's rc and counts. */
void core_group(sd_core *c, sd_job **jobs, int n);

/* core_model.c */
int core_load(sd_core *c, char *msg, size_t msglen);
int core_maybe_train(sd_core *c, int space);
int core_save_models(sd_core *c);
int core_publish(sd_core *c);

/* Reads a float32 BLOB of exactly n floats into out; 0 or -1. */
int core_blob_floats(sqlite3_stmt *st, int col, float *out, int n);

#endif
