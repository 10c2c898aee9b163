/*
 * core_drift.c -- the writer's side of drift (drift.h): a model's
 * reference is stored in the transaction that installs the model (table
 * drift_reference) and handed to the drift windows once it is live, so a
 * restart checks against the same reference; every new assignment of an
 * ingest group is observed after its commit. A baseline pinned by hand
 * (sd_core_op_drift_pin) is stored on the same row with who pinned it and
 * when, audited (action drift_baseline), and only then installed.
 */
#include "core_int.h"

#include "segmentd/drift.h"
#include "segmentd/err.h"
#include "segmentd/log.h"
#include "segmentd/recluster.h"
#include "segmentd/timeutil.h"

#include <stdio.h>
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
                      NULL, NULL, 0, NULL};
  return sd_drift_set_reference(c->drift, p->space, &ref);
}

static const char SQL_REF_GET[] =
    "SELECT n,x,label,sim,counts,baseline,base_sum,base_sim,source,pinned_at,"
    "pinned_by FROM drift_reference WHERE space=?1 AND version=?2";

/* The pin of a stored reference (columns 8..10 of SQL_REF_GET). */
static sd_drift_pin pin_of(sqlite3_stmt *st) {
  sd_drift_pin pin = {SD_DRIFT_BASE_MODEL, 0, ""};
  const char *src = (const char *)sqlite3_column_text(st, 8);
  for (int i = 0; src && i < SD_DRIFT_BASE_SOURCES; i++)
    if (!strcmp(src, sd_drift_base_sources[i])) pin.source = i;
  pin.pinned_at = sqlite3_column_int64(st, 9);
  const char *by = (const char *)sqlite3_column_text(st, 10);
  if (by) snprintf(pin.pinned_by, sizeof(pin.pinned_by), "%s", by);
  return pin;
}

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
  sd_drift_pin pin = pin_of(st);
  rc = 0;
  if (ok) {
    sd_drift_ref ref = {sp->version, sp->k, sp->dim, sp->ids, sp->centroids,
                        sqlite3_column_blob(st, 4), sqlite3_column_blob(st, 1),
                        sqlite3_column_blob(st, 2), sqlite3_column_blob(st, 3), n,
                        means ? sqlite3_column_blob(st, 6) : NULL,
                        means ? sqlite3_column_blob(st, 7) : NULL,
                        level == 2 && !means ? 1 : level, &pin};
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

/* A baseline's columns on its model's row (no row: nothing changes). */
static int store_base(sd_core *c, int space, const sd_drift_base *b) {
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_BASELINE);
  if (!st) return SD_EDB;
  size_t n = b->n, k = (size_t)b->k, dim = (size_t)b->dim;
  sqlite3_bind_text(st, 1, c->spaces[space].name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, b->version);
  sqlite3_bind_int64(st, 3, (int64_t)n);
  sqlite3_bind_blob(st, 4, b->x, (int)(sizeof(float) * n * dim), SQLITE_STATIC);
  sqlite3_bind_blob(st, 5, b->label, (int)(sizeof(int32_t) * n), SQLITE_STATIC);
  sqlite3_bind_blob(st, 6, b->sim, (int)(sizeof(float) * n), SQLITE_STATIC);
  sqlite3_bind_blob(st, 7, b->counts, (int)(sizeof(float) * k), SQLITE_STATIC);
  sqlite3_bind_int(st, 8, b->level);
  if (b->level == 2) {
    sqlite3_bind_blob(st, 9, b->base_sum, (int)(sizeof(float) * k * dim), SQLITE_STATIC);
    sqlite3_bind_blob(st, 10, b->base_sim, (int)(sizeof(float) * k), SQLITE_STATIC);
  }
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SD_EDB;
  sqlite3_reset(st);
  return rc;
}

/* The baseline just completed: stored, so a restart keeps comparing with
 * it (its own statement: the group that completed it has committed). */
static void store_baseline(sd_core *c, int space) {
  sd_drift_base b;
  int rc = sd_drift_baseline(c->drift, space, &b);
  if (rc == 0) rc = store_base(c, space, &b);
  if (rc < 0)
    sd_log_warn("storing the drift baseline of %s failed: it is collected "
                "again after a restart", c->spaces[space].name);
  else
    sd_log_info("drift baseline of %s v%lld: %s", c->spaces[space].name,
                (long long)b.version, b.level == 2 ? "shares complete"
                                                   : "points complete");
  sd_drift_base_free(&b);
}

/* ---- a baseline pinned by hand ---- */

static const char SQL_PIN[] =
    "UPDATE drift_reference SET source=?3,pinned_at=?4,pinned_by=?5 "
    "WHERE space=?1 AND version=?2";

static int store_pin(sd_core *c, int space, const sd_drift_base *b) {
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_PIN);
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, c->spaces[space].name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, b->version);
  sqlite3_bind_text(st, 3, sd_drift_base_sources[b->pin.source], -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, b->pin.pinned_at);
  if (b->pin.pinned_by[0])
    sqlite3_bind_text(st, 5, b->pin.pinned_by, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(sd_store_db(c->db)) == 1
               ? 0 : SD_EDB;
  sqlite3_reset(st);
  return rc;
}

/* The audit row of a pin: what replaced what. */
static int audit_pin(sd_core *c, int space, const sd_drift_base *b,
                     const sd_drift_base_info *old) {
  return core_audit(c, "drift_baseline", c->spaces[space].name,
                    json_pack("{s:I,s:s,s:I,s:s?,s:s,s:I,s:b}", "model_version",
                              (json_int_t)b->version, "source",
                              sd_drift_base_sources[b->pin.source], "points",
                              (json_int_t)b->n, "pinned_by",
                              b->pin.pinned_by[0] ? b->pin.pinned_by : NULL,
                              "previous_source", sd_drift_base_sources[old->source],
                              "previous_points", (json_int_t)old->points,
                              "previous_complete", old->complete));
}

/* The planned baseline as the live reference of the same model. */
static int install_base(sd_core *c, int space, const sd_drift_base *b) {
  const sd_space *sp = &c->spaces[space];
  int shares = b->level == 2;
  sd_drift_ref ref = {b->version, sp->k, sp->dim, sp->ids, sp->centroids,
                      b->counts, b->x, b->label, b->sim, b->n,
                      shares ? b->base_sum : NULL, shares ? b->base_sim : NULL,
                      b->level, &b->pin};
  return sd_drift_set_reference(c->drift, space, &ref);
}

int sd_core_op_drift_pin(sd_core *c, void *arg) {
  sd_drift_pin_op *op = arg;
  const sd_space *sp = &c->spaces[op->space];
  if (!sp->has_model) {
    snprintf(op->msg, sizeof(op->msg), "the space has no model yet: there "
             "is no baseline to pin");
    return SD_ECONFLICT;
  }
  sd_drift_pin pin = {op->source, sd_now_ms(), ""};
  if (op->pinned_by)
    snprintf(pin.pinned_by, sizeof(pin.pinned_by), "%s", op->pinned_by);
  sd_drift_base_info old;
  sd_drift_base_describe(c->drift, op->space, &old);
  sd_drift_base b;
  int rc = sd_drift_pin_plan(c->drift, op->space, sp->version, &pin, &b,
                             op->msg, sizeof(op->msg));
  if (rc == 0) rc = store_base(c, op->space, &b);
  if (rc == 0) rc = store_pin(c, op->space, &b);
  if (rc == 0) rc = audit_pin(c, op->space, &b, &old);
  if (rc == 0) rc = install_base(c, op->space, &b);
  if (rc == 0) {
    sd_drift_base_describe(c->drift, op->space, &op->info);
    sd_log_info("drift baseline of %s v%lld pinned: %s (%zu points)", sp->name,
                (long long)b.version, sd_drift_base_sources[pin.source], b.n);
  }
  sd_drift_base_free(&b);
  return rc;
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
