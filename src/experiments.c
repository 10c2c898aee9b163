/*
 * experiments.c -- the balancing scheme, and the writer's side of
 * experiments: creating, stopping, first assignments, erasure (see
 * experiments.h). Reads are in experiments_read.c.
 *
 * A first assignment is one short writer transaction: the definition and
 * any stored assignment are read again on the writer connection (two
 * concurrent first requests for one user queue two jobs; the second finds
 * the first's row and answers with it), then the user's segment
 * (users.cluster, the live segment the writer last stored), the stratum's
 * dealt counts, the INSERT and the counter update. It changes nothing a
 * snapshot holds, so the job is quiet (no snapshot is published).
 */
#include "experiments_int.h"

#include "segmentd/err.h"
#include "segmentd/store.h"
#include "segmentd/timeutil.h"
#include "segmentd/tokenize.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the balancing scheme ---- */

int sd_exp_block(const double *w, int k, int *slots) {
  for (int b = k > 1 ? k : 2; b <= SD_EXP_BLOCK_MAX; b++) {
    int sum = 0, ok = 1;
    for (int i = 0; i < k && ok; i++) {
      slots[i] = (int)lround(w[i] * b);
      sum += slots[i];
      ok = slots[i] >= 1 && fabs((double)slots[i] / b - w[i]) <= 1e-3 + 1e-12;
    }
    if (ok && sum == b) return b;
  }
  return -1;
}

double sd_exp_unit(const char *name, const char *user_id) {
  uint64_t seed = sd_hash64(name, strlen(name), 0x5e9de7ULL);
  uint64_t h = sd_hash64(user_id, strlen(user_id), seed);
  return (double)(h >> 11) * 0x1p-53;
}

int sd_exp_pick(double u, const double *w, const int *slots, int k,
                const int64_t *counts) {
  if (!counts) { /* the weight bucket of u */
    double acc = 0;
    for (int i = 0; i < k - 1; i++)
      if (u < (acc += w[i])) return i;
    return k - 1;
  }
  int64_t dealt = 0, block = 0, free_[SD_EXP_VARIANTS_MAX], nfree = 0;
  for (int i = 0; i < k; i++) dealt += counts[i], block += slots[i];
  int64_t full = block > 0 ? dealt / block : 0;
  for (int i = 0; i < k; i++) {
    int64_t used = counts[i] - full * slots[i];
    free_[i] = used < 0 ? 0 : used > slots[i] ? 0 : slots[i] - used;
    nfree += free_[i];
  }
  if (nfree == 0) return sd_exp_pick(u, w, slots, k, NULL); /* not a valid
                                                  state: fall back to weights */
  int64_t r = (int64_t)(u * (double)nfree); /* one of the free slots */
  for (int i = 0; i < k; i++) {
    if (r < free_[i]) return i;
    r -= free_[i];
  }
  return k - 1;
}

/* ---- definitions ---- */

/* A JSON array text of the variant names or the weights (malloc'd). */
static char *def_array(const sd_exp_def *d, int weights) {
  json_t *a = json_array();
  for (int i = 0; a && i < d->n_variants; i++)
    json_array_append_new(a, weights ? json_real(d->weights[i])
                                     : json_string(d->variants[i]));
  char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
  json_decref(a);
  return s;
}

static int decode_arrays(const char *vs, const char *ws, sd_exp_def *def) {
  json_t *v = vs ? json_loads(vs, 0, NULL) : NULL;
  json_t *w = ws ? json_loads(ws, 0, NULL) : NULL;
  size_t n = json_array_size(v);
  int ok = n >= 2 && n <= SD_EXP_VARIANTS_MAX && json_array_size(w) == n;
  for (size_t i = 0; ok && i < n; i++) {
    const char *s = json_string_value(json_array_get(v, i));
    ok = s && strlen(s) <= SD_EXP_VARIANT_MAX && json_is_number(json_array_get(w, i));
    if (ok) snprintf(def->variants[i], sizeof(def->variants[i]), "%s", s);
    if (ok) def->weights[i] = json_number_value(json_array_get(w, i));
  }
  def->n_variants = ok ? (int)n : 0;
  json_decref(v);
  json_decref(w);
  return ok ? 0 : SD_EDB;
}

int exp_def_row(sqlite3_stmt *st, int col, sd_exp_def *def) {
  memset(def, 0, sizeof(*def));
  def->id = sqlite3_column_int64(st, col);
  const char *name = (const char *)sqlite3_column_text(st, col + 1);
  const char *et = (const char *)sqlite3_column_text(st, col + 5);
  const char *strat = (const char *)sqlite3_column_text(st, col + 4);
  snprintf(def->name, sizeof(def->name), "%s", name ? name : "");
  snprintf(def->event_type, sizeof(def->event_type), "%s", et ? et : "");
  def->stratify = strat && !strcmp(strat, "segments");
  def->window_days = sqlite3_column_int(st, col + 6);
  def->created_at = sqlite3_column_int64(st, col + 7);
  def->stopped_at = sqlite3_column_int64(st, col + 8); /* NULL reads 0 */
  return decode_arrays((const char *)sqlite3_column_text(st, col + 2),
                       (const char *)sqlite3_column_text(st, col + 3), def);
}

static int event_type_known(sd_store *db, const char *type) {
  sqlite3_stmt *st = sd_store_stmt(db, "SELECT 1 FROM event_types WHERE type=?1");
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : SD_EDB;
}

int sd_exp_op_create(sd_core *c, void *arg) {
  sd_exp_create_op *op = arg;
  sd_store *db = sd_core_db(c);
  int known = event_type_known(db, op->def->event_type);
  if (known < 0) return known;
  op->unknown_event = !known;
  if (op->unknown_event) return 0; /* the handler answers 422 */
  char *vs = def_array(op->def, 0), *ws = def_array(op->def, 1);
  sqlite3_stmt *st = vs && ws ? sd_store_stmt(db,
      "INSERT INTO experiments(name,variants,weights,stratify,event_type,"
      "window_days,created_at) VALUES(?1,?2,?3,?4,?5,?6,?7) "
      "ON CONFLICT(name) DO NOTHING") : NULL;
  int rc = vs && ws ? (st ? 0 : SD_EDB) : SD_ENOMEM;
  if (rc == 0) {
    op->created_at = sd_now_ms();
    sqlite3_bind_text(st, 1, op->def->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, vs, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ws, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, op->def->stratify ? "segments" : "none", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, op->def->event_type, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, op->def->window_days);
    sqlite3_bind_int64(st, 7, op->created_at);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SD_EDB;
    sqlite3_reset(st);
  }
  if (rc == 0) {
    op->duplicate = sqlite3_changes(sd_store_db(db)) == 0;
    op->id = sqlite3_last_insert_rowid(sd_store_db(db));
  }
  free(vs);
  free(ws);
  return rc;
}

/* ---- first assignments ---- */

/* The definition by name on the writer connection: 1, 0 none, SD_EDB. */
static int writer_def(sd_store *db, const char *name, sd_exp_def *def) {
  sqlite3_stmt *st = sd_store_stmt(db, "SELECT " EXP_DEF_COLS
                                       " FROM experiments e WHERE e.name=?1");
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  int out = rc == SQLITE_ROW ? (exp_def_row(st, 0, def) < 0 ? SD_EDB : 1)
            : rc == SQLITE_DONE ? 0 : SD_EDB;
  sqlite3_reset(st);
  return out;
}

/* The stored assignment: 1, 0 none, SD_EDB. */
static int writer_assignment(sd_store *db, int64_t exp_id, const char *user_id,
                             sd_exp_assignment *a) {
  sqlite3_stmt *st = sd_store_stmt(db,
      "SELECT variant,segment,assigned_at FROM experiment_assignments "
      "WHERE experiment_id=?1 AND user_id=?2");
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, exp_id);
  sqlite3_bind_text(st, 2, user_id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    a->variant = sqlite3_column_int(st, 0);
    a->has_segment = sqlite3_column_type(st, 1) != SQLITE_NULL;
    a->segment = sqlite3_column_int64(st, 1);
    a->assigned_at = sqlite3_column_int64(st, 2);
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : SD_EDB;
}

/* The user's live segment: 1 (has_segment/segment set), 0 unknown user. */
static int writer_segment(sd_store *db, const char *user_id,
                          sd_exp_assignment *a) {
  sqlite3_stmt *st = sd_store_stmt(db, "SELECT cluster FROM users WHERE user_id=?1");
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    a->has_segment = sqlite3_column_type(st, 0) != SQLITE_NULL;
    a->segment = a->has_segment ? sqlite3_column_int64(st, 0) : 0;
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : SD_EDB;
}

/* The slots dealt so far in a stratum, per variant. */
static int stratum_counts(sd_store *db, int64_t exp_id, int64_t stratum,
                          int64_t *counts, int k) {
  sqlite3_stmt *st = sd_store_stmt(db,
      "SELECT variant,n FROM experiment_strata WHERE experiment_id=?1 AND stratum=?2");
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, exp_id);
  sqlite3_bind_int64(st, 2, stratum);
  memset(counts, 0, sizeof(int64_t) * (size_t)k);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int v = sqlite3_column_int(st, 0);
    if (v >= 0 && v < k) counts[v] = sqlite3_column_int64(st, 1);
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : SD_EDB;
}

/* Stores the assignment and deals its slot. */
static int store_assignment(sd_store *db, int64_t exp_id, int64_t stratum,
                            const char *user_id, const sd_exp_assignment *a) {
  sqlite3_stmt *st = sd_store_stmt(db,
      "INSERT INTO experiment_assignments(experiment_id,user_id,variant,segment,"
      "assigned_at) VALUES(?1,?2,?3,?4,?5)");
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, exp_id);
  sqlite3_bind_text(st, 2, user_id, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 3, a->variant);
  if (a->has_segment) sqlite3_bind_int64(st, 4, a->segment);
  sqlite3_bind_int64(st, 5, a->assigned_at);
  if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
  st = sd_store_stmt(db,
      "INSERT INTO experiment_strata(experiment_id,stratum,variant,n) "
      "VALUES(?1,?2,?3,1) ON CONFLICT DO UPDATE SET n=n+1");
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, exp_id);
  sqlite3_bind_int64(st, 2, stratum);
  sqlite3_bind_int(st, 3, a->variant);
  return sqlite3_step(st) == SQLITE_DONE ? 0 : SD_EDB;
}

/* Deals the user a variant and stores it (the user exists, unassigned). */
static int assign_new(sd_store *db, const sd_exp_def *def, const char *user_id,
                      sd_exp_assignment *a) {
  int slots[SD_EXP_VARIANTS_MAX];
  int64_t counts[SD_EXP_VARIANTS_MAX];
  if (sd_exp_block(def->weights, def->n_variants, slots) < 0) return SD_EINTERNAL;
  int64_t stratum = def->stratify && a->has_segment ? a->segment : -1;
  int rc = def->stratify ? stratum_counts(db, def->id, stratum, counts, def->n_variants) : 0;
  if (rc < 0) return rc;
  a->variant = sd_exp_pick(sd_exp_unit(def->name, user_id), def->weights, slots,
                           def->n_variants, def->stratify ? counts : NULL);
  a->assigned_at = sd_now_ms();
  return store_assignment(db, def->id, stratum, user_id, a);
}

int sd_exp_op_assign(sd_core *c, void *arg) {
  sd_exp_assign_op *op = arg;
  sd_store *db = sd_core_db(c);
  sd_exp_def def;
  int rc = writer_def(db, op->name, &def);
  if (rc <= 0) return rc; /* not found: the handler answers 404 */
  op->found_exp = 1;
  rc = writer_assignment(db, def.id, op->user_id, &op->a);
  if (rc == 0 && def.stopped_at) {
    op->stopped = 1;
    return 0;
  }
  if (rc == 0 && (rc = writer_segment(db, op->user_id, &op->a)) == 1) {
    op->found_user = 1;
    rc = assign_new(db, &def, op->user_id, &op->a);
    op->created = rc == 0;
  } else if (rc == 1) {
    op->found_user = 1;
    rc = 0;
  }
  if (op->found_user && rc == 0)
    snprintf(op->variant, sizeof(op->variant), "%s",
             def.variants[op->a.variant < def.n_variants ? op->a.variant : 0]);
  return rc;
}

int sd_exp_op_stop(sd_core *c, void *arg) {
  sd_exp_stop_op *op = arg;
  sd_store *db = sd_core_db(c);
  sqlite3_stmt *st = sd_store_stmt(db,
      "UPDATE experiments SET stopped_at=coalesce(stopped_at,?2) WHERE name=?1");
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, sd_now_ms());
  if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
  int rc = writer_def(db, op->name, &op->def);
  if (rc <= 0) return rc;
  op->found = 1;
  st = sd_store_stmt(db, "SELECT count(*) FROM experiment_assignments "
                         "WHERE experiment_id=?1");
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, op->def.id);
  rc = sqlite3_step(st);
  op->users = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : SD_EDB;
}

int sd_exp_erase_user(sd_store *db, const char *user_id, int64_t *n) {
  sqlite3_stmt *st = sd_store_stmt(db,
      "DELETE FROM experiment_assignments WHERE user_id=?1");
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
  *n = sqlite3_changes(sd_store_db(db));
  return 0;
}
