/*
 * maint.c -- the maintenance thread and its job table (see maint.h).
 */
#include "segmentd/maint.h"

#include "segmentd/err.h"
#include "segmentd/log.h"
#include "segmentd/metrics.h"
#include "segmentd/snapshot.h"
#include "segmentd/store.h"
#include "segmentd/timeutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAINT_JOBS 64
#define MAINT_WAITERS 8
#define MAINT_TICK_MS 5000
#define PART_BYTES (1u << 20)

typedef enum { J_FREE, J_QUEUED, J_RUNNING, J_DONE, J_FAILED } jstate;

typedef struct {
  sd_maint_done fn;
  void *ud;
} waiter;

typedef struct {
  int64_t id;
  jstate state;
  sd_recluster_req req;
  int rc;
  char msg[256];
  json_t *summary;
  int64_t created_at, started_at, finished_at;
  waiter waiters[MAINT_WAITERS];
  int n_waiters;
} mjob;

struct sd_maint {
  const sd_config *cfg;
  sd_core *core;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  mjob jobs[MAINT_JOBS]; /* slot = id % MAINT_JOBS */
  int64_t next_id;
  int stopping, running;
  pthread_t th;
  int64_t mix_at; /* when the segment x intent mix was last counted */
  void (*tick)(void *ud, int64_t now); /* e.g. the drift checks */
  void *tick_ud;
};

static mjob *job_find(sd_maint *m, int64_t id) {
  mjob *j = &m->jobs[id % MAINT_JOBS];
  return j->state != J_FREE && j->id == id ? j : NULL;
}

static mjob *job_next_queued(sd_maint *m) {
  mjob *best = NULL;
  for (int i = 0; i < MAINT_JOBS; i++)
    if (m->jobs[i].state == J_QUEUED && (!best || m->jobs[i].id < best->id))
      best = &m->jobs[i];
  return best;
}

static int req_equal(const sd_recluster_req *a, const sd_recluster_req *b) {
  return a->space == b->space && a->algo == b->algo && a->k == b->k &&
         a->refit_encoder == b->refit_encoder && a->seed == b->seed &&
         a->cause_alert == b->cause_alert;
}

int sd_maint_submit(sd_maint *m, const sd_recluster_req *req,
                    sd_maint_done done, void *ud, int64_t *job_id) {
  int rc = 0;
  pthread_mutex_lock(&m->mu);
  mjob *j = NULL;
  for (int i = 0; i < MAINT_JOBS && !j; i++) /* join a queued twin */
    if (m->jobs[i].state == J_QUEUED && req_equal(&m->jobs[i].req, req))
      j = &m->jobs[i];
  if (!j) {
    j = &m->jobs[m->next_id % MAINT_JOBS];
    if (m->stopping) rc = SD_ESHUTDOWN;
    else if (j->state == J_QUEUED || j->state == J_RUNNING) rc = SD_EBUSY;
    else {
      json_decref(j->summary);
      memset(j, 0, sizeof(*j));
      j->id = m->next_id++;
      j->req = *req;
      j->state = J_QUEUED;
      j->created_at = sd_now_ms();
    }
  }
  if (rc == 0 && done) {
    if (j->n_waiters == MAINT_WAITERS) rc = SD_EBUSY;
    else j->waiters[j->n_waiters++] = (waiter){done, ud};
  }
  if (rc == 0) {
    *job_id = j->id;
    pthread_cond_signal(&m->cv);
  }
  pthread_mutex_unlock(&m->mu);
  return rc;
}

static json_t *job_time(int64_t ms) {
  char buf[48];
  sd_time_format(ms, buf);
  return json_string(buf);
}

json_t *sd_maint_job_json(sd_maint *m, int64_t job_id) {
  static const char *const names[] = {"free", "queued", "running", "done",
                                      "failed"};
  pthread_mutex_lock(&m->mu);
  mjob *j = job_find(m, job_id);
  json_t *o = NULL;
  if (j) {
    o = json_pack("{s:I,s:s,s:s,s:s,s:o}", "job_id", (json_int_t)j->id,
                  "space", j->req.space == SD_SPACE_INTENTS ? "intents" : "segments",
                  "algorithm", sd_algo_name(j->req.algo), "state",
                  names[j->state], "created_at", job_time(j->created_at));
    if (o && j->started_at)
      json_object_set_new(o, "started_at", job_time(j->started_at));
    if (o && j->finished_at)
      json_object_set_new(o, "finished_at", job_time(j->finished_at));
    if (o && j->state == J_FAILED)
      json_object_set_new(o, "error", json_pack("{s:s,s:s}", "code",
                                                sd_err_code(j->rc), "message",
                                                j->msg));
    if (o && j->summary) json_object_set(o, "model", j->summary);
  }
  pthread_mutex_unlock(&m->mu);
  return o;
}

/* ---- running jobs ---- */

/* Hands a refitted projection to the writer in 1 MiB parts, each its own
 * short transaction, so the install itself stays small. */
static int store_projection(sd_maint *m, const sd_proj *proj, char *msg,
                            size_t msglen) {
  void *blob = NULL;
  size_t len = 0;
  int rc = sd_lsa_save(proj->lsa, &blob, &len);
  for (size_t off = 0, seq = 0; rc == 0 && off < len; off += PART_BYTES, seq++)
    rc = sd_core_store_part(m->core, proj->version, (int)seq,
                            (const char *)blob + off,
                            len - off < PART_BYTES ? len - off : PART_BYTES);
  free(blob);
  if (rc < 0) snprintf(msg, msglen, "storing the refitted projection failed: %s",
                       sd_err_message(rc));
  return rc;
}

static int run_job(sd_maint *m, const sd_recluster_req *req, json_t **summary,
                   char *msg, size_t msglen) {
  sd_snapshot *snap = sd_snapshot_acquire();
  if (!snap) return SD_ENOTREADY;
  const sd_snap_space *sp = &snap->spaces[req->space];
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)(sp->k ? sp->k : 1));
  if (!ids) {
    sd_snapshot_release(snap);
    return SD_ENOMEM;
  }
  for (int i = 0; i < sp->k; i++) ids[i] = sp->clusters[i].id;
  sd_live_model live = {sp->has_model, sp->k, sp->version, ids, sp->next_id,
                        snap->proj, sd_core_client_embedder(m->core),
                        snap->beh_idf};
  sd_proposal prop;
  int rc = sd_recluster_run(m->cfg, sd_core_encoder(m->core), req, &live, &prop,
                            msg, msglen);
  sd_snapshot_release(snap);
  free(ids);
  pthread_mutex_lock(&m->mu);
  int stopping = m->stopping;
  pthread_mutex_unlock(&m->mu);
  if (rc == 0 && stopping) rc = SD_ESHUTDOWN;
  if (rc == 0 && prop.proj) rc = store_projection(m, prop.proj, msg, msglen);
  if (rc == 0) rc = sd_core_install(m->core, &prop, summary, msg, msglen);
  if (rc == 0) {
    sd_log_info("re-clustered %s with %s: model v%lld, k=%d, %zu sampled, "
                "%.0f%% of ids kept, %lld ms",
                req->space == SD_SPACE_INTENTS ? "intents" : "segments",
                sd_algo_name(req->algo),
                (long long)json_integer_value(json_object_get(*summary, "model_version")),
                prop.k, prop.sample_size, 100 * prop.kept_share,
                (long long)prop.duration_ms);
  }
  sd_proposal_free(&prop);
  return rc;
}

static void finish_job(sd_maint *m, mjob *j, int rc, json_t *summary) {
  waiter w[MAINT_WAITERS];
  pthread_mutex_lock(&m->mu);
  j->rc = rc;
  j->state = rc == 0 ? J_DONE : J_FAILED;
  j->finished_at = sd_now_ms();
  j->summary = summary;
  int n = j->n_waiters;
  memcpy(w, j->waiters, sizeof(w));
  j->n_waiters = 0;
  int64_t id = j->id;
  pthread_mutex_unlock(&m->mu);
  for (int i = 0; i < n; i++) w[i].fn(id, rc, summary, j->msg, w[i].ud);
}

/* Is a job for this space queued or running? */
static int space_busy(sd_maint *m, int space) {
  int busy = 0;
  pthread_mutex_lock(&m->mu);
  for (int i = 0; i < MAINT_JOBS; i++)
    busy |= (m->jobs[i].state == J_QUEUED || m->jobs[i].state == J_RUNNING) &&
            m->jobs[i].req.space == space;
  pthread_mutex_unlock(&m->mu);
  return busy;
}

/* Scheduled work: a first model still missing (e.g. after a failed try and
 * a restart), and re-clusters of models older than the interval whose
 * space grew by the configured share since they were trained. */
#define MIX_EVERY_MS 30000

/* Counts, per segment, the intents of its members' texts (an index-only
 * join on texts(user_id, cluster)) and hands the table to the core. */
static void count_mix(sd_maint *m) {
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(rd,
      "SELECT u.cluster,t.cluster,count(*) FROM users u JOIN texts t ON "
      "t.user_id=u.user_id WHERE u.cluster IS NOT NULL AND t.cluster IS NOT "
      "NULL GROUP BY 1,2") : NULL;
  int64_t *rows = NULL;
  size_t n = 0, cap = 0;
  int ok = st != NULL;
  while (ok && sqlite3_step(st) == SQLITE_ROW) {
    if (n == cap) {
      int64_t *nr = realloc(rows, sizeof(int64_t) * 3 * (cap = cap ? cap * 2 : 256));
      if (!nr) { ok = 0; break; }
      rows = nr;
    }
    for (int i = 0; i < 3; i++) rows[3 * n + (size_t)i] = sqlite3_column_int64(st, i);
    n++;
  }
  if (st) sqlite3_reset(st);
  if (ok) sd_core_set_segment_intents(m->core, rows, n);
  free(rows);
}

static void schedule(sd_maint *m) {
  pthread_mutex_lock(&m->mu);
  void (*tick)(void *, int64_t) = m->tick;
  void *tick_ud = m->tick_ud;
  pthread_mutex_unlock(&m->mu);
  if (tick) tick(tick_ud, sd_now_ms());
  sd_snapshot *snap = sd_snapshot_acquire();
  if (!snap) return;
  int64_t now = sd_now_ms(), id;
  if (snap->spaces[SD_SPACE_SEGMENTS].has_model && now - m->mix_at >= MIX_EVERY_MS) {
    count_mix(m);
    m->mix_at = now;
  }
  for (int s = 0; s < SD_SPACES; s++) {
    const sd_snap_space *sp = &snap->spaces[s];
    int first = !sp->has_model && sp->points >= m->cfg->train_min;
    if (space_busy(m, s) ||
        (!first && (!sp->has_model || m->cfg->recluster_interval <= 0 ||
                    now - sp->trained_at < m->cfg->recluster_interval * 1000 ||
                    (double)sp->points <
                        (1.0 + m->cfg->recluster_growth) * (double)sp->points_at_train)))
      continue;
    sd_recluster_req req = {s, SD_ALGO_KMEANS, (int)m->cfg->k,
                            s == SD_SPACE_INTENTS, 0x5e9d, 0};
    if (sd_maint_submit(m, &req, NULL, NULL, &id) == 0)
      sd_log_info("scheduled re-cluster of %s (job %lld)", sp->name, (long long)id);
  }
  sd_snapshot_release(snap);
}

static void *maint_main(void *arg) {
  sd_maint *m = arg;
  sd_store_reader_for_scans();
  pthread_mutex_lock(&m->mu);
  while (!m->stopping) {
    mjob *j = job_next_queued(m);
    if (!j) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += MAINT_TICK_MS / 1000;
      if (pthread_cond_timedwait(&m->cv, &m->mu, &ts) == ETIMEDOUT) {
        pthread_mutex_unlock(&m->mu);
        schedule(m);
        pthread_mutex_lock(&m->mu);
      }
      continue;
    }
    j->state = J_RUNNING;
    j->started_at = sd_now_ms();
    sd_recluster_req req = j->req;
    pthread_mutex_unlock(&m->mu);
    json_t *summary = NULL;
    int64_t t0 = sd_mono_ns();
    int rc = run_job(m, &req, &summary, j->msg, sizeof(j->msg));
    sd_metrics_recluster(req.space, rc == 0, (double)(sd_mono_ns() - t0) / 1e9);
    if (rc < 0 && !j->msg[0]) /* e.g. cancelled by a stop: say so */
      snprintf(j->msg, sizeof(j->msg), "%s", sd_err_message(rc));
    if (rc < 0) sd_log_warn("re-cluster job %lld failed: %s", (long long)j->id, j->msg);
    finish_job(m, j, rc, summary);
    m->mix_at = 0; /* cluster ids may have changed: count the mix again */
    pthread_mutex_lock(&m->mu);
  }
  pthread_mutex_unlock(&m->mu);
  return NULL;
}

int sd_maint_start(const sd_config *cfg, sd_core *core, sd_maint **out) {
  sd_maint *m = calloc(1, sizeof(*m));
  if (!m) return SD_ENOMEM;
  m->cfg = cfg;
  m->core = core;
  m->next_id = 1;
  pthread_mutex_init(&m->mu, NULL);
  pthread_cond_init(&m->cv, NULL);
  if (pthread_create(&m->th, NULL, maint_main, m) != 0) {
    sd_maint_free(m);
    return SD_EINTERNAL;
  }
  m->running = 1;
  *out = m;
  return 0;
}

/* Stops after the running job; queued jobs fail with SD_ESHUTDOWN. */
void sd_maint_stop(sd_maint *m) {
  if (!m) return;
  pthread_mutex_lock(&m->mu);
  m->stopping = 1;
  pthread_cond_broadcast(&m->cv);
  pthread_mutex_unlock(&m->mu);
  if (m->running) pthread_join(m->th, NULL);
  m->running = 0;
  for (int i = 0; i < MAINT_JOBS; i++)
    if (m->jobs[i].state == J_QUEUED) {
      snprintf(m->jobs[i].msg, sizeof(m->jobs[i].msg), "shutting down");
      finish_job(m, &m->jobs[i], SD_ESHUTDOWN, NULL);
    }
}

void sd_maint_free(sd_maint *m) {
  if (!m) return;
  sd_maint_stop(m);
  for (int i = 0; i < MAINT_JOBS; i++) json_decref(m->jobs[i].summary);
  pthread_mutex_destroy(&m->mu);
  pthread_cond_destroy(&m->cv);
  free(m);
}

void sd_maint_set_tick(sd_maint *m, void (*fn)(void *ud, int64_t now),
                       void *ud) {
  pthread_mutex_lock(&m->mu);
  m->tick = fn;
  m->tick_ud = ud;
  pthread_mutex_unlock(&m->mu);
}
