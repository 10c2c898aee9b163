/*
 * core_drift.c -- the writer's side of drift (drift.h): a model's
 * reference is stored in the transaction that installs the model (table
 * drift_reference) and handed to the drift windows once it is live, so a
 * restart checks against the same reference; every new assignment of an
 * ingest group is observed after its commit.
 */
#include "core_int.h"

#include "segmentd/drift.h"
#include "segmentd/err.h"
#include "segmentd/log.h"
#include "segmentd/recluster.h"
#include "segmentd/timeutil.h"

#include <stdlib.h>
#include <string.h>

static const char SQL_REF_PUT[] =
    "INSERT INTO drift_reference(space,version,n,x,label,sim,counts) "
    "VALUES(?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(space,version) DO UPDATE SET "
    "n=excluded.n,x=excluded.x,label=excluded.label,sim=excluded.sim,"
    "counts=excluded.counts";

/* A re-cluster asked for by an alert leaves a lineage row naming it. */
static int store_cause(sd_core *c, const sd_proposal *p, int64_t version) {
  sqlite3_stmt *st = sd_store_stmt(
      c->db, "INSERT INTO lineage(space,version,kind,clusters,created_at,"
             "cause_alert) VALUES(?1,?2,'retrained','{\"from\":[],\"to\":[]}',"
             "?3,?4)");
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, c->spaces[p->space].name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, version);
  sqlite3_bind_int64(st, 3, sd_now_ms());
  sqlite3_bind_int64(st, 4, p->cause_alert);
  return sqlite3_step(st) == SQLITE_DONE ? 0 : SD_EDB;
}

int core_drift_store(sd_core *c, const sd_proposal *p, int64_t version) {
  int rc = p->cause_alert > 0 ? store_cause(c, p, version) : 0;
  sqlite3_stmt *st = rc == 0 ? sd_store_stmt(c->db, SQL_REF_PUT) : NULL;
  if (!st) return rc < 0 ? rc : SD_EDB;
  size_t n = p->ref_n, dim = (size_t)p->dim;
  sqlite3_bind_text(st, 1, c->spaces[p->space].name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, version);
  sqlite3_bind_int64(st, 3, (int64_t)n);
  sqlite3_bind_blob(st, 4, p->ref_x ? (const void *)p->ref_x : "",
                    (int)(sizeof(float) * n * dim), SQLITE_STATIC);
  sqlite3_bind_blob(st, 5, p->ref_label ? (const void *)p->ref_label : "",
                    (int)(sizeof(int32_t) * n), SQLITE_STATIC);
  sqlite3_bind_blob(st, 6, p->ref_sim ? (const void *)p->ref_sim : "",
                    (int)(sizeof(float) * n), SQLITE_STATIC);
  sqlite3_bind_blob(st, 7, p->weights, (int)(sizeof(float) * (size_t)p->k),
                    SQLITE_STATIC);
  return sqlite3_step(st) == SQLITE_DONE ? 0 : SD_EDB;
}

int core_drift_install(sd_core *c, const sd_proposal *p) {
  const sd_space *sp = &c->spaces[p->space];
  sd_drift_ref ref = {sp->version, sp->k, sp->dim, sp->ids, sp->centroids,
                      p->weights, p->ref_x, p->ref_label, p->ref_sim, p->ref_n,
                      NULL, NULL, 0};
  return sd_drift_set_reference(c->drift, p->space, &ref);
}

static const char SQL_REF_GET[] =
    "SELECT n,x,label,sim,counts,baseline,base_sum,base_sim FROM "
    "drift_reference WHERE space=?1 AND version=?2";

/* The live model's stored reference, if any (older models have none). */
int core_drift_load(sd_core *c, int space) {
  const sd_space *sp = &c->spaces[space];
  if (!sp->has_model) return 0;
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_REF_GET);
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, sp->name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, sp->version);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
      sd_log_info("%s model v%lld has no drift reference: drift checks wait "
                  "for the next model", sp->name, (long long)sp->version);
    return rc == SQLITE_DONE ? 0 : SD_EDB;
  }
  size_t n = (size_t)sqlite3_column_int64(st, 0), dim = (size_t)sp->dim;
  int ok = sqlite3_column_bytes(st, 1) == (int)(sizeof(float) * n * dim) &&
           sqlite3_column_bytes(st, 2) == (int)(sizeof(int32_t) * n) &&
           sqlite3_column_bytes(st, 3) == (int)(sizeof(float) * n) &&
           sqlite3_column_bytes(st, 4) == (int)(sizeof(float) * (size_t)sp->k);
  size_t k = (size_t)sp->k;
  int means = sqlite3_column_bytes(st, 6) == (int)(sizeof(float) * k * dim) &&
              sqlite3_column_bytes(st, 7) == (int)(sizeof(float) * k);
  int level = sqlite3_column_int(st, 5);
  rc = 0;
  if (ok) {
    sd_drift_ref ref = {sp->version, sp->k, sp->dim, sp->ids, sp->centroids,
                        sqlite3_column_blob(st, 4), sqlite3_column_blob(st, 1),
                        sqlite3_column_blob(st, 2), sqlite3_column_blob(st, 3), n,
                        means ? sqlite3_column_blob(st, 6) : NULL,
                        means ? sqlite3_column_blob(st, 7) : NULL,
                        level == 2 && !means ? 1 : level};
    rc = sd_drift_set_reference(c->drift, space, &ref);
  } else {
    sd_log_warn("the drift reference of %s v%lld does not fit the model: "
                "ignored", sp->name, (long long)sp->version);
  }
  sqlite3_reset(st);
  return rc;
}

static const char SQL_BASELINE[] =
    "UPDATE drift_reference SET n=?3,x=?4,label=?5,sim=?6,counts=?7,"
    "baseline=?8,base_sum=?9,base_sim=?10 WHERE space=?1 AND version=?2";

/* The baseline just completed: stored, so a restart keeps comparing with
 * it (its own statement: the group that completed it has committed). */
static void store_baseline(sd_core *c, int space) {
  int64_t version;
  float *x = NULL, *sim = NULL;
  int32_t *label = NULL;
  size_t n, k = (size_t)c->spaces[space].k, dim = (size_t)c->spaces[space].dim;
  int level = 0;
  float *counts = malloc(sizeof(float) * (k ? k : 1));
  float *bsum = malloc(sizeof(float) * (k ? k : 1) * dim);
  float *bsim = malloc(sizeof(float) * (k ? k : 1));
  int rc = counts && bsum && bsim
               ? sd_drift_baseline(c->drift, space, &version, &x, &label, &sim,
                                   &n, counts, bsum, bsim, &level)
               : SD_ENOMEM;
  sqlite3_stmt *st = rc == 0 ? sd_store_stmt(c->db, SQL_BASELINE) : NULL;
  if (st) {
    sqlite3_bind_text(st, 1, c->spaces[space].name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    sqlite3_bind_int64(st, 3, (int64_t)n);
    sqlite3_bind_blob(st, 4, x, (int)(sizeof(float) * n * dim), SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, label, (int)(sizeof(int32_t) * n), SQLITE_STATIC);
    sqlite3_bind_blob(st, 6, sim, (int)(sizeof(float) * n), SQLITE_STATIC);
    sqlite3_bind_blob(st, 7, counts, (int)(sizeof(float) * k), SQLITE_STATIC);
    sqlite3_bind_int(st, 8, level);
    if (level == 2) {
      sqlite3_bind_blob(st, 9, bsum, (int)(sizeof(float) * k * dim), SQLITE_STATIC);
      sqlite3_bind_blob(st, 10, bsim, (int)(sizeof(float) * k), SQLITE_STATIC);
    }
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SD_EDB;
    sqlite3_reset(st);
  }
  if (rc < 0 || !st)
    sd_log_warn("storing the drift baseline of %s failed: it is collected "
                "again after a restart", c->spaces[space].name);
  else
    sd_log_info("drift baseline of %s v%lld: %s", c->spaces[space].name,
                (long long)version, level == 2 ? "shares complete"
                                               : "points complete");
  free(counts);
  free(bsum);
  free(bsim);
  free(x);
  free(label);
  free(sim);
}

/* The raw features of a text through the built-in encoder's random
 * projection (see sd_drift_set_encoder). */
static int encode_raw(void *ud, const char *text, size_t len, float *out) {
  sd_core *c = ud;
  return sd_encoder_encode_text_proj(c->enc, c->raw_proj, text, len, out);
}

int core_drift_init(sd_core *c) {
  if (c->remote) return 0; /* a remote model's vectors keep new words */
  c->raw_proj = sd_proj_new(0, c->embedder_id, NULL);
  if (!c->raw_proj) return SD_ENOMEM;
  sd_drift_set_encoder(c->drift, SD_SPACE_INTENTS, encode_raw, c, (int)c->cfg->dim);
  return 0;
}

void core_drift_observe_text(sd_core *c, int idx, float sim, const float *x,
                             const char *id, const char *text, size_t len) {
  const sd_space *sp = &c->spaces[SD_SPACE_INTENTS];
  if (sd_drift_observe(c->drift, SD_SPACE_INTENTS, sp->version, idx, sim, x,
                       id, text, len))
    store_baseline(c, SD_SPACE_INTENTS);
}

void core_drift_observe_user(sd_core *c, int idx, float sim, const float *x,
                             const char *id) {
  const sd_space *sp = &c->spaces[SD_SPACE_SEGMENTS];
  if (sd_drift_observe(c->drift, SD_SPACE_SEGMENTS, sp->version, idx, sim, x,
                       id, NULL, 0))
    store_baseline(c, SD_SPACE_SEGMENTS);
}
