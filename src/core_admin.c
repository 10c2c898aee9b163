/*
 * core_admin.c -- administrative writes on the writer thread: a manual
 * cluster label (kept across model updates while the cluster keeps its
 * id) and the erasure of a user. Each runs as a job's fn inside its own
 * transaction (core.c): the database first, then memory, so only a failed
 * COMMIT could leave the in-memory counts off until the next start, when
 * they are rebuilt from what is stored. Both leave an audit row.
 */
#include "core_int.h"

#include "segmentd/err.h"
#include "segmentd/experiments.h"
#include "segmentd/log.h"
#include "segmentd/timeutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int core_audit(sd_core *c, const char *action, const char *target,
               json_t *detail) {
  char *js = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
  json_decref(detail);
  sqlite3_stmt *st = sd_store_stmt(
      c->db, "INSERT INTO audit(at,action,target,detail) VALUES(?1,?2,?3,?4)");
  if (!st) return free(js), SD_EDB;
  sqlite3_bind_int64(st, 1, sd_now_ms());
  sqlite3_bind_text(st, 2, action, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, target, -1, SQLITE_TRANSIENT);
  if (js) sqlite3_bind_text(st, 4, js, -1, free);
  return sqlite3_step(st) == SQLITE_DONE ? 0 : SD_EDB;
}

/* ---- manual labels ---- */

static int replace_str(char **slot, int set, const char *v) {
  if (!set) return 0;
  char *n = v ? strdup(v) : NULL;
  if (v && !n) return SD_ENOMEM;
  free(*slot);
  *slot = n;
  return 0;
}

int sd_core_op_label(sd_core *c, void *arg) {
  sd_label_op *op = arg;
  sd_space *sp = &c->spaces[op->space];
  int i = sp->has_model ? sd_space_index_of(sp, op->id) : -1;
  op->found = i >= 0;
  if (i < 0) return 0; /* the handler answers 404 */
  sqlite3_stmt *st = sd_store_stmt(
      c->db, "UPDATE clusters SET label=CASE WHEN ?3 THEN ?4 ELSE label END,"
             "description=CASE WHEN ?5 THEN ?6 ELSE description END "
             "WHERE space=?1 AND id=?2");
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, sp->name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, op->id);
  sqlite3_bind_int(st, 3, op->set_label);
  if (op->label) sqlite3_bind_text(st, 4, op->label, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 5, op->set_description);
  if (op->description) sqlite3_bind_text(st, 6, op->description, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
  char target[64];
  snprintf(target, sizeof(target), "%s/%lld", sp->name, (long long)op->id);
  json_t *d = json_pack("{s:s?,s:s?,s:s?,s:s?}", "old_label", sp->label[i],
                        "label", op->set_label ? op->label : sp->label[i],
                        "old_description", sp->description[i], "description",
                        op->set_description ? op->description : sp->description[i]);
  int rc = core_audit(c, "cluster_label", target, d);
  if (rc == 0) rc = replace_str(&sp->label[i], op->set_label, op->label);
  if (rc == 0)
    rc = replace_str(&sp->description[i], op->set_description, op->description);
  return rc;
}

/* ---- erasure ---- */

typedef struct {
  char *text_id, *text;
  size_t len;
  int64_t cluster; /* -1 unassigned */
  float sim;
  float *vec;      /* its unit embedding, or NULL */
} erased_text;

static void erased_free(erased_text *t, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(t[i].text_id), free(t[i].text), free(t[i].vec);
  free(t);
}

/* A unit copy of a stored embedding of dim floats, or NULL. */
static float *unit_copy(sqlite3_stmt *st, int col, int dim) {
  float *v = malloc(sizeof(float) * (size_t)dim);
  if (!v || core_blob_floats(st, col, v, dim) < 0) {
    free(v);
    return NULL;
  }
  float n = 0;
  for (int i = 0; i < dim; i++) n += v[i] * v[i];
  for (int i = 0; i < dim && n > 0; i++) v[i] /= sqrtf(n);
  return v;
}

/* The user's embedded texts as they are before deletion (for the in-memory
 * counts; texts still queued for an embedding are no points yet). */
static int collect_texts(sd_core *c, const char *user_id, erased_text **out,
                         size_t *n) {
  sqlite3_stmt *st = sd_store_stmt(
      c->db, "SELECT text_id,text,cluster,similarity,embedding FROM texts "
             "WHERE user_id=?1 AND embedding IS NOT NULL");
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
  size_t cap = 0;
  int rc, err = 0;
  *out = NULL, *n = 0;
  while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      erased_text *nt = realloc(*out, sizeof(**out) * (cap = cap ? cap * 2 : 16));
      if (!nt) { err = SD_ENOMEM; break; }
      *out = nt;
    }
    erased_text *t = &(*out)[(*n)++];
    t->text_id = strdup((const char *)sqlite3_column_text(st, 0));
    t->len = (size_t)sqlite3_column_bytes(st, 1);
    t->text = strdup((const char *)sqlite3_column_text(st, 1));
    t->cluster = sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 2);
    t->sim = (float)sqlite3_column_double(st, 3);
    t->vec = unit_copy(st, 4, c->vc.dim);
    if (!t->text_id || !t->text) err = SD_ENOMEM;
  }
  sqlite3_reset(st);
  return err ? err : rc == SQLITE_DONE ? 0 : SD_EDB;
}

/* DELETE ... WHERE user_id=?1; *n = rows deleted. */
static int delete_rows(sd_core *c, const char *sql, const char *user_id,
                       int64_t *n) {
  sqlite3_stmt *st = sd_store_stmt(c->db, sql);
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
  *n = sqlite3_changes(sd_store_db(c->db));
  return 0;
}

/* The user's segment row: 1 found (cluster, sim and vector filled; the
 * vector zero when the user has no views), 0 none. */
static int user_row(sd_core *c, const char *user_id, int64_t *cluster,
                    float *sim, sd_user_buf *ub, float *vec) {
  sqlite3_stmt *st = sd_store_stmt(
      c->db, "SELECT cluster,similarity," SD_VIEWS_COLS " FROM users WHERE user_id=?1");
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *cluster = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
    *sim = (float)sqlite3_column_double(st, 1);
    sd_views_read(st, 2, &c->vc, &ub->u);
    sd_views_vector(&c->vc, &ub->u, vec);
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : SD_EDB;
}

/* Memory follows the database: counts, representatives, terms. */
static void forget(sd_core *c, const char *user_id, const erased_text *t,
                   size_t n, int had_user, int64_t ucluster, float usim,
                   const float *uvec) {
  sd_space *in = &c->spaces[SD_SPACE_INTENTS], *seg = &c->spaces[SD_SPACE_SEGMENTS];
  for (size_t i = 0; i < n; i++) {
    in->points--;
    int idx = in->has_model && t[i].cluster >= 0 ? sd_space_index_of(in, t[i].cluster) : -1;
    if (idx >= 0)
      sd_space_member_remove(in, idx, t[i].sim, t[i].text_id, t[i].text, t[i].len);
    if (idx >= 0 && t[i].vec) sd_space_unlearn(in, idx, t[i].vec);
  }
  if (!had_user) return;
  seg->points--;
  int idx = seg->has_model && ucluster >= 0 ? sd_space_index_of(seg, ucluster) : -1;
  if (idx >= 0) {
    sd_space_member_remove(seg, idx, usim, user_id, NULL, 0);
    sd_space_unlearn(seg, idx, uvec);
  }
}

/* The user's texts leave the embedding queue (and its counts) too. */
static int unqueue(sd_core *c, const char *user_id) {
  int64_t pending = 0, failed = 0;
  int rc = delete_rows(c, "DELETE FROM embed_queue WHERE failed_at IS NULL AND "
                          "text_rowid IN (SELECT id FROM texts WHERE user_id=?1)",
                       user_id, &pending);
  if (rc == 0)
    rc = delete_rows(c, "DELETE FROM embed_queue WHERE failed_at IS NOT NULL "
                        "AND text_rowid IN (SELECT id FROM texts WHERE user_id=?1)",
                     user_id, &failed);
  if (rc == 0) {
    atomic_fetch_sub(&c->pending, pending);
    atomic_fetch_sub(&c->failed, failed);
  }
  return rc;
}

int sd_core_op_erase(sd_core *c, void *arg) {
  sd_erase_op *op = arg;
  erased_text *t = NULL;
  size_t n = 0;
  int64_t ucluster = -1, drop = 0;
  float usim = 0;
  sd_user_buf ub = {0};
  float *uvec = calloc((size_t)sd_views_width(&c->vc), sizeof(float));
  int rc = uvec ? sd_user_buf_init(&ub, &c->vc) : SD_ENOMEM;
  if (rc == 0) rc = collect_texts(c, op->user_id, &t, &n);
  int had_user = rc == 0 ? user_row(c, op->user_id, &ucluster, &usim, &ub, uvec) : 0;
  if (had_user < 0) rc = had_user;
  if (rc == 0) rc = unqueue(c, op->user_id);
  if (rc == 0) rc = delete_rows(c, "DELETE FROM texts WHERE user_id=?1", op->user_id, &op->texts);
  if (rc == 0) rc = delete_rows(c, "DELETE FROM events WHERE user_id=?1", op->user_id, &op->events);
  if (rc == 0) rc = delete_rows(c, "DELETE FROM users WHERE user_id=?1", op->user_id, &drop);
  if (rc == 0) rc = sd_exp_erase_user(c->db, op->user_id, &op->assignments);
  op->found = rc == 0 && (had_user || op->texts || op->events);
  c->lookups_stale |= op->found;
  if (rc == 0 && op->found) {
    char target[48];
    snprintf(target, sizeof(target), "user:%016llx",
             (unsigned long long)sd_hash64(op->user_id, strlen(op->user_id), 0xa0d1));
    rc = core_audit(c, "user_erased", target, json_pack("{s:I,s:I}", "events",
               (json_int_t)op->events, "texts", (json_int_t)op->texts));
  }
  if (rc == 0 && had_user == 1 && ucluster >= 0) { /* leaves its segment */
    const int64_t none = -1;
    rc = core_sync_diff(c, &ucluster, &none, &op->user_id, 1, "erased");
  }
  if (rc == 0 && op->found)
    forget(c, op->user_id, t, n, had_user, ucluster, usim, uvec);
  erased_free(t, n);
  sd_user_buf_free(&ub);
  free(uvec);
  return rc;
}
