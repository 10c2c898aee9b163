/*
 * core_model.c -- a space's models on the writer thread: asking for the
 * first model once enough points are stored, persisting centroids,
 * reloading a stored model, the encoder projection and member bookkeeping
 * at start, and publishing snapshots.
 *
 * Everything derived is rebuilt from what is stored: at start the texts are
 * re-tokenised to restore the encoder's document frequencies, and the
 * stored assignments restore sizes, cohesion, representatives and terms.
 * Models themselves are fitted by the maintenance thread (recluster.h) and
 * installed by core_install.c.
 */
#include "core_int.h"

#include "segmentd/maint.h"
#include "segmentd/err.h"
#include "segmentd/log.h"
#include "segmentd/timeutil.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRAIN_SEED 0x5e9d2026ULL

/* ---- rebuilding members from stored assignments ---- */

static const char SQL_SCAN_TEXTS[] =
    "SELECT text_id,text,cluster,similarity,embedder_id,embedding FROM texts "
    "WHERE embedding IS NOT NULL"; /* texts waiting for one are no points */
static const char SQL_SCAN_USERS[] =
    "SELECT user_id,cluster,similarity FROM users";

/* Re-counts members of a space from the database; observe_df also restores
 * the encoder's document frequencies (only at start). */
int core_rebuild_members(sd_core *c, int space, int observe_df) {
  sd_space *sp = &c->spaces[space];
  int texts = space == SD_SPACE_INTENTS;
  sqlite3_stmt *st = sd_store_stmt(c->db, texts ? SQL_SCAN_TEXTS : SQL_SCAN_USERS);
  if (!st) return SD_EDB;
  int rc, ccol = texts ? 2 : 1;
  sp->points = 0;
  if (sp->has_model) sd_space_members_clear(sp); /* counted again below */
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *id = (const char *)sqlite3_column_text(st, 0);
    const char *text = texts ? (const char *)sqlite3_column_text(st, 1) : NULL;
    size_t len = texts ? (size_t)sqlite3_column_bytes(st, 1) : 0;
    sp->points++;
    if (observe_df && texts && !c->remote &&
        sqlite3_column_int64(st, 4) != c->client_embedder_id) {
      sd_sparse f;
      if (sd_features(text, len, SD_ENCODER_BITS, &f) == 0)
        sd_encoder_observe(c->enc, &f);
      sd_sparse_free(&f);
    }
    if (!sp->has_model || sqlite3_column_type(st, ccol) == SQLITE_NULL)
      continue;
    int idx = sd_space_index_of(sp, sqlite3_column_int64(st, ccol));
    float sim = (float)sqlite3_column_double(st, ccol + 1);
    const float *vec = NULL; /* texts: the vector, for diverse representatives */
    if (idx >= 0 && texts && sd_space_rep_wants(sp, idx, sim) &&
        core_blob_floats(st, 5, c->scratch, sp->dim) == 0) {
      float n = cblas_snrm2(sp->dim, c->scratch, 1);
      if (n > 0) cblas_sscal(sp->dim, 1.0f / n, c->scratch, 1);
      vec = c->scratch;
    }
    if (idx >= 0) sd_space_member_add(sp, idx, sim, id, text, len, vec);
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : SD_EDB;
}

/* ---- loading ---- */

static const char SQL_MODEL_GET[] =
    "SELECT version,algorithm,k,dim,ids,centroids,weights,inertia,trained_at,"
    "quality FROM models WHERE space=?1 ORDER BY version DESC LIMIT 1";
static const char SQL_CLUSTERS_GET[] =
    "SELECT id,created_at,label,description FROM clusters WHERE space=?1";

int core_load_cluster_rows(sd_core *c, sd_space *sp) {
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

/* With no stored model, versions go on from the last one a re-embed set
 * aside (meta "version.<space>"), so they never go backwards; cluster ids
 * likewise go on past the retired ones (core_load_cluster_rows). */
static int version_floor(sd_core *c, sd_space *sp) {
  char key[64], v[32];
  snprintf(key, sizeof(key), "version.%s", sp->name);
  int rc = sd_store_meta_get(c->db, key, v, sizeof(v));
  if (rc == 0) sp->version = strtoll(v, NULL, 10);
  return rc == SD_ENOTFOUND ? 0 : rc;
}

static int load_model(sd_core *c, sd_space *sp) {
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_MODEL_GET);
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, sp->name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return SD_EDB;
    rc = version_floor(c, sp); /* and ids go on past retired clusters: */
    return rc < 0 ? rc : core_load_cluster_rows(c, sp);
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
    if (rc == 0)
      rc = sd_space_set_quality(sp, (const char *)sqlite3_column_text(st, 9));
  } else if (k > 0 && dim != sp->dim) { /* e.g. the user vector grew */
    sd_log_warn("the stored %s model has dimension %d, this build uses %d: "
                "it is set aside and a new model will be trained",
                sp->name, dim, sp->dim);
    sp->version = sqlite3_column_int64(st, 0); /* the next one follows it */
    rc = 0;
  } else {
    sd_log_error("the stored %s model is unreadable", sp->name);
  }
  sqlite3_reset(st);
  free(ids);
  free(cen);
  free(w);
  return rc < 0 ? rc : core_load_cluster_rows(c, sp);
}

void core_beh_idf(sd_core *c) {
  for (int b = 0; b < SD_BEH_DIM; b++)
    c->beh_idf[b] = (float)(log((1.0 + c->beh_total) / (1.0 + c->beh_count[b])) + 1.0);
}

/* Events per behaviour bucket, for the behaviour view's TF-IDF: the
 * per-type counts the events table's triggers keep (migration 0014). */
static int load_beh_counts(sd_core *c) {
  sqlite3_stmt *st = sd_store_stmt(c->db, "SELECT type,n FROM event_types "
                                          "WHERE n > 0");
  if (!st) return SD_EDB;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    float sign;
    int b = sd_views_beh_bucket((const char *)sqlite3_column_text(st, 0),
                                (size_t)sqlite3_column_bytes(st, 0), &sign);
    c->beh_count[b] += (double)sqlite3_column_int64(st, 1);
    c->beh_total += (double)sqlite3_column_int64(st, 1);
  }
  sqlite3_reset(st);
  core_beh_idf(c);
  return rc == SQLITE_DONE ? 0 : SD_EDB;
}

static int load_ctx_names(sd_core *c) {
  sqlite3_stmt *st = sd_store_stmt(c->db, "SELECT bucket,name FROM feature_names "
                                          "WHERE view='context'");
  if (!st) return SD_EDB;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int b = sqlite3_column_int(st, 0);
    if (b >= 0 && b < SD_CTX_DIM && !c->ctx_names[b])
      c->ctx_names[b] = strdup((const char *)sqlite3_column_text(st, 1));
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : SD_EDB;
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
             "start with --dim %s, or run `segmentd reembed --dim %s` with "
             "the embedder's flags to re-embed the stored texts", have, have,
             want);
    return SD_EINVAL;
  }
  return 0;
}

/* A projection stored whole in its row (before migration 0004). */
static int projection_inline(sd_core *c, int64_t version, void **blob,
                             size_t *len) {
  sqlite3_stmt *st = sd_store_stmt(c->db, "SELECT data FROM projections "
                                          "WHERE version=?1");
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, version);
  int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : SD_EDB;
  if (rc == 0) {
    *len = (size_t)sqlite3_column_bytes(st, 0);
    *blob = malloc(*len ? *len : 1);
    if (!*blob) rc = SD_ENOMEM;
    else memcpy(*blob, sqlite3_column_blob(st, 0), *len);
  }
  sqlite3_reset(st);
  return rc;
}

/* The stored parts of projection version, concatenated (caller frees). */
static int read_parts(sd_core *c, int64_t version, void **blob, size_t *len) {
  sqlite3_stmt *st = sd_store_stmt(
      c->db, "SELECT data FROM projection_parts WHERE version=?1 ORDER BY seq");
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, version);
  char *buf = NULL;
  size_t n = 0;
  int rc, err = 0;
  while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    size_t m = (size_t)sqlite3_column_bytes(st, 0);
    char *nb = realloc(buf, n + m + 1);
    if (!nb) err = SD_ENOMEM;
    else {
      memcpy(nb + n, sqlite3_column_blob(st, 0), m);
      buf = nb, n += m;
    }
  }
  sqlite3_reset(st);
  if (err || rc != SQLITE_DONE) {
    free(buf);
    return err ? err : SD_EDB;
  }
  *blob = buf, *len = n;
  return 0;
}

/* The newest fitted projection, or the random one (version 0). Parts of a
 * projection that was never installed (a crash in between) are dropped. */
static int load_projection(sd_core *c) {
  if (sd_store_exec(c->db, "DELETE FROM projection_parts WHERE version NOT IN "
                           "(SELECT version FROM projections)") < 0)
    return SD_EDB;
  sqlite3_stmt *st = sd_store_stmt(
      c->db, "SELECT version,length(data) FROM projections ORDER BY version "
             "DESC LIMIT 1");
  if (!st) return SD_EDB;
  int rc = sqlite3_step(st);
  int64_t version = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  int inline_data = rc == SQLITE_ROW && sqlite3_column_int64(st, 1) > 0;
  sqlite3_reset(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SD_EDB;
  sd_lsa *lsa = NULL;
  int64_t emb = c->embedder_id;
  void *blob = NULL;
  size_t len = 0;
  rc = 0;
  if (version > 0) {
    rc = inline_data ? projection_inline(c, version, &blob, &len)
                     : read_parts(c, version, &blob, &len);
    if (rc == 0) rc = sd_lsa_load(blob, len, &lsa);
    free(blob);
  }
  if (rc == 0 && lsa) rc = core_projection_embedder(c, version, &emb);
  if (rc == 0 && !(c->proj = sd_proj_new(version, emb, lsa))) rc = SD_ENOMEM;
  if (rc < 0) sd_lsa_free(lsa);
  return rc;
}

int core_projection_embedder(sd_core *c, int64_t version, int64_t *id) {
  char model[64];
  snprintf(model, sizeof(model), "%s-v%lld", SD_ENCODER_LSA_VERSION,
           (long long)version);
  return sd_store_embedder_id(c->db, "builtin", model, (int)c->cfg->dim, model,
                              sd_now_ms(), id);
}

#define FIRST_MODEL_RETRY_MS 30000

/* A failed first model may be asked for again, after a pause (a space
 * whose points cannot be clustered yet must not ask at every batch). */
static void first_model_done(int64_t job, int rc, json_t *summary,
                             const char *msg, void *ud) {
  sd_space *sp = ud;
  (void)job, (void)summary, (void)msg;
  if (rc >= 0) return;
  atomic_store(&sp->train_retry_at, sd_now_ms() + FIRST_MODEL_RETRY_MS);
  atomic_store(&sp->train_requested, 0);
}

void core_request_first_models(sd_core *c) {
  struct sd_maint *m = atomic_load(&c->maint);
  for (int s = 0; s < SD_SPACES && m; s++) {
    sd_space *sp = &c->spaces[s];
    int64_t job;
    if (sp->has_model || sp->points < c->cfg->train_min ||
        atomic_load(&sp->train_requested) ||
        sd_now_ms() < atomic_load(&sp->train_retry_at))
      continue;
    sd_recluster_req req = {s, SD_ALGO_KMEANS, (int)c->cfg->k,
                            s == SD_SPACE_INTENTS && !c->remote, 0x5e9d, 0};
    atomic_store(&sp->train_requested, 1);
    if (sd_maint_submit(m, &req, first_model_done, sp, &job) < 0) {
      atomic_store(&sp->train_requested, 0);
    } else {
      sd_log_info("%s holds %lld points: first model requested (job %lld)",
                  sp->name, (long long)sp->points, (long long)job);
    }
  }
}

int core_load(sd_core *c, char *msg, size_t msglen) {
  int64_t t0 = sd_mono_ns();
  int rc = core_embed_load(c, msg, msglen);
  if (rc == 0) rc = check_dim(c, msg, msglen);
  if (rc == 0) rc = load_projection(c);
  for (int s = 0; s < SD_SPACES && rc == 0; s++)
    if ((rc = load_model(c, &c->spaces[s])) == 0)
      rc = core_rebuild_members(c, s, s == SD_SPACE_INTENTS);
  for (int s = 0; s < SD_SPACES && rc == 0; s++) rc = core_drift_load(c, s);
  if (rc == 0) rc = load_beh_names(c);
  if (rc == 0) rc = load_ctx_names(c);
  if (rc == 0) rc = load_beh_counts(c);
  if (rc == 0) rc = core_reassign_load(c);
  for (int s = 0; s < SD_SPACES; s++)
    c->spaces[s].points_at_train = c->spaces[s].points;
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

/* Puts (intent, texts) into a cluster's top-3 list, largest first. */
static void mix_offer(sd_snap_cluster *sc, int64_t intent, int64_t n,
                      int64_t *counts) {
  int j = sc->n_intents < 3 ? sc->n_intents++ : 2;
  if (j == 2 && sc->n_intents == 3 && n <= counts[2]) return;
  while (j > 0 && n > counts[j - 1]) {
    counts[j] = counts[j - 1];
    sc->intents[j] = sc->intents[j - 1];
    j--;
  }
  counts[j] = n;
  sc->intents[j] = (int32_t)intent;
}

/* The segments' dominant intents from the latest segment x intent mix. */
static void publish_mix(sd_core *c, sd_snap_space *seg) {
  int64_t *top = calloc((size_t)(seg->k ? seg->k : 1) * 4, sizeof(int64_t));
  if (!top) return; /* dominant intents are best effort */
  pthread_mutex_lock(&c->mix_mu);
  for (size_t r = 0; r < c->n_mix; r++) {
    int i = sd_snap_cluster_index(seg, c->mix[3 * r]);
    if (i < 0) continue;
    top[(size_t)i * 4 + 3] += c->mix[3 * r + 2]; /* the cluster's texts */
    mix_offer(&seg->clusters[i], c->mix[3 * r + 1], c->mix[3 * r + 2],
              top + (size_t)i * 4);
  }
  pthread_mutex_unlock(&c->mix_mu);
  for (int i = 0; i < seg->k; i++)
    for (int j = 0; j < seg->clusters[i].n_intents; j++)
      seg->clusters[i].intent_share[j] =
          (float)top[(size_t)i * 4 + j] / (float)top[(size_t)i * 4 + 3];
  free(top);
}

int core_publish(sd_core *c) {
  sd_snapshot *snap = sd_snapshot_new();
  if (!snap) return SD_ENOMEM;
  int64_t now = sd_now_ms();
  int rc = 0;
  for (int i = 0; i < SD_BEH_DIM; i++)
    snap->beh_names[i] = sd_snapshot_strdup(snap, c->beh_names[i]);
  for (int i = 0; i < SD_CTX_DIM; i++)
    snap->ctx_names[i] = sd_snapshot_strdup(snap, c->ctx_names[i]);
  memcpy(snap->beh_idf, c->beh_idf, sizeof(snap->beh_idf));
  snap->proj = sd_proj_ref(c->proj);
  for (int s = 0; s < SD_SPACES && rc == 0; s++) {
    rc = sd_space_snapshot(&c->spaces[s], snap, &snap->spaces[s], now);
    snap->spaces[s].reassigning = c->reassign.active && c->reassign.space == s;
  }
  if (rc < 0) {
    sd_snapshot_release(snap);
    return rc;
  }
  if (snap->spaces[SD_SPACE_SEGMENTS].has_model)
    publish_mix(c, &snap->spaces[SD_SPACE_SEGMENTS]);
  sd_snapshot_publish(snap);
  return 0;
}
