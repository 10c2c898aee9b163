/*
 * core.c -- the writer thread's lifecycle and the bounded ingest queue
 * (see core.h). The work itself is in core_ingest.c and core_model.c.
 */
#include "core_int.h"

#include "segmentd/drift.h"
#include "segmentd/err.h"
#include "segmentd/log.h"
#include "segmentd/lookup_cache.h"
#include "segmentd/metrics.h"
#include "segmentd/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GROUP_MAX_JOBS 256

/* A job's fn in its own transaction; a snapshot follows a commit. */
static int core_run_fn(sd_core *c, sd_job *job) {
  int rc = sd_store_exec(c->db, "BEGIN IMMEDIATE");
  if (rc == 0) rc = job->fn(c, job->fn_arg);
  if (rc == 0) rc = sd_store_commit(c->db);
  if (rc == 0 && c->lookups_stale) sd_lookup_cache_clear();
  c->lookups_stale = 0;
  if (rc < 0) {
    sd_store_exec(c->db, "ROLLBACK");
    return rc;
  }
  if (!job->quiet && core_publish(c) < 0)
    sd_log_error("publishing a snapshot failed");
  return 0;
}

/* Runs the picked jobs in order: consecutive ingest jobs as one group;
 * each install, projection part or fn job on its own. */
static void core_run(sd_core *c, sd_job **jobs, int n) {
  int start = 0;
  for (int i = 0; i <= n; i++) {
    if (i < n && !jobs[i]->install && !jobs[i]->part && !jobs[i]->fn) continue;
    if (i > start) core_group(c, jobs + start, i - start);
    if (i < n && jobs[i]->fn) {
      jobs[i]->rc = core_run_fn(c, jobs[i]);
      jobs[i]->done(jobs[i], jobs[i]->ud);
    } else if (i < n && jobs[i]->part) {
      jobs[i]->rc = core_store_part(c, jobs[i]->part);
      jobs[i]->done(jobs[i], jobs[i]->ud);
    } else if (i < n) { /* answered now on failure, else when re-assigned */
      jobs[i]->rc = core_install(c, jobs[i]->install, jobs[i]);
      if (jobs[i]->rc < 0) jobs[i]->done(jobs[i], jobs[i]->ud);
    }
    start = i + 1;
  }
}

static void *core_main(void *arg) {
  sd_core *c = arg;
  sd_job *jobs[GROUP_MAX_JOBS];
  for (;;) {
    pthread_mutex_lock(&c->mu);
    while (!c->head && !c->stopping && !c->reassign.active &&
           !c->publish_pending)
      pthread_cond_wait(&c->cv, &c->mu);
    int publish = c->publish_pending;
    c->publish_pending = 0;
    if (!c->head && c->stopping) {
      pthread_mutex_unlock(&c->mu);
      break; /* an unfinished re-assignment resumes at the next start */
    }
    int n = 0;
    while (c->head && n < GROUP_MAX_JOBS) {
      jobs[n++] = c->head;
      c->head = c->head->next;
      c->depth--;
    }
    if (!c->head) c->tail = NULL;
    pthread_mutex_unlock(&c->mu);
    if (n) core_run(c, jobs, n);
    if (c->reassign.active) core_reassign_step(c); /* one chunk per turn */
    if (publish && core_publish(c) < 0) sd_log_error("publishing failed");
  }
  core_reassign_abandon(c);
  return NULL;
}

/* ---- installing re-clustered models ---- */

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
} install_wait;

static void install_done(sd_job *job, void *ud) {
  install_wait *w = ud;
  (void)job;
  pthread_mutex_lock(&w->mu);
  w->done = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

/* Queues a writer job ahead of the ingest bound and waits until it is
 * answered. */
static int core_submit_wait(sd_core *c, sd_job *job) {
  install_wait w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
  job->done = install_done;
  job->ud = &w; /* cppcheck-suppress autoVariables ; w outlives the wait below */
  int rc = 0;
  pthread_mutex_lock(&c->mu);
  if (c->stopping || !c->running) {
    rc = SD_ESHUTDOWN;
  } else {
    if (c->tail) c->tail->next = job;
    else c->head = job;
    c->tail = job;
    c->depth++; /* counted like any job (taken off by the writer) */
    pthread_cond_signal(&c->cv);
  }
  pthread_mutex_unlock(&c->mu);
  if (rc < 0) return rc;
  pthread_mutex_lock(&w.mu);
  while (!w.done) pthread_cond_wait(&w.cv, &w.mu);
  pthread_mutex_unlock(&w.mu);
  return job->rc;
}

int sd_core_install(sd_core *c, struct sd_proposal *p, json_t **summary,
                    char *msg, size_t msglen) {
  sd_job job;
  memset(&job, 0, sizeof(job));
  job.install = p;
  int rc = core_submit_wait(c, &job);
  *summary = rc == 0 ? job.ud2 : NULL;
  if (rc < 0 && job.ud2) { /* installed, but stopping before all moved */
    json_decref(job.ud2);
    snprintf(msg, msglen, "the model is live; moving entities onto it "
             "continues at the next start");
  } else if (rc < 0) {
    snprintf(msg, msglen, "installing the model failed: %s", sd_err_message(rc));
  }
  return rc;
}

int sd_core_run(sd_core *c, int (*fn)(sd_core *c, void *arg), void *arg,
                int quiet) {
  sd_job job;
  memset(&job, 0, sizeof(job));
  job.fn = fn;
  job.fn_arg = arg;
  job.quiet = quiet;
  return core_submit_wait(c, &job);
}

int sd_core_store_part(sd_core *c, int64_t version, int seq, const void *data,
                       size_t len) {
  sd_job job;
  memset(&job, 0, sizeof(job));
  core_part part = {version, seq, data, len};
  job.part = &part;
  return core_submit_wait(c, &job);
}

int sd_core_set_segment_intents(sd_core *c, const int64_t *rows, size_t n) {
  int64_t *copy = malloc(sizeof(int64_t) * 3 * (n ? n : 1));
  if (!copy) return SD_ENOMEM;
  if (n) memcpy(copy, rows, sizeof(int64_t) * 3 * n); /* rows may be NULL when n is 0 */
  pthread_mutex_lock(&c->mix_mu);
  free(c->mix);
  c->mix = copy;
  c->n_mix = n;
  pthread_mutex_unlock(&c->mix_mu);
  pthread_mutex_lock(&c->mu); /* the writer publishes it */
  c->publish_pending = 1;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
  return 0;
}

void sd_core_set_maint(sd_core *c, struct sd_maint *m) {
  atomic_store(&c->maint, m);
}

int64_t sd_core_client_embedder(const sd_core *c) {
  return c->client_embedder_id;
}

int sd_core_submit(sd_core *c, sd_job *job) {
  int rc = 0;
  job->next = NULL;
  pthread_mutex_lock(&c->mu);
  if (c->stopping || !c->running) {
    rc = SD_ESHUTDOWN;
  } else if (c->depth >= c->cfg->queue_max) {
    rc = SD_EBUSY;
    sd_metrics_queue_full();
  } else {
    if (c->tail) c->tail->next = job;
    else c->head = job;
    c->tail = job;
    c->depth++;
    pthread_cond_signal(&c->cv);
  }
  pthread_mutex_unlock(&c->mu);
  return rc;
}

int sd_core_queue_depth(sd_core *c) {
  pthread_mutex_lock(&c->mu);
  int d = c->depth;
  pthread_mutex_unlock(&c->mu);
  return d;
}

static int core_open(sd_core *c, char *msg, size_t msglen) {
  sd_store_set_mmap((int64_t)c->cfg->sqlite_mmap_mb << 20);
  int rc = sd_store_open(c->cfg->db, &c->db, msg, msglen);
  if (rc < 0) return rc;
  if ((rc = sd_checkpointer_start(c->db, c->cfg->db,
                                   (int64_t)c->cfg->sqlite_wal_mb << 20, &c->ckpt)) < 0) {
    snprintf(msg, msglen, "cannot start the WAL checkpointer");
    return rc;
  }
  if ((rc = sd_store_readers_init(c->cfg->db)) < 0) return rc;
  rc = sd_encoder_new((int)c->cfg->dim, SD_ENCODER_BITS, 0x5e9d, &c->enc);
  if (rc < 0) {
    snprintf(msg, msglen, "cannot create the encoder");
    return rc;
  }
  rc = sd_store_embedder_id(c->db, "builtin", SD_ENCODER_VERSION,
                            (int)c->cfg->dim, SD_ENCODER_VERSION,
                            sd_now_ms(), &c->embedder_id);
  if (rc == 0)
    rc = sd_store_embedder_id(c->db, "client", "client", (int)c->cfg->dim,
                              "1", sd_now_ms(), &c->client_embedder_id);
  if (rc < 0) snprintf(msg, msglen, "cannot register the embedder");
  return rc;
}

int sd_core_start(const sd_config *cfg, sd_core **out, char *msg,
                  size_t msglen) {
  *out = NULL;
  sd_core *c = calloc(1, sizeof(*c));
  if (!c) return SD_ENOMEM;
  c->cfg = cfg;
  c->started_at = sd_now_ms();
  c->vc = sd_views_conf_of(cfg, c->beh_idf);
  core_beh_idf(c);
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  pthread_mutex_init(&c->mix_mu, NULL);
  double hl = cfg->half_life_days * 86400e3;
  int rc = sd_space_init(&c->spaces[SD_SPACE_INTENTS], SD_SPACE_INTENTS,
                         (int)cfg->dim, hl);
  if (rc == 0)
    rc = sd_space_init(&c->spaces[SD_SPACE_SEGMENTS], SD_SPACE_SEGMENTS,
                       sd_views_width(&c->vc), hl);
  if (rc == 0 && !(c->scratch = malloc(sizeof(float) * (size_t)cfg->dim)))
    rc = SD_ENOMEM;
  const int dims[2] = {(int)cfg->dim, sd_views_width(&c->vc)};
  if (rc == 0 && !(c->drift = sd_drift_new(cfg, dims))) rc = SD_ENOMEM;
  if (rc == 0) rc = core_open(c, msg, msglen);
  if (rc == 0) rc = core_load(c, msg, msglen);
  if (rc == 0) rc = core_drift_init(c);
  if (rc == 0 && (rc = core_sync_start(c)) < 0)
    snprintf(msg, msglen, "queueing the segments snapshot failed");
  if (rc == 0) rc = core_publish(c);
  /* the start's reads (models, drift references, counts) filled the
   * writer's page cache with pages ingest may never touch: free them */
  if (rc == 0) sqlite3_db_release_memory(sd_store_db(c->db));
  if (rc == 0 && pthread_create(&c->thread, NULL, core_main, c) != 0) {
    snprintf(msg, msglen, "cannot start the writer thread");
    rc = SD_EINTERNAL;
  }
  if (rc < 0) {
    sd_core_free(c);
    return rc;
  }
  c->running = 1;
  c->last_save = sd_now_ms();
  *out = c;
  return 0;
}

void sd_core_stop(sd_core *c) {
  if (!c) return;
  pthread_mutex_lock(&c->mu);
  int was_running = c->running;
  c->stopping = 1;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  if (!was_running) return;
  pthread_join(c->thread, NULL);
  pthread_mutex_lock(&c->mu);
  c->running = 0;
  pthread_mutex_unlock(&c->mu);
  if (core_save_models(c) < 0) sd_log_error("saving models at stop failed");
  sd_checkpointer_stop(c->ckpt, c->db); /* the final checkpoint is ours */
  c->ckpt = NULL;
  if (sqlite3_wal_checkpoint_v2(sd_store_db(c->db), NULL,
                                SQLITE_CHECKPOINT_TRUNCATE, NULL,
                                NULL) != SQLITE_OK)
    sd_log_warn("WAL checkpoint at stop: %s",
                sqlite3_errmsg(sd_store_db(c->db)));
}

void sd_core_free(sd_core *c) {
  if (!c) return;
  sd_core_stop(c);
  sd_snapshot_clear();
  sd_store_close_readers();
  sd_checkpointer_stop(c->ckpt, c->db); /* a start that failed half-way */
  sd_store_close(c->db);
  sd_encoder_free(c->enc);
  sd_drift_free(c->drift);
  sd_proj_unref(c->raw_proj);
  sd_proj_unref(c->proj);
  free(c->scratch);
  for (int i = 0; i < SD_SPACES; i++) sd_space_free(&c->spaces[i]);
  for (int i = 0; i < SD_BEH_DIM; i++) free(c->beh_names[i]);
  for (int i = 0; i < SD_CTX_DIM; i++) free(c->ctx_names[i]);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mix_mu);
  free(c->mix);
  free(c);
}

const sd_encoder *sd_core_encoder(const sd_core *c) { return c->enc; }
struct sd_store *sd_core_db(sd_core *c) { return c->db; }
struct sd_drift *sd_core_drift(sd_core *c) { return c->drift; }
const sd_config *sd_core_config(const sd_core *c) { return c->cfg; }
int64_t sd_core_started_at(const sd_core *c) { return c->started_at; }
