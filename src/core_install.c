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
#include "segmentd/log.h"
#include "segmentd/maint.h"
#include "segmentd/recluster.h"
#include "segmentd/timeutil.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 1000

typedef struct {
  int64_t id;
  float *x; /* the entity's (new) vector */
  int keep_embedding;
} ent;

/* Assigns n vectors against the proposal and updates their rows. */
static int assign_rows(sd_core *c, const sd_proposal *p, const char *sql,
                       const ent *e, size_t n, int texts, int64_t emb_id) {
  for (size_t i = 0; i < n; i++) {
    int32_t b, s2;
    float bs, ss;
    int rc = sd_kmeans_assign(e[i].x, 1, p->centroids, p->k, p->dim, 1, &b,
                              &bs, &s2, &ss);
    if (rc < 0) return rc;
    sqlite3_stmt *st = sd_store_stmt(c->db, sql);
    if (!st) return SD_EDB;
    sqlite3_bind_int64(st, 1, e[i].id);
    sqlite3_bind_int64(st, 2, p->ids[b]);
    sqlite3_bind_double(st, 3, bs);
    sqlite3_bind_double(st, 4, sd_confidence(bs, ss));
    if (texts && !e[i].keep_embedding) {
      sqlite3_bind_blob(st, 5, e[i].x, (int)(sizeof(float) * (size_t)p->dim),
                        SQLITE_STATIC);
      sqlite3_bind_int64(st, 6, emb_id);
    }
    if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
  }
  return 0;
}

static const char SQL_TEXT_CHUNK[] =
    "SELECT id,text,embedding,embedder_id FROM texts WHERE id>?1 "
    "ORDER BY id LIMIT 1000";
static const char SQL_TEXT_SET[] =
    "UPDATE texts SET cluster=?2,similarity=?3,confidence=?4,"
    "embedding=coalesce(?5,embedding),embedder_id=coalesce(?6,embedder_id) "
    "WHERE id=?1";
static const char SQL_USER_CHUNK[] =
    "SELECT id,text_sum,text_t,beh_sum,beh_t FROM users WHERE id>?1 "
    "ORDER BY id LIMIT 1000";
static const char SQL_USER_SET[] =
    "UPDATE users SET cluster=?2,similarity=?3,confidence=?4 WHERE id=?1";

static void unit(float *v, int n) {
  float len = cblas_snrm2(n, v, 1);
  if (len > 0) cblas_sscal(n, 1.0f / len, v, 1);
}

/* Reads one chunk of texts after *after into e (vectors in xs). */
static int text_chunk(sd_core *c, const sd_proj *proj, int64_t *after, ent *e,
                      float *xs, size_t *n, size_t *read) {
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_TEXT_CHUNK);
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, *after);
  int rc, err = 0, dim = c->vc.dim;
  *n = *read = 0;
  while (err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    ent *x = &e[*n];
    (*read)++;
    x->id = *after = sqlite3_column_int64(st, 0);
    x->x = xs + *n * (size_t)dim;
    int client = sqlite3_column_int64(st, 3) == c->client_embedder_id;
    x->keep_embedding = !proj || client;
    if (x->keep_embedding && core_blob_floats(st, 2, x->x, dim) == 0) {
      unit(x->x, dim);
    } else if (!client) {
      x->keep_embedding = 0;
      err = sd_encoder_encode_text_proj(
          c->enc, proj ? proj : c->proj, (const char *)sqlite3_column_text(st, 1),
          (size_t)sqlite3_column_bytes(st, 1), x->x);
    } else {
      continue; /* a client vector of another dimension: left unassigned */
    }
    (*n)++;
  }
  sqlite3_reset(st);
  return err < 0 ? err : rc == SQLITE_DONE ? 0 : SD_EDB;
}

static int user_chunk(sd_core *c, int64_t *after, ent *e, float *xs,
                      float *sums, size_t *n, size_t *read) {
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_USER_CHUNK);
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, *after);
  int rc, w = sd_views_width(&c->vc);
  *n = *read = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    (*read)++;
    *after = sqlite3_column_int64(st, 0);
    sd_user_state u = {.text_sum = sums, .beh_sum = sums + c->vc.dim};
    memset(sums, 0, sizeof(float) * ((size_t)c->vc.dim + SD_BEH_DIM));
    u.text_t = core_blob_floats(st, 1, u.text_sum, c->vc.dim) == 0;
    u.beh_t = core_blob_floats(st, 3, u.beh_sum, SD_BEH_DIM) == 0;
    e[*n] = (ent){*after, xs + *n * (size_t)w, 1};
    if (sd_views_vector(&c->vc, &u, e[*n].x)) (*n)++;
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : SD_EDB;
}

/* Re-assigns (and for a new projection re-embeds) every entity. */
static int reassign_all(sd_core *c, const sd_proposal *p, const sd_proj *proj) {
  int texts = p->space == SD_SPACE_INTENTS;
  ent *e = malloc(sizeof(ent) * CHUNK);
  float *xs = malloc(sizeof(float) * CHUNK * (size_t)p->dim);
  float *sums = calloc((size_t)c->vc.dim + SD_BEH_DIM, sizeof(float));
  int rc = e && xs && sums ? 0 : SD_ENOMEM;
  int64_t after = 0;
  size_t n = 0, read = CHUNK;
  int64_t emb_id = (proj ? proj : c->proj)->embedder_id;
  while (rc == 0 && read == CHUNK) {
    rc = texts ? text_chunk(c, proj, &after, e, xs, &n, &read)
               : user_chunk(c, &after, e, xs, sums, &n, &read);
    if (rc == 0)
      rc = assign_rows(c, p, texts ? SQL_TEXT_SET : SQL_USER_SET, e, n, texts,
                       emb_id);
  }
  free(e);
  free(xs);
  free(sums);
  return rc;
}

/* ---- a new projection: stored, and users' text views recomputed ---- */

static int store_projection(sd_core *c, sd_proj *proj, size_t fitted_on) {
  void *blob = NULL;
  size_t len = 0;
  int rc = core_projection_embedder(c, proj->version, &proj->embedder_id);
  if (rc == 0) rc = sd_lsa_save(proj->lsa, &blob, &len);
  sqlite3_stmt *st = rc == 0 ? sd_store_stmt(
      c->db, "INSERT OR REPLACE INTO projections(version,dim,fitted_on,"
             "created_at,data) VALUES(?1,?2,?3,?4,?5)") : NULL;
  if (rc == 0 && !st) rc = SD_EDB;
  if (rc == 0) {
    sqlite3_bind_int64(st, 1, proj->version);
    sqlite3_bind_int(st, 2, c->vc.dim);
    sqlite3_bind_int64(st, 3, (int64_t)fitted_on);
    sqlite3_bind_int64(st, 4, sd_now_ms());
    sqlite3_bind_blob64(st, 5, blob, len, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) rc = SD_EDB;
  }
  free(blob);
  return rc;
}

static const char SQL_USER_TEXTS[] =
    "SELECT t.ts,t.embedding FROM texts t WHERE t.user_id=?1 ORDER BY t.ts";

/* One user's text view from their texts' (new) embeddings. */
static int user_text_view(sd_core *c, const char *user_id, float *sum,
                          float *tmp, int64_t *t) {
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_USER_TEXTS);
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, user_id, -1, SQLITE_TRANSIENT);
  sd_user_state u = {.text_sum = sum};
  memset(sum, 0, sizeof(float) * (size_t)c->vc.dim);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (core_blob_floats(st, 1, tmp, c->vc.dim) < 0) continue;
    unit(tmp, c->vc.dim);
    sd_views_add_text(&c->vc, &u, tmp, sqlite3_column_int64(st, 0));
  }
  sqlite3_reset(st);
  *t = u.text_t;
  return rc == SQLITE_DONE ? 0 : SD_EDB;
}

static int recompute_text_views(sd_core *c) {
  sqlite3_stmt *st;
  float *buf = malloc(sizeof(float) * 2 * (size_t)c->vc.dim);
  int64_t after = 0, id, t;
  int rc = buf ? 0 : SD_ENOMEM, more = 1;
  char uid[SD_MAX_ID + 1];
  while (rc == 0 && more) {
    st = sd_store_stmt(c->db, "SELECT id,user_id FROM users WHERE id>?1 "
                              "AND n_texts>0 ORDER BY id LIMIT 1");
    if (!st) rc = SD_EDB;
    else {
      sqlite3_bind_int64(st, 1, after);
      more = sqlite3_step(st) == SQLITE_ROW;
      if (more) {
        after = id = sqlite3_column_int64(st, 0);
        snprintf(uid, sizeof(uid), "%s", (const char *)sqlite3_column_text(st, 1));
      }
      sqlite3_reset(st);
    }
    if (rc == 0 && more) rc = user_text_view(c, uid, buf, buf + c->vc.dim, &t);
    if (rc == 0 && more) {
      st = sd_store_stmt(c->db, "UPDATE users SET text_sum=?2,text_t=?3 WHERE id=?1");
      if (!st) return free(buf), SD_EDB;
      sqlite3_bind_int64(st, 1, id);
      sqlite3_bind_blob(st, 2, buf, (int)(sizeof(float) * (size_t)c->vc.dim),
                        SQLITE_STATIC);
      sqlite3_bind_int64(st, 3, t);
      if (sqlite3_step(st) != SQLITE_DONE) rc = SD_EDB;
    }
  }
  free(buf);
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
        c->db, "INSERT INTO lineage(space,version,kind,clusters,created_at) "
               "VALUES(?1,?2,?3,?4,?5)");
    if (!st || !js) return free(js), st ? SD_ENOMEM : SD_EDB;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    sqlite3_bind_text(st, 3, e->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, js, -1, free);
    sqlite3_bind_int64(st, 5, now);
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
  if (rc == 0) rc = reassign_all(c, p, p->proj);
  if (rc == 0 && p->proj) rc = recompute_text_views(c);
  if (rc == 0) rc = write_model_row(c, p, version, now);
  if (rc == 0) rc = write_clusters(c, p, now);
  if (rc == 0) rc = write_lineage(c, p, version, now);
  if (rc == 0) rc = sd_store_exec(c->db, "COMMIT");
  if (rc < 0) {
    sd_log_error("installing a %s model failed: %s", c->spaces[p->space].name,
                 sqlite3_errmsg(sd_store_db(c->db)));
    sd_store_exec(c->db, "ROLLBACK");
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

int core_install(sd_core *c, sd_proposal *p, json_t **summary) {
  sd_space *sp = &c->spaces[p->space];
  int64_t t0 = sd_mono_ns(), now = sd_now_ms(), version = sp->version + 1;
  if (p->dim != sp->dim) return SD_EINVAL;
  int rc = install_tx(c, p, version, now);
  if (rc < 0) return rc;
  if (p->proj) {
    sd_proj_unref(c->proj);
    c->proj = sd_proj_ref(p->proj);
  }
  float *w = p->weights;
  rc = sd_space_set_model(sp, p->k, p->ids, p->centroids, w, version, now,
                          p->inertia, sd_algo_name(p->algo));
  char *q = json_dumps(p->quality, JSON_COMPACT);
  if (rc == 0) rc = sd_space_set_quality(sp, q);
  free(q);
  if (rc == 0) rc = core_load_cluster_rows(c, sp);
  if (rc == 0) rc = core_rebuild_members(c, p->space, 0);
  sp->points_at_train = sp->points;
  if (rc == 0) rc = core_publish(c);
  if (rc == 0) *summary = install_summary(sp, p, (sd_mono_ns() - t0) / 1000000);
  struct sd_maint *m = atomic_load(&c->maint);
  sd_space *seg = &c->spaces[SD_SPACE_SEGMENTS];
  if (rc == 0 && p->proj && seg->has_model && m) { /* users' vectors moved */
    sd_recluster_req req = {SD_SPACE_SEGMENTS, SD_ALGO_KMEANS, (int)c->cfg->k,
                            0, 0x5e9d};
    int64_t job;
    if (sd_maint_submit(m, &req, NULL, NULL, &job) == 0)
      sd_log_info("encoder refitted: segments re-cluster queued (job %lld)",
                  (long long)job);
  }
  return rc;
}
