/*
 * core_install.c -- making a re-clustered model live, on the writer
 * thread, in one transaction: the refitted encoder projection (texts
 * re-embedded, users' text views recomputed), every entity of the space
 * re-assigned to the new centroids, the model row, cluster rows (new ids
 * born, lost ids retired) and lineage events. Memory is switched only
 * after COMMIT, then a snapshot is published: readers move from the old
 * model to the new one atomically.
 *
 * Entities are read in rowid-ordered chunks so memory stays bounded; the
 * writer is busy for the duration (about 20 us per entity), which is the
 * only part of a re-cluster that holds ingest back.
 */
#include "core_int.h"

#include "segmentd/cluster_kmeans.h"
#include "segmentd/err.h"
#include "segmentd/lookup_cache.h"
#include "segmentd/log.h"
#include "segmentd/maint.h"
#include "segmentd/recluster.h"
#include "segmentd/timeutil.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a new projection: stored, and users' text views recomputed ---- */

/* The projection's row; its data went ahead in parts (core_store_part). */
static int store_projection(sd_core *c, sd_proj *proj, size_t fitted_on) {
  int rc = core_projection_embedder(c, proj->version, &proj->embedder_id);
  sqlite3_stmt *st = rc == 0 ? sd_store_stmt(
      c->db, "INSERT OR REPLACE INTO projections(version,dim,fitted_on,"
             "created_at,data) VALUES(?1,?2,?3,?4,x'')") : NULL;
  if (rc == 0 && !st) rc = SD_EDB;
  if (rc == 0) {
    sqlite3_bind_int64(st, 1, proj->version);
    sqlite3_bind_int(st, 2, c->vc.dim);
    sqlite3_bind_int64(st, 3, (int64_t)fitted_on);
    sqlite3_bind_int64(st, 4, sd_now_ms());
    if (sqlite3_step(st) != SQLITE_DONE) rc = SD_EDB;
  }
  return rc;
}

int core_store_part(sd_core *c, const core_part *part) {
  int rc = sd_store_exec(c->db, "BEGIN IMMEDIATE");
  sqlite3_stmt *st = rc == 0 ? sd_store_stmt(
      c->db, "INSERT OR REPLACE INTO projection_parts(version,seq,data) "
             "VALUES(?1,?2,?3)") : NULL;
  if (rc == 0 && !st) rc = SD_EDB;
  if (rc == 0) {
    sqlite3_bind_int64(st, 1, part->version);
    sqlite3_bind_int(st, 2, part->seq);
    sqlite3_bind_blob64(st, 3, part->data, part->len, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) rc = SD_EDB;
  }
  if (rc == 0) rc = sd_store_commit(c->db);
  if (rc < 0) sd_store_exec(c->db, "ROLLBACK");
  return rc;
}

/* ---- the model, its clusters and lineage ---- */

static int write_model_row(sd_core *c, const sd_proposal *p, int64_t version,
                           int64_t now) {
  const char *name = c->spaces[p->space].name;
  char *quality = json_dumps(p->quality, JSON_COMPACT);
  sqlite3_stmt *st = sd_store_stmt(
      c->db, "INSERT INTO models(space,version,algorithm,k,dim,ids,centroids,"
             "weights,inertia,trained_at,saved_at,quality,sample_size) "
             "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?10,?11,?12)");
  if (!st || !quality) {
    free(quality);
    return st ? SD_ENOMEM : SD_EDB;
  }
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, version);
  sqlite3_bind_text(st, 3, sd_algo_name(p->algo), -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 4, p->k);
  sqlite3_bind_int(st, 5, p->dim);
  sqlite3_bind_blob(st, 6, p->ids, (int)(sizeof(int32_t) * (size_t)p->k), SQLITE_STATIC);
  sqlite3_bind_blob(st, 7, p->centroids,
                    (int)(sizeof(float) * (size_t)p->k * p->dim), SQLITE_STATIC);
  sqlite3_bind_blob(st, 8, p->weights, (int)(sizeof(float) * (size_t)p->k),
                    SQLITE_STATIC);
  sqlite3_bind_double(st, 9, p->inertia);
  sqlite3_bind_int64(st, 10, now);
  sqlite3_bind_text(st, 11, quality, -1, free);
  sqlite3_bind_int64(st, 12, (int64_t)p->sample_size);
  return sqlite3_step(st) == SQLITE_DONE ? 0 : SD_EDB;
}

static int write_lineage(sd_core *c, const sd_proposal *p, int64_t version,
                         int64_t now) {
  const char *name = c->spaces[p->space].name;
  for (int i = 0; i < p->n_events; i++) {
    const sd_lineage_event *e = &p->events[i];
    json_t *o = json_pack("{s:O,s:O}", "from", e->from, "to", e->to);
    char *js = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    sqlite3_stmt *st = sd_store_stmt(
        c->db, "INSERT INTO lineage(space,version,kind,clusters,created_at,"
               "cause_alert) VALUES(?1,?2,?3,?4,?5,?6)");
    if (!st || !js) return free(js), st ? SD_ENOMEM : SD_EDB;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    sqlite3_bind_text(st, 3, e->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, js, -1, free);
    sqlite3_bind_int64(st, 5, now);
    if (p->cause_alert > 0) sqlite3_bind_int64(st, 6, p->cause_alert);
    if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
    if (strcmp(e->kind, "retired")) continue;
    st = sd_store_stmt(c->db, "UPDATE clusters SET retired_at=?3 WHERE "
                              "space=?1 AND id=?2");
    if (!st) return SD_EDB;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, json_integer_value(json_array_get(e->from, 0)));
    sqlite3_bind_int64(st, 3, now);
    if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
  }
  return 0;
}

static int write_clusters(sd_core *c, const sd_proposal *p, int64_t now) {
  for (int i = 0; i < p->k; i++) {
    sqlite3_stmt *st = sd_store_stmt(
        c->db, "INSERT INTO clusters(space,id,created_at) VALUES(?1,?2,?3) "
               "ON CONFLICT(space,id) DO UPDATE SET retired_at=NULL");
    if (!st) return SD_EDB;
    sqlite3_bind_text(st, 1, c->spaces[p->space].name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, p->ids[i]);
    sqlite3_bind_int64(st, 3, now);
    if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
  }
  return 0;
}

/* ---- the install ---- */

static int install_tx(sd_core *c, sd_proposal *p, int64_t version,
                      int64_t now) {
  int rc = sd_store_exec(c->db, "BEGIN IMMEDIATE");
  if (rc < 0) return rc;
  if (p->proj) rc = store_projection(c, p->proj, p->sample_size);
  if (rc == 0) rc = write_model_row(c, p, version, now);
  if (rc == 0) rc = write_clusters(c, p, now);
  if (rc == 0) rc = write_lineage(c, p, version, now);
  if (rc == 0) rc = core_drift_store(c, p, version);
  if (rc == 0) rc = core_reassign_start(c, p->space, version, p->proj != NULL);
  if (rc == 0) rc = sd_store_commit(c->db);
  if (rc == 0) sd_lookup_cache_clear();
  if (rc < 0) {
    sd_log_error("installing a %s model failed: %s", c->spaces[p->space].name,
                 sqlite3_errmsg(sd_store_db(c->db)));
    sd_store_exec(c->db, "ROLLBACK");
    memset(&c->reassign, 0, sizeof(c->reassign));
  }
  return rc;
}

static json_t *install_summary(const sd_space *sp, const sd_proposal *p,
                               int64_t ms) {
  int counts[4] = {0};
  static const char *const kinds[4] = {"born", "split", "merged", "retired"};
  for (int i = 0; i < p->n_events; i++)
    for (int j = 0; j < 4; j++) counts[j] += !strcmp(p->events[i].kind, kinds[j]);
  return json_pack("{s:s,s:I,s:s,s:i,s:I,s:I,s:O,s:{s:i,s:i,s:i,s:i},s:I,s:I,s:b}",
                   "space", sp->name, "model_version", (json_int_t)sp->version,
                   "algorithm", sd_algo_name(p->algo), "k", p->k, "sample_size",
                   (json_int_t)p->sample_size, "noise", (json_int_t)p->noise,
                   "quality", p->quality, "lineage", "born", counts[0], "split",
                   counts[1], "merged", counts[2], "retired", counts[3],
                   "fit_ms", (json_int_t)p->duration_ms, "install_ms",
                   (json_int_t)ms, "encoder_refitted", p->proj != NULL);
}

int core_install(sd_core *c, sd_proposal *p, sd_job *job) {
  sd_space *sp = &c->spaces[p->space];
  int64_t t0 = sd_mono_ns(), now = sd_now_ms(), version = sp->version + 1;
  if (p->dim != sp->dim) return SD_EINVAL;
  core_reassign_abandon(c); /* a previous re-assignment is superseded */
  int rc = install_tx(c, p, version, now);
  if (rc < 0) return rc;
  if (p->proj) {
    sd_proj_unref(c->proj);
    c->proj = sd_proj_ref(p->proj);
  }
  rc = sd_space_set_model(sp, p->k, p->ids, p->centroids, p->weights, version,
                          now, p->inertia, sd_algo_name(p->algo));
  char *q = json_dumps(p->quality, JSON_COMPACT);
  if (rc == 0) rc = sd_space_set_quality(sp, q);
  free(q);
  if (rc == 0) rc = core_load_cluster_rows(c, sp);
  if (rc == 0) rc = core_drift_install(c, p);
  if (rc == 0) rc = core_rebuild_members(c, p->space, 0);
  sp->points_at_train = sp->points;
  if (rc == 0) rc = core_publish(c);
  if (rc < 0) return rc; /* the model is stored: it loads at the next start */
  job->ud2 = install_summary(sp, p, (sd_mono_ns() - t0) / 1000000);
  c->reassign.waiter = job;
  return 0;
}
