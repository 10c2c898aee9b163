/*
 * handlers_users.c -- GET /v1/users/{id}, GET /v1/users/{id}/segment,
 * POST /v1/segments/lookup, POST /v1/assign.
 *
 * A user's stored state is read through the calling thread's read-only
 * connection (WAL: never blocked by the writer, and it sees every commit
 * that finished before the read began); similarities are computed against
 * the published snapshot's centroids.
 */
#include "handlers.h"
#include "segmentd/embed_queue.h"
#include "segmentd/embed.h"
#include "segmentd/err.h"
#include "segmentd/ingest.h"
#include "segmentd/snapshot.h"
#include "segmentd/space.h"
#include "segmentd/store.h"
#include "segmentd/timeutil.h"
#include "segmentd/views.h"
#include "segmentd/views_store.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LOOKUP_MAX 1000
#define ALTERNATIVES 3

typedef struct {
  int64_t updated_at;
  int has_cluster;
  int64_t cluster;
  sd_user_state *v; /* counters and views (NULL: counters not wanted) */
  int64_t first_seen, last_seen, n_events, n_texts;
} user_row;

static const char SQL_USER_READ[] =
    "SELECT first_seen,last_seen,n_events,n_texts,updated_at,cluster,"
    SD_VIEWS_COLS " FROM users WHERE user_id=?1";
static const char SQL_USER_INTENTS[] =
    "SELECT cluster,count(*) FROM texts WHERE user_id=?1 AND cluster IS NOT "
    "NULL GROUP BY cluster ORDER BY 2 DESC, 1 LIMIT 10";

/* Reads the user's row (views into u->v when set); 0, SD_ENOTFOUND or
 * SD_EDB. */
static int user_read(const char *user_id, const sd_views_conf *vc,
                     user_row *u) {
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(rd, SQL_USER_READ) : NULL;
  if (!st) return SD_EDB;
  sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    u->first_seen = sqlite3_column_int64(st, 0);
    u->last_seen = sqlite3_column_int64(st, 1);
    u->n_events = sqlite3_column_int64(st, 2);
    u->n_texts = sqlite3_column_int64(st, 3);
    u->updated_at = sqlite3_column_int64(st, 4);
    u->has_cluster = sqlite3_column_type(st, 5) != SQLITE_NULL;
    u->cluster = sqlite3_column_int64(st, 5);
    if (u->v) sd_views_read(st, 6, vc, u->v);
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? SD_ENOTFOUND : SD_EDB;
}

/* The user's intents: clusters of their texts with shares. */
static json_t *user_intents(const char *user_id, const sd_snapshot *snap) {
  const sd_snap_space *in = &snap->spaces[SD_SPACE_INTENTS];
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(rd, SQL_USER_INTENTS) : NULL;
  json_t *a = json_array();
  if (!st || !a) return a;
  sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
  int64_t total = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0), n = sqlite3_column_int64(st, 1);
    int i = sd_snap_cluster_index(in, id);
    total += n;
    json_array_append_new(a, json_pack("{s:I,s:s?,s:I}", "id", (json_int_t)id,
                                       "label", i >= 0 ? in->clusters[i].label : NULL,
                                       "share", (json_int_t)n));
  }
  sqlite3_reset(st);
  size_t k;
  json_t *v;
  json_array_foreach(a, k, v) {
    double n = (double)json_integer_value(json_object_get(v, "share"));
    json_object_set_new(v, "share", json_real(total ? n / (double)total : 0));
  }
  return a;
}

/* The name of coordinate i of view v of a user vector, or NULL. */
static const char *feature_name(const sd_snapshot *snap, int v, int i) {
  if (v == SD_VIEW_BEH) return snap->beh_names[i];
  if (v == SD_VIEW_CTX) return snap->ctx_names[i];
  if (v == SD_VIEW_TIME) return sd_views_time_name(i);
  return NULL; /* text: latent dimensions have no names */
}

/* The named coordinates of one view that add most to x.c. */
static json_t *view_top(const sd_snapshot *snap, int v, const float *x,
                        const float *c, int n) {
  json_t *a = json_array();
  int used[SD_CTX_DIM > SD_BEH_DIM ? SD_CTX_DIM : SD_BEH_DIM] = {0};
  for (int k = 0; k < 5 && a && v != SD_VIEW_TEXT; k++) {
    int best = -1;
    for (int i = 0; i < n; i++)
      if (!used[i] && feature_name(snap, v, i) && x[i] * c[i] > 0 &&
          (best < 0 || x[i] * c[i] > x[best] * c[best]))
        best = i;
    if (best < 0) break;
    used[best] = 1;
    json_array_append_new(a, json_pack("{s:s,s:f}", "feature",
                                       feature_name(snap, v, best), "weight",
                                       (double)(x[best] * c[best])));
  }
  return a;
}

/* Per-view contributions x_v.c_v (they add up to x.c) with their top
 * features, and the margin to the runner-up. */
static json_t *explain(const sd_snapshot *snap, const sd_snap_space *sp,
                       const sd_views_conf *vc, const float *x, int i,
                       float margin) {
  const float *c = sp->centroids + (size_t)i * sp->dim;
  json_t *views = json_array();
  for (int v = 0; v < SD_VIEWS && views; v++) {
    int off = sd_views_offset(vc, v), n = sd_views_len(vc, v);
    float part = cblas_sdot(n, x + off, 1, c + off, 1);
    json_array_append_new(views, json_pack("{s:s,s:f,s:o}", "view",
                                           sd_views_name(v), "contribution",
                                           (double)part, "top_features",
                                           view_top(snap, v, x + off, c + off, n)));
  }
  return json_pack("{s:f,s:o}", "margin", (double)margin, "views", views);
}

/* Fills o with segment, alternatives (and explanation) for vector x. */
static void segment_fields(json_t *o, const sd_snapshot *snap, const float *x,
                           int any, const user_row *u, int want_explain,
                           const sd_views_conf *vc) {
  const sd_snap_space *sp = &snap->spaces[SD_SPACE_SEGMENTS];
  int i = sp->has_model && any && u->has_cluster
              ? sd_snap_cluster_index(sp, u->cluster) : -1;
  json_t *alts = json_array();
  if (i < 0) {
    json_object_set_new(o, "segment", json_null());
    json_object_set_new(o, "alternatives", alts);
    return;
  }
  float sims[sp->k > 0 ? sp->k : 1];
  int best[ALTERNATIVES + 1];
  h_rank(sp, x, sims, best, ALTERNATIVES + 1);
  float other = -2.0f;
  for (int j = 0; j < ALTERNATIVES + 1; j++) {
    if (best[j] < 0 || best[j] == i) continue;
    if (other < -1.5f) other = sims[best[j]];
    if (json_array_size(alts) < ALTERNATIVES)
      json_array_append_new(alts, h_cluster_ref(sp, best[j], sims[best[j]]));
  }
  json_t *seg = h_cluster_ref(sp, i, sims[i]);
  json_object_set_new(seg, "confidence",
                      json_real(sd_confidence(sims[i], other < -1.5f ? -INFINITY
                                                                     : other)));
  json_object_set_new(o, "segment", seg);
  json_object_set_new(o, "alternatives", alts);
  if (want_explain)
    json_object_set_new(o, "explanation",
                        explain(snap, sp, vc, x, i,
                                other < -1.5f ? sims[i] : sims[i] - other));
}

/* Which views the user has stored. */
static json_t *views_present(const sd_user_state *u) {
  return json_pack("{s:b,s:b,s:b,s:b}", "text", u->text_t != 0, "behaviour",
                   u->beh_t != 0, "time", u->time_t != 0, "context",
                   u->ctx_t != 0);
}

/* The segment answer of one user (API.md), or NULL with *err set. */
static json_t *segment_answer(const sd_config *cfg, const sd_snapshot *snap,
                              const char *user_id, int want_explain, int *err) {
  sd_views_conf vc = sd_views_conf_of(cfg, snap->beh_idf);
  sd_user_buf ub;
  float *x = malloc(sizeof(float) * (size_t)sd_views_width(&vc));
  if (!x || sd_user_buf_init(&ub, &vc) < 0) {
    free(x);
    return *err = SD_ENOMEM, NULL;
  }
  user_row u = {.v = &ub.u};
  json_t *o = NULL;
  if ((*err = user_read(user_id, &vc, &u)) == 0) {
    int any = sd_views_vector(&vc, &ub.u, x);
    const sd_snap_space *sp = &snap->spaces[SD_SPACE_SEGMENTS];
    o = json_pack("{s:s,s:I,s:o,s:o}", "user_id", user_id, "model_version",
                  (json_int_t)sp->version, "updated_at", h_time(u.updated_at),
                  "computed_at", h_time(sd_now_ms()));
    if (o) {
      segment_fields(o, snap, x, any, &u, want_explain, &vc);
      json_object_set_new(o, "intents", u.n_texts > 0 /* else no query */
                                            ? user_intents(user_id, snap)
                                            : json_array());
      json_object_set_new(o, "views", views_present(&ub.u));
    } else {
      *err = SD_ENOMEM;
    }
  }
  sd_user_buf_free(&ub);
  free(x);
  return o;
}

static int answer_error(sd_reply *rep, int err, const char *user_id) {
  (void)user_id;
  return sd_reply_error(rep, err, err == SD_ENOTFOUND ? "unknown user" : NULL,
                        NULL);
}

/* One read transaction around several statements: one consistent view of
 * the database, and one lock round trip instead of one per statement. */
static void read_begin(void) {
  sd_store *rd = sd_store_reader();
  if (rd) sd_store_exec(rd, "BEGIN");
}

static void read_end(void) {
  sd_store *rd = sd_store_reader();
  if (rd) sd_store_exec(rd, "COMMIT");
}

int h_user_segment(sd_req *req, sd_reply *rep) {
  const char *ex = sd_req_query(req, "explain");
  int want = ex && (!strcmp(ex, "true") || !strcmp(ex, "1"));
  if (ex && !want && strcmp(ex, "false") && strcmp(ex, "0"))
    return sd_reply_error(rep, SD_EINVAL, "explain must be true or false", NULL);
  sd_snapshot *snap = sd_snapshot_acquire();
  if (!snap) return sd_reply_error(rep, SD_ENOTREADY, NULL, NULL);
  int err = 0;
  read_begin();
  json_t *o = segment_answer(req->cfg, snap, req->params[0], want, &err);
  read_end();
  sd_snapshot_release(snap);
  return o ? sd_reply_json(rep, 200, o) : answer_error(rep, err, req->params[0]);
}

/* Checks the lookup body: {"user_ids": [1..1000 strings]}. */
static json_t *lookup_ids(sd_req *req, sd_reply *rep, json_t **body) {
  *body = h_body_object(req, rep);
  if (!*body) return NULL;
  json_t *ids = json_object_get(*body, "user_ids");
  const char *problem = NULL;
  size_t i;
  json_t *v;
  if (json_is_array(ids) && json_array_size(ids) > LOOKUP_MAX) {
    sd_reply_error(rep, SD_ETOOLARGE, "at most 1000 user ids per lookup", NULL);
    return NULL;
  }
  if (!json_is_array(ids)) problem = "must be an array of user ids";
  else if (json_array_size(ids) == 0) problem = "must not be empty";
  json_array_foreach(ids, i, v) {
    if (problem) break;
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) > (size_t)req->cfg->max_id)
      problem = "every user id must be a non-empty string within the id "
                "limit (--max-id, default 256 bytes)";
  }
  if (problem) {
    sd_reply_error(rep, SD_EINVALID, problem,
                   json_pack("[{s:s,s:s}]", "field", "user_ids", "problem",
                             problem));
    return NULL;
  }
  return ids;
}

int h_segments_lookup(sd_req *req, sd_reply *rep) {
  json_t *body, *ids = lookup_ids(req, rep, &body);
  if (!ids) {
    json_decref(body);
    return SD_EINVALID;
  }
  sd_snapshot *snap = sd_snapshot_acquire();
  json_t *results = json_array();
  size_t i;
  json_t *v;
  read_begin();
  json_array_foreach(ids, i, v) {
    int err = 0;
    const char *uid = json_string_value(v);
    json_t *o = snap ? segment_answer(req->cfg, snap, uid, 0, &err) : NULL;
    if (!o)
      o = json_pack("{s:s,s:s}", "user_id", uid, "error",
                    sd_err_code(snap ? err : SD_ENOTREADY));
    json_array_append_new(results, o);
  }
  read_end();
  sd_snapshot_release(snap);
  json_decref(body);
  return sd_reply_json(rep, 200, json_pack("{s:o}", "results", results));
}

int h_user(sd_req *req, sd_reply *rep) {
  const char *uid = req->params[0];
  sd_snapshot *snap = sd_snapshot_acquire();
  if (!snap) return sd_reply_error(rep, SD_ENOTREADY, NULL, NULL);
  int err = 0;
  json_t *seg = segment_answer(req->cfg, snap, uid, 0, &err);
  sd_snapshot_release(snap);
  if (!seg) return answer_error(rep, err, uid);
  user_row u = {0}; /* counts only: no vectors */
  sd_views_conf vc = sd_views_conf_of(req->cfg, NULL);
  if ((err = user_read(uid, &vc, &u)) < 0) {
    json_decref(seg);
    return answer_error(rep, err, uid);
  }
  json_t *o = json_pack("{s:s,s:{s:I,s:I},s:O,s:o,s:o,s:o,s:O,s:O,s:O}",
                        "user_id", uid, "counts", "events", (json_int_t)u.n_events,
                        "texts", (json_int_t)u.n_texts, "views",
                        json_object_get(seg, "views"), "first_seen",
                        h_time(u.first_seen), "last_seen", h_time(u.last_seen),
                        "updated_at", h_time(u.updated_at), "segment",
                        json_object_get(seg, "segment"), "intents",
                        json_object_get(seg, "intents"), "model_version",
                        json_object_get(seg, "model_version"));
  json_decref(seg);
  return sd_reply_json(rep, 200, o);
}

/* A text embedded by the remote embedder, now; 503 while it fails. */
static int assign_remote(sd_req *req, const char *text, size_t len, float *x,
                         sd_reply *rep) {
  char why[256];
  int rc = req->embedq ? sd_embedq_embed_one(req->embedq, text, len, x, why,
                                             sizeof(why))
                       : SD_ENOTREADY;
  if (rc < 0)
    return sd_reply_error(rep, SD_ENOTREADY,
                          req->embedq ? why : "no embedder", NULL);
  int dim = (int)req->cfg->dim;
  float n = cblas_snrm2(dim, x, 1);
  if (n > 0) cblas_sscal(dim, 1.0f / n, x, 1);
  return 0;
}

/* The query vector of an assign body: "text" (encoded) or "embedding". */
static int assign_vector(sd_req *req, json_t *body, const sd_snapshot *snap,
                         float *x, sd_reply *rep) {
  json_t *text = json_object_get(body, "text");
  json_t *emb = json_object_get(body, "embedding");
  const char *problem = NULL, *field = text ? "text" : "embedding";
  if (!text == !emb) {
    problem = "give exactly one of text or embedding";
    field = "text";
  } else if (text && (!json_is_string(text) || json_string_length(text) == 0)) {
    problem = "must be a non-empty string";
  } else if (text && json_string_length(text) > (size_t)req->cfg->max_text) {
    problem = "longer than the text limit";
  } else if (emb && sd_parse_vector(emb, (int)req->cfg->dim, x, &problem) == 0) {
    float len = cblas_snrm2((int)req->cfg->dim, x, 1);
    if (len > 0) cblas_sscal((int)req->cfg->dim, 1.0f / len, x, 1);
    else problem = "must not be all zeros";
  }
  if (problem)
    return sd_reply_error(rep, SD_EINVALID, problem,
                          json_pack("[{s:s,s:s}]", "field", field, "problem",
                                    problem));
  if (text && sd_core_remote(req->core))
    return assign_remote(req, json_string_value(text), json_string_length(text),
                         x, rep);
  if (text) /* with the projection of the model it is compared to */
    return sd_encoder_encode_text_proj(sd_core_encoder(req->core), snap->proj,
                                       json_string_value(text),
                                       json_string_length(text), x);
  return 0;
}

int h_assign(sd_req *req, sd_reply *rep) {
  json_t *body = h_body_object(req, rep);
  if (!body) return SD_EINVALID;
  float *x = calloc((size_t)req->cfg->dim, sizeof(float));
  if (!x) {
    json_decref(body);
    return sd_reply_error(rep, SD_ENOMEM, NULL, NULL);
  }
  sd_snapshot *snap = sd_snapshot_acquire();
  int rc = snap ? assign_vector(req, body, snap, x, rep)
                : sd_reply_error(rep, SD_ENOTREADY, NULL, NULL);
  json_decref(body);
  if (rc < 0) {
    free(x);
    sd_snapshot_release(snap);
    return rc;
  }
  const sd_snap_space *sp = &snap->spaces[SD_SPACE_INTENTS];
  json_t *o = json_pack("{s:n,s:[],s:I}", "intent", "alternatives",
                        "model_version", (json_int_t)sp->version);
  if (o && sp->has_model) {
    float sims[sp->k];
    int best[ALTERNATIVES + 1];
    h_rank(sp, x, sims, best, ALTERNATIVES + 1);
    json_t *in = h_cluster_ref(sp, best[0], sims[best[0]]);
    json_object_set_new(in, "confidence",
                        json_real(sd_confidence(sims[best[0]],
                                                best[1] >= 0 ? sims[best[1]]
                                                             : -INFINITY)));
    json_object_set_new(o, "intent", in);
    for (int j = 1; j <= ALTERNATIVES && best[j] >= 0; j++)
      json_array_append_new(json_object_get(o, "alternatives"),
                            h_cluster_ref(sp, best[j], sims[best[j]]));
  }
  free(x);
  sd_snapshot_release(snap);
  return sd_reply_json(rep, 200, o);
}
