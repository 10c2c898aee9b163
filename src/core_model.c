/*
 * core_model.c -- a space's models on the writer thread: training the first
 * model once enough points are stored, persisting centroids, reloading a
 * stored model and rebuilding member bookkeeping at start, and publishing
 * snapshots.
 *
 * Everything derived is rebuilt from what is stored: at start the texts are
 * re-tokenised to restore the encoder's document frequencies, and the
 * stored assignments restore sizes, cohesion, representatives and terms.
 */
#include "core_int.h"

#include "segmentd/cluster_kmeans.h"
#include "segmentd/err.h"
#include "segmentd/log.h"
#include "segmentd/timeutil.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRAIN_SEED 0x5e9d2026ULL

/* ---- rebuilding members from stored assignments ---- */

static const char SQL_SCAN_TEXTS[] =
    "SELECT text_id,text,cluster,similarity,embedder_id FROM texts";
static const char SQL_SCAN_USERS[] =
    "SELECT user_id,cluster,similarity FROM users";

/* Re-counts members of a space from the database; observe_df also restores
 * the encoder's document frequencies (only at start). */
static int rebuild_members(sd_core *c, int space, int observe_df) {
  sd_space *sp = &c->spaces[space];
  int texts = space == SD_SPACE_INTENTS;
  sqlite3_stmt *st = sd_store_stmt(c->db, texts ? SQL_SCAN_TEXTS : SQL_SCAN_USERS);
  if (!st) return SD_EDB;
  int rc, ccol = texts ? 2 : 1;
  sp->points = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *id = (const char *)sqlite3_column_text(st, 0);
    const char *text = texts ? (const char *)sqlite3_column_text(st, 1) : NULL;
    size_t len = texts ? (size_t)sqlite3_column_bytes(st, 1) : 0;
    sp->points++;
    if (observe_df && texts && sqlite3_column_int64(st, 4) == c->embedder_id) {
      sd_sparse f;
      if (sd_features(text, len, SD_ENCODER_BITS, &f) == 0)
        sd_encoder_observe(c->enc, &f);
      sd_sparse_free(&f);
    }
    if (!sp->has_model || sqlite3_column_type(st, ccol) == SQLITE_NULL)
      continue;
    int idx = sd_space_index_of(sp, sqlite3_column_int64(st, ccol));
    if (idx >= 0)
      sd_space_member_add(sp, idx, (float)sqlite3_column_double(st, ccol + 1),
                          id, text, len);
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : SD_EDB;
}

/* ---- loading ---- */

static const char SQL_MODEL_GET[] =
    "SELECT version,algorithm,k,dim,ids,centroids,weights,inertia,trained_at"
    " FROM models WHERE space=?1 ORDER BY version DESC LIMIT 1";
static const char SQL_CLUSTERS_GET[] =
    "SELECT id,created_at,label,description FROM clusters WHERE space=?1";

static int load_cluster_rows(sd_core *c, sd_space *sp) {
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_CLUSTERS_GET);
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, sp->name, -1, SQLITE_STATIC);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0);
    if (id >= sp->next_id) sp->next_id = (int32_t)id + 1;
    int i = sd_space_index_of(sp, id);
    if (i < 0) continue;
    sp->created_at[i] = sqlite3_column_int64(st, 1);
    if (sqlite3_column_type(st, 2) != SQLITE_NULL)
      sp->label[i] = strdup((const char *)sqlite3_column_text(st, 2));
    if (sqlite3_column_type(st, 3) != SQLITE_NULL)
      sp->description[i] = strdup((const char *)sqlite3_column_text(st, 3));
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : SD_EDB;
}

static int load_model(sd_core *c, sd_space *sp) {
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_MODEL_GET);
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, sp->name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : SD_EDB;
  }
  int k = sqlite3_column_int(st, 2);
  int dim = sqlite3_column_int(st, 3);
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)(k > 0 ? k : 1));
  float *cen = malloc(sizeof(float) * (size_t)(k > 0 ? k : 1) * sp->dim);
  float *w = malloc(sizeof(float) * (size_t)(k > 0 ? k : 1));
  rc = SD_EDB;
  if (ids && cen && w && k > 0 && dim == sp->dim &&
      sqlite3_column_bytes(st, 4) == (int)(sizeof(int32_t) * (size_t)k) &&
      core_blob_floats(st, 5, cen, k * dim) == 0 &&
      core_blob_floats(st, 6, w, k) == 0) {
    memcpy(ids, sqlite3_column_blob(st, 4), sizeof(int32_t) * (size_t)k);
    rc = sd_space_set_model(sp, k, ids, cen, w, sqlite3_column_int64(st, 0),
                            sqlite3_column_int64(st, 8),
                            sqlite3_column_double(st, 7),
                            (const char *)sqlite3_column_text(st, 1));
  } else {
    sd_log_error("the stored %s model does not match this configuration "
                 "(dim %d vs %d)", sp->name, dim, sp->dim);
  }
  sqlite3_reset(st);
  free(ids);
  free(cen);
  free(w);
  return rc < 0 ? rc : load_cluster_rows(c, sp);
}

static int load_beh_names(sd_core *c) {
  sqlite3_stmt *st = sd_store_stmt(c->db, "SELECT type FROM event_types");
  if (!st) return SD_EDB;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *t = (const char *)sqlite3_column_text(st, 0);
    float sign;
    int b = sd_views_beh_bucket(t, strlen(t), &sign);
    if (!c->beh_names[b]) c->beh_names[b] = strdup(t);
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : SD_EDB;
}

/* The database remembers the embedding dimension it was created with. */
static int check_dim(sd_core *c, char *msg, size_t msglen) {
  char have[32], want[32];
  snprintf(want, sizeof(want), "%ld", c->cfg->dim);
  int rc = sd_store_meta_get(c->db, "dim", have, sizeof(have));
  if (rc == SD_ENOTFOUND) return sd_store_meta_set(c->db, "dim", want);
  if (rc < 0) return rc;
  if (strcmp(have, want) != 0) {
    snprintf(msg, msglen, "the database holds %s-dimensional embeddings; "
             "start with --dim %s (or use a new database)", have, have);
    return SD_EINVAL;
  }
  return 0;
}

int core_load(sd_core *c, char *msg, size_t msglen) {
  int64_t t0 = sd_mono_ns();
  int rc = check_dim(c, msg, msglen);
  for (int s = 0; s < SD_SPACES && rc == 0; s++)
    if ((rc = load_model(c, &c->spaces[s])) == 0)
      rc = rebuild_members(c, s, s == SD_SPACE_INTENTS);
  if (rc == 0) rc = load_beh_names(c);
  if (rc < 0) {
    if (!*msg) snprintf(msg, msglen, "loading stored state failed: %s",
                        sqlite3_errmsg(sd_store_db(c->db)));
    return rc;
  }
  sd_log_info("loaded %lld texts and %lld users in %.0f ms (models: intents "
              "v%lld, segments v%lld)",
              (long long)c->spaces[0].points, (long long)c->spaces[1].points,
              (double)(sd_mono_ns() - t0) / 1e6,
              (long long)c->spaces[0].version, (long long)c->spaces[1].version);
  return 0;
}

/* ---- training a first model ---- */

typedef struct {
  size_t n, cap;
  int64_t *rowid;
  float *x; /* n x dim */
} train_set;

static void train_set_free(train_set *t) {
  free(t->rowid);
  free(t->x);
}

static int train_set_push(train_set *t, int dim, int64_t rowid, float **row) {
  if (t->n == t->cap) {
    size_t nc = t->cap ? t->cap * 2 : 1024;
    int64_t *nr = realloc(t->rowid, sizeof(int64_t) * nc);
    if (!nr) return SD_ENOMEM;
    t->rowid = nr;
    float *nx = realloc(t->x, sizeof(float) * nc * (size_t)dim);
    if (!nx) return SD_ENOMEM;
    t->x = nx;
    t->cap = nc;
  }
  t->rowid[t->n] = rowid;
  *row = t->x + t->n++ * (size_t)dim;
  return 0;
}

/* Texts' vectors: built-in ones re-embedded with today's document
 * frequencies (the first texts were embedded with almost none). */
static int collect_texts(sd_core *c, train_set *t) {
  sqlite3_stmt *st = sd_store_stmt(
      c->db, "SELECT id,text,embedding,embedder_id FROM texts ORDER BY id");
  if (!st) return SD_EDB;
  int rc, dim = c->vc.dim, err = 0;
  while (err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    float *row;
    if ((err = train_set_push(t, dim, sqlite3_column_int64(st, 0), &row)) < 0)
      break;
    if (sqlite3_column_int64(st, 3) == c->embedder_id) {
      err = sd_encoder_encode_text(c->enc, (const char *)sqlite3_column_text(st, 1),
                                   (size_t)sqlite3_column_bytes(st, 1), row);
    } else if (core_blob_floats(st, 2, row, dim) == 0) {
      float len = cblas_snrm2(dim, row, 1);
      if (len > 0) cblas_sscal(dim, 1.0f / len, row, 1);
    } else {
      t->n--; /* a vector of another dimension: not part of this space */
    }
  }
  sqlite3_reset(st);
  return err < 0 ? err : rc == SQLITE_DONE ? 0 : SD_EDB;
}

static int collect_users(sd_core *c, train_set *t) {
  sqlite3_stmt *st = sd_store_stmt(
      c->db, "SELECT id,text_sum,text_t,beh_sum,beh_t FROM users ORDER BY id");
  if (!st) return SD_EDB;
  int rc, w = sd_views_width(&c->vc), err = 0;
  float *sums = calloc((size_t)c->vc.dim + SD_BEH_DIM, sizeof(float));
  if (!sums) return SD_ENOMEM;
  while (err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    sd_user_state u = {.text_sum = sums, .beh_sum = sums + c->vc.dim};
    memset(sums, 0, sizeof(float) * ((size_t)c->vc.dim + SD_BEH_DIM));
    if (core_blob_floats(st, 1, u.text_sum, c->vc.dim) == 0) u.text_t = 1;
    if (core_blob_floats(st, 3, u.beh_sum, SD_BEH_DIM) == 0) u.beh_t = 1;
    float *row;
    if ((err = train_set_push(t, w, sqlite3_column_int64(st, 0), &row)) < 0)
      break;
    if (!sd_views_vector(&c->vc, &u, row)) t->n--;
  }
  sqlite3_reset(st);
  free(sums);
  return err < 0 ? err : rc == SQLITE_DONE ? 0 : SD_EDB;
}

static int auto_k(const sd_config *cfg, size_t n) {
  long k = cfg->k > 0 ? cfg->k : lround(sqrt((double)n / 2.0));
  if (cfg->k <= 0 && k > cfg->k_max) k = cfg->k_max;
  if (k < 2) k = 2;
  if ((size_t)k > n) k = (long)n;
  return (int)k;
}

static const char SQL_TEXT_ASSIGN[] =
    "UPDATE texts SET cluster=?2,similarity=?3,confidence=?4,embedding="
    "CASE WHEN embedder_id=?5 THEN ?6 ELSE embedding END WHERE id=?1";
static const char SQL_USER_ASSIGN[] =
    "UPDATE users SET cluster=?2,similarity=?3,confidence=?4 WHERE id=?1";
static const char SQL_MODEL_PUT[] =
    "INSERT INTO models(space,version,algorithm,k,dim,ids,centroids,weights,"
    "inertia,trained_at,saved_at) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?10)";
static const char SQL_CLUSTER_PUT[] =
    "INSERT INTO clusters(space,id,created_at) VALUES(?1,?2,?3) "
    "ON CONFLICT(space,id) DO NOTHING";

/* Writes every point's assignment against the fitted centroids. */
static int write_assignments(sd_core *c, sd_space *sp, const train_set *t,
                             const float *cen, int k, const int32_t *ids) {
  int texts = sp->index == SD_SPACE_INTENTS;
  sqlite3_stmt *st;
  for (size_t i = 0; i < t->n; i++) {
    const float *x = t->x + i * (size_t)sp->dim;
    int32_t b, s;
    float bs, ss;
    int rc = sd_kmeans_assign(x, 1, cen, k, sp->dim, 1, &b, &bs, &s, &ss);
    if (rc < 0) return rc;
    if (!(st = sd_store_stmt(c->db, texts ? SQL_TEXT_ASSIGN : SQL_USER_ASSIGN)))
      return SD_EDB;
    sqlite3_bind_int64(st, 1, t->rowid[i]);
    sqlite3_bind_int64(st, 2, ids[b]);
    sqlite3_bind_double(st, 3, bs);
    sqlite3_bind_double(st, 4, sd_confidence(bs, ss));
    if (texts) {
      sqlite3_bind_int64(st, 5, c->embedder_id);
      sqlite3_bind_blob(st, 6, x, (int)(sizeof(float) * (size_t)sp->dim),
                        SQLITE_STATIC);
    }
    if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
  }
  return 0;
}

static int write_model(sd_core *c, sd_space *sp, const sd_kmeans_result *r,
                       const int32_t *ids, const float *w, int64_t version,
                       int64_t now) {
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_MODEL_PUT);
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, sp->name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, version);
  sqlite3_bind_text(st, 3, "kmeans", -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 4, r->k);
  sqlite3_bind_int(st, 5, sp->dim);
  sqlite3_bind_blob(st, 6, ids, (int)(sizeof(int32_t) * (size_t)r->k),
                    SQLITE_STATIC);
  sqlite3_bind_blob(st, 7, r->centroids,
                    (int)(sizeof(float) * (size_t)r->k * sp->dim), SQLITE_STATIC);
  sqlite3_bind_blob(st, 8, w, (int)(sizeof(float) * (size_t)r->k),
                    SQLITE_STATIC);
  sqlite3_bind_double(st, 9, r->inertia);
  sqlite3_bind_int64(st, 10, now);
  if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
  for (int i = 0; i < r->k; i++) {
    if (!(st = sd_store_stmt(c->db, SQL_CLUSTER_PUT))) return SD_EDB;
    sqlite3_bind_text(st, 1, sp->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, ids[i]);
    sqlite3_bind_int64(st, 3, now);
    if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
  }
  return 0;
}

/* Persists a fitted model and installs it as the space's live model. */
static int train_commit(sd_core *c, sd_space *sp, const train_set *t,
                        const sd_kmeans_result *r) {
  int k = r->k, rc = SD_ENOMEM;
  int64_t now = sd_now_ms(), version = sp->version + 1;
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)k);
  float *w = calloc((size_t)k, sizeof(float));
  if (!ids || !w) goto out;
  for (int i = 0; i < k; i++) ids[i] = sp->next_id + i;
  for (size_t i = 0; i < t->n; i++) w[r->assign[i]] += 1.0f;
  float *cen = r->centroids;
  for (int i = 0; i < k; i++) { /* spherical centroids, unit rows */
    float len = cblas_snrm2(sp->dim, cen + (size_t)i * sp->dim, 1);
    if (len > 0) cblas_sscal(sp->dim, 1.0f / len, cen + (size_t)i * sp->dim, 1);
  }
  if ((rc = sd_store_exec(c->db, "BEGIN IMMEDIATE")) < 0) goto out;
  rc = write_assignments(c, sp, t, cen, k, ids);
  if (rc == 0) rc = write_model(c, sp, r, ids, w, version, now);
  if (rc == 0) rc = sd_store_exec(c->db, "COMMIT");
  if (rc < 0) {
    sd_store_exec(c->db, "ROLLBACK");
    goto out;
  }
  rc = sd_space_set_model(sp, k, ids, cen, w, version, now, r->inertia,
                          "kmeans");
  if (rc == 0) rc = rebuild_members(c, sp->index, 0);
out:
  free(ids);
  free(w);
  return rc;
}

int core_maybe_train(sd_core *c, int space) {
  sd_space *sp = &c->spaces[space];
  if (sp->has_model || sp->points < c->cfg->train_min) return 0;
  int64_t t0 = sd_mono_ns();
  train_set t = {0};
  int rc = space == SD_SPACE_INTENTS ? collect_texts(c, &t)
                                     : collect_users(c, &t);
  if (rc == 0 && t.n < 2) rc = SD_EINVAL; /* nothing to cluster yet */
  sd_kmeans_result r = {0};
  if (rc == 0) {
    sd_kmeans_opts o = sd_kmeans_defaults(auto_k(c->cfg, t.n));
    o.spherical = 1;
    o.seed = TRAIN_SEED;
    rc = sd_kmeans_fit(t.x, t.n, sp->dim, &o, &r);
  }
  if (rc == 0) rc = train_commit(c, sp, &t, &r);
  if (rc == 0)
    sd_log_info("trained %s model v%lld: k=%d on %zu points in %.0f ms",
                sp->name, (long long)sp->version, sp->k, t.n,
                (double)(sd_mono_ns() - t0) / 1e6);
  sd_kmeans_result_free(&r);
  train_set_free(&t);
  return rc == SD_EINVAL ? 0 : rc;
}

/* ---- persisting online updates, publishing ---- */

int core_save_models(sd_core *c) {
  int rc = 0;
  int64_t now = sd_now_ms();
  for (int s = 0; s < SD_SPACES && rc == 0; s++) {
    sd_space *sp = &c->spaces[s];
    if (!sp->has_model) continue;
    sqlite3_stmt *st = sd_store_stmt(
        c->db, "UPDATE models SET centroids=?3,weights=?4,saved_at=?5 "
               "WHERE space=?1 AND version=?2");
    if (!st) return SD_EDB;
    sqlite3_bind_text(st, 1, sp->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, sp->version);
    sqlite3_bind_blob(st, 3, sp->centroids,
                      (int)(sizeof(float) * (size_t)sp->k * sp->dim),
                      SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, sp->weights, (int)(sizeof(float) * (size_t)sp->k),
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    if (sqlite3_step(st) != SQLITE_DONE) rc = SD_EDB;
  }
  return rc;
}

int core_publish(sd_core *c) {
  sd_snapshot *snap = sd_snapshot_new();
  if (!snap) return SD_ENOMEM;
  int64_t now = sd_now_ms();
  int rc = 0;
  for (int i = 0; i < SD_BEH_DIM; i++)
    snap->beh_names[i] = sd_snapshot_strdup(snap, c->beh_names[i]);
  for (int s = 0; s < SD_SPACES && rc == 0; s++)
    rc = sd_space_snapshot(&c->spaces[s], snap, &snap->spaces[s],
                           (const char *const *)c->beh_names, now);
  if (rc < 0) {
    sd_snapshot_release(snap);
    return rc;
  }
  sd_snapshot_publish(snap);
  return 0;
}
