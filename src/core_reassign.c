/*
 * core_reassign.c -- moving every entity of a space onto a newly installed
 * model, in small steps on the writer thread, between ingest groups.
 *
 * The install (core_install.c) swaps the model in one short transaction
 * and starts a re-assignment here; from then on new entities already use
 * the new model and projection. Each step takes one chunk of
 * --reassign-chunk rows in rowid order, re-embeds texts whose vectors came
 * from an older projection, assigns them to the live centroids and commits,
 * together with the cursor (meta key "reassign"), so a crash or restart
 * resumes where it stopped. After an encoder refit, a second phase
 * recomputes users' text views (a fifth as many users per step). Ingest
 * waits for at most one chunk instead of the whole space.
 */
#include "core_int.h"

#include "segmentd/err.h"
#include "segmentd/lookup_cache.h"
#include "segmentd/log.h"
#include "segmentd/maint.h"
#include "segmentd/timeutil.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct {
  int64_t id;
  float *x; /* the entity's (new) vector */
  int keep_embedding;
} ent;

static const char SQL_TEXT_CHUNK[] =
    "SELECT id,text,embedding,embedder_id FROM texts WHERE id>?1 "
    "ORDER BY id LIMIT ?2"; /* rows waiting for an embedding are skipped */
static const char SQL_TEXT_SET[] =
    "UPDATE texts SET cluster=?2,similarity=?3,confidence=?4,"
    "embedding=coalesce(?5,embedding),embedder_id=coalesce(?6,embedder_id) "
    "WHERE id=?1";
static const char SQL_USER_CHUNK[] =
    "SELECT id," SD_VIEWS_COLS " FROM users WHERE id>?1 ORDER BY id LIMIT ?2";
static const char SQL_USER_SET[] =
    "UPDATE users SET cluster=?2,similarity=?3,confidence=?4 WHERE id=?1";

static void unit(float *v, int n) {
  float len = cblas_snrm2(n, v, 1);
  if (len > 0) cblas_sscal(n, 1.0f / len, v, 1);
}

/* Assigns n vectors to the live model and updates their rows. */
static int assign_rows(sd_core *c, const sd_space *sp, const ent *e, size_t n) {
  int texts = sp->index == SD_SPACE_INTENTS;
  for (size_t i = 0; i < n; i++) {
    int idx;
    float sim, conf;
    int rc = sd_space_assign(sp, e[i].x, &idx, &sim, &conf);
    if (rc < 0) return rc;
    sqlite3_stmt *st = sd_store_stmt(c->db, texts ? SQL_TEXT_SET : SQL_USER_SET);
    if (!st) return SD_EDB;
    sqlite3_bind_int64(st, 1, e[i].id);
    sqlite3_bind_int64(st, 2, sp->ids[idx]);
    sqlite3_bind_double(st, 3, sim);
    sqlite3_bind_double(st, 4, conf);
    if (texts && !e[i].keep_embedding) {
      sqlite3_bind_blob(st, 5, e[i].x, (int)(sizeof(float) * (size_t)sp->dim),
                        SQLITE_STATIC);
      sqlite3_bind_int64(st, 6, c->proj->embedder_id);
    }
    if (sqlite3_step(st) != SQLITE_DONE) return SD_EDB;
  }
  return 0;
}

/* One chunk of texts after *after; vectors of an older projection are
 * re-embedded with the live one. */
static int text_chunk(sd_core *c, int64_t *after, ent *e, float *xs,
                      size_t *n, size_t *read) {
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_TEXT_CHUNK);
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, *after);
  sqlite3_bind_int64(st, 2, c->cfg->reassign_chunk);
  int rc, err = 0, dim = c->vc.dim;
  *n = *read = 0;
  while (err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    ent *x = &e[*n];
    (*read)++;
    x->id = *after = sqlite3_column_int64(st, 0);
    x->x = xs + *n * (size_t)dim;
    if (sqlite3_column_type(st, 2) == SQLITE_NULL)
      continue; /* queued for its embedding: placed when it arrives */
    int64_t emb = sqlite3_column_int64(st, 3);
    int client = emb == c->client_embedder_id || c->remote;
    x->keep_embedding = client || emb == c->proj->embedder_id;
    if (x->keep_embedding && core_blob_floats(st, 2, x->x, dim) == 0) {
      unit(x->x, dim);
    } else if (!client) {
      x->keep_embedding = 0;
      err = sd_encoder_encode_text_proj(c->enc, c->proj,
                                        (const char *)sqlite3_column_text(st, 1),
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
                      sd_user_buf *ub, size_t *n, size_t *read) {
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_USER_CHUNK);
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, *after);
  sqlite3_bind_int64(st, 2, c->cfg->reassign_chunk);
  int rc, w = sd_views_width(&c->vc);
  *n = *read = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    (*read)++;
    *after = sqlite3_column_int64(st, 0);
    sd_views_read(st, 1, &c->vc, &ub->u);
    e[*n] = (ent){*after, xs + *n * (size_t)w, 1};
    if (sd_views_vector(&c->vc, &ub->u, e[*n].x)) (*n)++;
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : SD_EDB;
}

/* Phase 0: one chunk of the space's entities. *more says whether rows
 * remain. */
static int entities_step(sd_core *c, int64_t *after, int *more) {
  sd_space *sp = &c->spaces[c->reassign.space];
  int texts = sp->index == SD_SPACE_INTENTS, w = sd_views_width(&c->vc);
  size_t chunk = (size_t)c->cfg->reassign_chunk;
  ent *e = malloc(sizeof(ent) * chunk);
  float *xs = malloc(sizeof(float) * chunk * (size_t)(texts ? c->vc.dim : w));
  sd_user_buf ub = {0};
  size_t n = 0, read = 0;
  int rc = e && xs ? sd_user_buf_init(&ub, &c->vc) : SD_ENOMEM;
  if (rc == 0)
    rc = texts ? text_chunk(c, after, e, xs, &n, &read)
               : user_chunk(c, after, e, xs, &ub, &n, &read);
  if (rc == 0) rc = assign_rows(c, sp, e, n);
  if (rc == 0) c->reassign.rows += (int64_t)n;
  *more = read == chunk;
  free(e), free(xs);
  sd_user_buf_free(&ub);
  return rc;
}

/* ---- phase 1: users' text views after an encoder refit ---- */

static const char SQL_USER_TEXTS[] =
    "SELECT ts,embedding FROM texts WHERE user_id=?1 ORDER BY ts";

/* One user's text view from their texts' (new) embeddings. */
static int user_text_view(sd_core *c, const char *user_id, float *sum,
                          float *tmp, int64_t *t) {
  sqlite3_stmt *st = sd_store_stmt(c->db, SQL_USER_TEXTS);
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, user_id, -1, SQLITE_TRANSIENT);
  float time_scratch[SD_TIME_DIM] = {0}; /* the time view is not rebuilt */
  sd_user_state u = {.text_sum = sum, .time_sum = time_scratch};
  memset(sum, 0, sizeof(float) * (size_t)c->vc.dim);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (core_blob_floats(st, 1, tmp, c->vc.dim) < 0) continue;
    unit(tmp, c->vc.dim);
    sd_views_add_text_vec(&c->vc, &u, tmp, sqlite3_column_int64(st, 0));
  }
  sqlite3_reset(st);
  *t = u.text_t;
  return rc == SQLITE_DONE ? 0 : SD_EDB;
}

/* The next user with texts after *after (id and user id), 0 when none. */
static int next_user(sd_core *c, int64_t *after, char *uid, size_t cap) {
  sqlite3_stmt *st = sd_store_stmt(c->db, "SELECT id,user_id FROM users WHERE "
                                          "id>?1 AND n_texts>0 ORDER BY id LIMIT 1");
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, *after);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *after = sqlite3_column_int64(st, 0);
    snprintf(uid, cap, "%s", (const char *)sqlite3_column_text(st, 1));
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : SD_EDB;
}

static int views_step(sd_core *c, int64_t *after, int *more) {
  float *buf = malloc(sizeof(float) * 2 * (size_t)c->vc.dim);
  char uid[SD_MAX_ID + 1];
  int rc = buf ? 0 : SD_ENOMEM, got = 0;
  long users = c->cfg->reassign_chunk / 5 > 0 ? c->cfg->reassign_chunk / 5 : 1;
  for (long i = 0; i < users && rc == 0; i++) {
    int64_t t;
    if ((got = next_user(c, after, uid, sizeof(uid))) <= 0) {
      rc = got;
      break;
    }
    rc = user_text_view(c, uid, buf, buf + c->vc.dim, &t);
    sqlite3_stmt *st = rc == 0 ? sd_store_stmt(
        c->db, "UPDATE users SET text_sum=?2,text_t=?3 WHERE id=?1") : NULL;
    if (rc == 0 && !st) rc = SD_EDB;
    if (rc == 0) {
      sqlite3_bind_int64(st, 1, *after);
      sqlite3_bind_blob(st, 2, buf, (int)(sizeof(float) * (size_t)c->vc.dim),
                        SQLITE_STATIC);
      sqlite3_bind_int64(st, 3, t);
      if (sqlite3_step(st) != SQLITE_DONE) rc = SD_EDB;
    }
  }
  *more = got > 0;
  free(buf);
  return rc;
}

/* ---- the state machine ---- */

static int save_state(sd_core *c) {
  char v[160];
  const core_reassign_state *r = &c->reassign;
  if (!r->active) return sd_store_exec(c->db, "DELETE FROM meta WHERE key='reassign'");
  snprintf(v, sizeof(v), "{\"space\":%d,\"version\":%lld,\"phase\":%d,"
           "\"after\":%lld,\"refit\":%d}", r->space, (long long)r->version,
           r->phase, (long long)r->after, r->refit);
  return sd_store_meta_set(c->db, "reassign", v);
}

int core_reassign_start(sd_core *c, int space, int64_t version, int refit) {
  c->reassign = (core_reassign_state){1, space, version, 0, 0, refit, NULL,
                                      sd_mono_ns(), 0};
  return save_state(c); /* inside the install's transaction */
}

/* The end: exact member counts, a snapshot, the waiting job. */
static void finish(sd_core *c) {
  core_reassign_state done = c->reassign, *r = &done;
  memset(&c->reassign, 0, sizeof(c->reassign)); /* published as finished */
  int64_t ms = (sd_mono_ns() - r->started_ns) / 1000000;
  sd_log_info("re-assigned %lld %s to model v%lld in %lld ms",
              (long long)r->rows, c->spaces[r->space].entity,
              (long long)r->version, (long long)ms);
  if (core_rebuild_members(c, r->space, 0) < 0 || core_publish(c) < 0)
    sd_log_error("re-assignment: rebuilding member counts failed");
  struct sd_maint *m = atomic_load(&c->maint);
  sd_space *seg = &c->spaces[SD_SPACE_SEGMENTS];
  if (r->refit && seg->has_model && m) { /* users' vectors moved */
    sd_recluster_req req = {SD_SPACE_SEGMENTS, SD_ALGO_KMEANS, (int)c->cfg->k,
                            0, 0x5e9d, 0};
    int64_t job;
    if (sd_maint_submit(m, &req, NULL, NULL, &job) == 0)
      sd_log_info("encoder refitted: segments re-cluster queued (job %lld)",
                  (long long)job);
  }
  sd_job *w = r->waiter;
  if (w) {
    json_object_set_new((json_t *)w->ud2, "reassign_ms", json_integer(ms));
    w->rc = 0;
    w->done(w, w->ud);
  }
}

/* One chunk in its own transaction, with the cursor. */
void core_reassign_step(sd_core *c) {
  core_reassign_state *r = &c->reassign;
  int64_t after = r->after;
  int more = 0, rc = sd_store_exec(c->db, "BEGIN IMMEDIATE");
  if (rc == 0)
    rc = r->phase == 0 ? entities_step(c, &after, &more)
                       : views_step(c, &after, &more);
  core_reassign_state saved = *r;
  saved.rows = r->rows; /* a counter, not rolled back */
  if (rc == 0) {
    r->after = after;
    if (!more && r->phase == 0 && r->refit && r->space == SD_SPACE_INTENTS) {
      r->phase = 1;
      r->after = 0;
      more = 1;
    }
    r->active = more;
    rc = save_state(c);
    if (rc == 0 && !more && r->space == SD_SPACE_SEGMENTS)
      rc = core_sync_snapshot(c, r->version); /* every user is moved */
  }
  if (rc == 0) rc = sd_store_commit(c->db);
  if (rc == 0) sd_lookup_cache_clear(); /* users and texts moved */
  if (rc < 0) {
    sd_store_exec(c->db, "ROLLBACK");
    *r = saved; /* retried at the next step */
    sd_log_error("re-assignment step failed; will retry");
    return;
  }
  if (!r->active) {
    r->active = 1; /* finish() takes the state over */
    finish(c);
  }
}

int core_reassign_load(sd_core *c) {
  char v[160];
  int rc = sd_store_meta_get(c->db, "reassign", v, sizeof(v));
  if (rc == SD_ENOTFOUND) return 0;
  if (rc < 0) return rc;
  json_t *o = json_loads(v, 0, NULL);
  if (!o) return SD_EDB;
  c->reassign = (core_reassign_state){
      1, (int)json_integer_value(json_object_get(o, "space")),
      json_integer_value(json_object_get(o, "version")),
      (int)json_integer_value(json_object_get(o, "phase")),
      json_integer_value(json_object_get(o, "after")),
      (int)json_integer_value(json_object_get(o, "refit")), NULL, sd_mono_ns(), 0};
  json_decref(o);
  if (c->reassign.space < 0 || c->reassign.space >= SD_SPACES) {
    memset(&c->reassign, 0, sizeof(c->reassign));
    return SD_EDB;
  }
  sd_log_info("resuming the re-assignment of %s to model v%lld",
              c->spaces[c->reassign.space].name, (long long)c->reassign.version);
  return 0;
}

/* At stop: the job waiting for the end hears the model is live but the
 * re-assignment continues at the next start. */
void core_reassign_abandon(sd_core *c) {
  sd_job *w = c->reassign.waiter;
  c->reassign.waiter = NULL;
  if (!w) return;
  w->rc = SD_ESHUTDOWN;
  w->done(w, w->ud);
}
