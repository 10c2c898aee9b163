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
#include "segmentd/json_out.h"
#include "segmentd/lookup_cache.h"
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

/* The user's intents: clusters of their texts with shares, into a. */
static void user_intents(const char *user_id, sd_seg_answer *a) {
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(rd, SQL_USER_INTENTS) : NULL;
  a->n_intents = 0;
  if (!st) return;
  sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
  int64_t total = 0, n[SD_ANSWER_INTENTS];
  while (a->n_intents < SD_ANSWER_INTENTS && sqlite3_step(st) == SQLITE_ROW) {
    a->intent_id[a->n_intents] = (int32_t)sqlite3_column_int64(st, 0);
    total += n[a->n_intents++] = sqlite3_column_int64(st, 1);
  }
  sqlite3_reset(st);
  for (int j = 0; j < a->n_intents; j++)
    a->intent_share[j] = total ? (float)((double)n[j] / (double)total) : 0;
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

/* Ranks x against the segment centroids into a: the user's cluster (the
 * stored assignment), its similarity and confidence, the alternatives.
 * Returns the cluster's index (-1: no segment) and the margin to the
 * runner-up in *margin. */
static int answer_rank(const sd_snap_space *sp, const float *x, int any,
                       const user_row *u, sd_seg_answer *a, float *margin) {
  int i = sp->has_model && any && u->has_cluster
              ? sd_snap_cluster_index(sp, u->cluster) : -1;
  a->seg_id = -1;
  a->n_alts = 0;
  if (i < 0) return -1;
  float sims[sp->k > 0 ? sp->k : 1];
  int best[SD_ANSWER_ALTS + 1];
  h_rank(sp, x, sims, best, SD_ANSWER_ALTS + 1);
  float other = -2.0f;
  for (int j = 0; j < SD_ANSWER_ALTS + 1; j++) {
    if (best[j] < 0 || best[j] == i) continue;
    if (other < -1.5f) other = sims[best[j]];
    if (a->n_alts < SD_ANSWER_ALTS) {
      a->alt_id[a->n_alts] = sp->clusters[best[j]].id;
      a->alt_sim[a->n_alts++] = sims[best[j]];
    }
  }
  a->seg_id = sp->clusters[i].id;
  a->sim = sims[i];
  a->confidence = sd_confidence(sims[i], other < -1.5f ? -INFINITY : other);
  *margin = other < -1.5f ? sims[i] : sims[i] - other;
  return i;
}

/* Which views the user has stored, as bits in views.h order. */
static uint8_t views_bits(const sd_user_state *u) {
  return (uint8_t)((u->text_t != 0) << SD_VIEW_TEXT |
                   (u->beh_t != 0) << SD_VIEW_BEH |
                   (u->time_t != 0) << SD_VIEW_TIME |
                   (u->ctx_t != 0) << SD_VIEW_CTX);
}

/* Computes user_id's answer data from the database (x: the user vector,
 * width sd_views_width(vc)). Returns the segment's index or -1, or
 * SD_ENOTFOUND / SD_EDB in *err. */
static int answer_compute(const sd_snapshot *snap, const sd_views_conf *vc,
                          const char *user_id, sd_user_buf *ub, float *x,
                          sd_seg_answer *a, float *margin, int *err) {
  user_row u = {.v = &ub->u};
  if ((*err = user_read(user_id, vc, &u)) < 0) return -1;
  int any = sd_views_vector(vc, &ub->u, x);
  memset(a, 0, sizeof(*a));
  a->seg_version = snap->spaces[SD_SPACE_SEGMENTS].version;
  a->int_version = snap->spaces[SD_SPACE_INTENTS].version;
  a->updated_at = u.updated_at;
  a->computed_at = sd_now_ms();
  a->views = views_bits(&ub->u);
  int i = answer_rank(&snap->spaces[SD_SPACE_SEGMENTS], x, any, &u, a, margin);
  if (u.n_texts > 0) user_intents(user_id, a); /* else no query */
  return i;
}

/* {id, label, similarity[, confidence]} of cluster `id` of sp. */
static void write_cluster_ref(sd_jout *o, const sd_snap_space *sp, int32_t id,
                              float sim, const float *confidence) {
  int i = sd_snap_cluster_index(sp, id);
  sd_jout_lit(o, "{\"id\":");
  sd_jout_int(o, id);
  sd_jout_lit(o, ",\"label\":");
  sd_jout_str(o, i >= 0 ? sp->clusters[i].label : NULL);
  sd_jout_lit(o, ",\"similarity\":");
  sd_jout_real(o, sim);
  if (confidence) {
    sd_jout_lit(o, ",\"confidence\":");
    sd_jout_real(o, *confidence);
  }
  sd_jout_lit(o, "}");
}

/* "segment":{...} | null */
static void write_segment(sd_jout *o, const sd_snap_space *sp,
                          const sd_seg_answer *a) {
  sd_jout_lit(o, "\"segment\":");
  if (a->seg_id >= 0) write_cluster_ref(o, sp, a->seg_id, a->sim, &a->confidence);
  else sd_jout_lit(o, "null");
}

/* "alternatives":[...] */
static void write_alternatives(sd_jout *o, const sd_snap_space *sp,
                               const sd_seg_answer *a) {
  sd_jout_lit(o, "\"alternatives\":[");
  for (int j = 0; j < a->n_alts; j++) {
    if (j) sd_jout_lit(o, ",");
    write_cluster_ref(o, sp, a->alt_id[j], a->alt_sim[j], NULL);
  }
  sd_jout_lit(o, "]");
}

/* "intents":[{id, label, share}...] */
static void write_intents(sd_jout *o, const sd_snap_space *in,
                          const sd_seg_answer *a) {
  sd_jout_lit(o, "\"intents\":[");
  for (int j = 0; j < a->n_intents; j++) {
    int i = sd_snap_cluster_index(in, a->intent_id[j]);
    if (j) sd_jout_lit(o, ",");
    sd_jout_lit(o, "{\"id\":");
    sd_jout_int(o, a->intent_id[j]);
    sd_jout_lit(o, ",\"label\":");
    sd_jout_str(o, i >= 0 ? in->clusters[i].label : NULL);
    sd_jout_lit(o, ",\"share\":");
    sd_jout_real(o, a->intent_share[j]);
    sd_jout_lit(o, "}");
  }
  sd_jout_lit(o, "]");
}

/* "views":{text, behaviour, time, context: stored or not} */
static void write_views(sd_jout *o, int bits) {
  static const char *const key[SD_VIEWS] = {"{\"text\":", ",\"behaviour\":",
                                            ",\"time\":", ",\"context\":"};
  sd_jout_lit(o, "\"views\":");
  for (int v = 0; v < SD_VIEWS; v++) {
    sd_jout_raw(o, key[v], strlen(key[v]));
    sd_jout_bool(o, bits >> v & 1);
  }
  sd_jout_lit(o, "}");
}

/* The segment answer (API.md) of answer data a, labels from snap, with
 * the explanation when given. */
static void write_answer(sd_jout *o, const sd_snapshot *snap,
                         const char *user_id, const sd_seg_answer *a,
                         json_t *explanation) {
  sd_jout_lit(o, "{\"user_id\":");
  sd_jout_str(o, user_id);
  sd_jout_lit(o, ",\"model_version\":");
  sd_jout_int(o, a->seg_version);
  sd_jout_lit(o, ",\"updated_at\":");
  sd_jout_time(o, a->updated_at);
  sd_jout_lit(o, ",\"computed_at\":");
  sd_jout_time(o, a->computed_at);
  sd_jout_lit(o, ",");
  write_segment(o, &snap->spaces[SD_SPACE_SEGMENTS], a);
  sd_jout_lit(o, ",");
  write_alternatives(o, &snap->spaces[SD_SPACE_SEGMENTS], a);
  sd_jout_lit(o, ",");
  write_intents(o, &snap->spaces[SD_SPACE_INTENTS], a);
  sd_jout_lit(o, ",");
  write_views(o, a->views);
  if (explanation) {
    char *e = json_dumps(explanation, JSON_COMPACT);
    if (!e) o->err = SD_ENOMEM;
    sd_jout_lit(o, ",\"explanation\":");
    if (e) sd_jout_raw(o, e, strlen(e));
    free(e);
  }
  sd_jout_lit(o, "}");
}

/* A read transaction opened by the first statement that needs one: one
 * consistent view of the database and one lock round trip for several
 * statements, none at all when every answer comes from the cache. */
typedef struct {
  int open;
} read_txn;

static void read_need(read_txn *t) {
  sd_store *rd = t->open ? NULL : sd_store_reader();
  if (rd && sd_store_exec(rd, "BEGIN") == 0) t->open = 1;
}

static void read_end(read_txn *t) {
  sd_store *rd = t->open ? sd_store_reader() : NULL;
  if (rd) sd_store_exec(rd, "COMMIT");
  t->open = 0;
}

/* The data of user_id's segment answer into *a: from the lookup cache
 * (lookup_cache.h) when it holds a valid copy, else computed (and kept).
 * With want_explain it is always computed, since the explanation needs
 * the user's vector: *explanation is set (NULL without a segment).
 * 0, or SD_ENOTFOUND, SD_EDB, SD_ENOMEM. */
static int segment_answer(const sd_config *cfg, const sd_snapshot *snap,
                          const char *user_id, read_txn *txn, sd_seg_answer *a,
                          json_t **explanation) {
  int err = 0;
  if (!explanation &&
      sd_lookup_cache_get(user_id, snap->spaces[SD_SPACE_SEGMENTS].version,
                          snap->spaces[SD_SPACE_INTENTS].version, sd_now_ms(),
                          a))
    return 0;
  sd_views_conf vc = sd_views_conf_of(cfg, snap->beh_idf);
  sd_user_buf ub;
  float *x = malloc(sizeof(float) * (size_t)sd_views_width(&vc));
  if (!x || sd_user_buf_init(&ub, &vc) < 0) {
    free(x);
    return SD_ENOMEM;
  }
  sd_lookup_ticket t = sd_lookup_cache_ticket(user_id);
  read_need(txn);
  float margin = 0;
  int i = answer_compute(snap, &vc, user_id, &ub, x, a, &margin, &err);
  if (err == 0 && !explanation) sd_lookup_cache_put(user_id, t, a);
  if (err == 0 && explanation)
    *explanation = i < 0 ? NULL
                         : explain(snap, &snap->spaces[SD_SPACE_SEGMENTS], &vc,
                                   x, i, margin);
  sd_user_buf_free(&ub);
  free(x);
  return err;
}

static int answer_error(sd_reply *rep, int err) {
  return sd_reply_error(rep, err, err == SD_ENOTFOUND ? "unknown user" : NULL,
                        NULL);
}

int h_user_segment(sd_req *req, sd_reply *rep) {
  const char *ex = sd_req_query(req, "explain");
  int want = ex && (!strcmp(ex, "true") || !strcmp(ex, "1"));
  if (ex && !want && strcmp(ex, "false") && strcmp(ex, "0"))
    return sd_reply_error(rep, SD_EINVAL, "explain must be true or false", NULL);
  sd_snapshot *snap = sd_snapshot_acquire();
  if (!snap) return sd_reply_error(rep, SD_ENOTREADY, NULL, NULL);
  read_txn txn = {0};
  sd_seg_answer a;
  json_t *expl = NULL;
  int err = segment_answer(req->cfg, snap, req->params[0], &txn, &a,
                           want ? &expl : NULL);
  read_end(&txn);
  sd_jout o = {0};
  if (err == 0) write_answer(&o, snap, req->params[0], &a, expl);
  json_decref(expl);
  sd_snapshot_release(snap);
  return err ? answer_error(rep, err) : h_reply_jout(rep, &o);
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

/* {"user_id", "error"}: the lookup result of an id without an answer. */
static void write_lookup_error(sd_jout *o, const char *user_id, int err) {
  sd_jout_lit(o, "{\"user_id\":");
  sd_jout_str(o, user_id);
  sd_jout_lit(o, ",\"error\":");
  sd_jout_str(o, sd_err_code(err));
  sd_jout_lit(o, "}");
}

int h_segments_lookup(sd_req *req, sd_reply *rep) {
  json_t *body, *ids = lookup_ids(req, rep, &body);
  if (!ids) {
    json_decref(body);
    return SD_EINVALID;
  }
  sd_snapshot *snap = sd_snapshot_acquire();
  sd_jout o = {0};
  read_txn txn = {0};
  size_t i;
  json_t *v;
  sd_jout_lit(&o, "{\"results\":[");
  json_array_foreach(ids, i, v) {
    const char *uid = json_string_value(v);
    sd_seg_answer a;
    int err = snap ? segment_answer(req->cfg, snap, uid, &txn, &a, NULL)
                   : SD_ENOTREADY;
    if (i) sd_jout_lit(&o, ",");
    if (err == 0) write_answer(&o, snap, uid, &a, NULL);
    else write_lookup_error(&o, uid, err);
  }
  sd_jout_lit(&o, "]}");
  read_end(&txn);
  sd_snapshot_release(snap);
  json_decref(body);
  return h_reply_jout(rep, &o);
}

int h_user(sd_req *req, sd_reply *rep) {
  const char *uid = req->params[0];
  sd_snapshot *snap = sd_snapshot_acquire();
  if (!snap) return sd_reply_error(rep, SD_ENOTREADY, NULL, NULL);
  read_txn txn = {0};
  sd_seg_answer a;
  user_row u = {0}; /* counts only: no vectors */
  sd_views_conf vc = sd_views_conf_of(req->cfg, NULL);
  int err = segment_answer(req->cfg, snap, uid, &txn, &a, NULL);
  read_need(&txn);
  if (err == 0) err = user_read(uid, &vc, &u);
  read_end(&txn);
  sd_jout o = {0};
  if (err == 0) {
    sd_jout_lit(&o, "{\"user_id\":");
    sd_jout_str(&o, uid);
    sd_jout_lit(&o, ",\"counts\":{\"events\":");
    sd_jout_int(&o, u.n_events);
    sd_jout_lit(&o, ",\"texts\":");
    sd_jout_int(&o, u.n_texts);
    sd_jout_lit(&o, "},");
    write_views(&o, a.views);
    sd_jout_lit(&o, ",\"first_seen\":");
    sd_jout_time(&o, u.first_seen);
    sd_jout_lit(&o, ",\"last_seen\":");
    sd_jout_time(&o, u.last_seen);
    sd_jout_lit(&o, ",\"updated_at\":");
    sd_jout_time(&o, u.updated_at);
    sd_jout_lit(&o, ",");
    write_segment(&o, &snap->spaces[SD_SPACE_SEGMENTS], &a);
    sd_jout_lit(&o, ",");
    write_intents(&o, &snap->spaces[SD_SPACE_INTENTS], &a);
    sd_jout_lit(&o, ",\"model_version\":");
    sd_jout_int(&o, a.seg_version);
    sd_jout_lit(&o, "}");
  }
  sd_snapshot_release(snap);
  return err ? answer_error(rep, err) : h_reply_jout(rep, &o);
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
    int best[SD_ANSWER_ALTS + 1];
    h_rank(sp, x, sims, best, SD_ANSWER_ALTS + 1);
    json_t *in = h_cluster_ref(sp, best[0], sims[best[0]]);
    json_object_set_new(in, "confidence",
                        json_real(sd_confidence(sims[best[0]],
                                                best[1] >= 0 ? sims[best[1]]
                                                             : -INFINITY)));
    json_object_set_new(o, "intent", in);
    for (int j = 1; j <= SD_ANSWER_ALTS && best[j] >= 0; j++)
      json_array_append_new(json_object_get(o, "alternatives"),
                            h_cluster_ref(sp, best[j], sims[best[j]]));
  }
  free(x);
  sd_snapshot_release(snap);
  return sd_reply_json(rep, 200, o);
}
