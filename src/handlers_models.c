/*
 * handlers_models.c -- POST /v1/spaces/{space}/recluster, GET
 * /v1/jobs/{id}, GET /v1/spaces/{space}/events (lineage) and POST
 * /v1/spaces/{space}/evaluate.
 *
 * A re-cluster runs on the maintenance thread. With "wait": true the
 * connection is suspended (no HTTP thread is held) and answered when the
 * new model is live; otherwise the answer is 202 with the job id.
 */
#include "handlers.h"
#include "segmentd/cluster_eval.h"
#include "segmentd/err.h"
#include "segmentd/maint.h"
#include "segmentd/snapshot.h"
#include "segmentd/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVAL_MAX 200000
#define EVENTS_MAX 1000

static int space_index(const char *name) {
  return !strcmp(name, "intents") ? SD_SPACE_INTENTS
         : !strcmp(name, "segments") ? SD_SPACE_SEGMENTS : -1;
}

static int field_problem(sd_reply *rep, const char *field, const char *what) {
  return sd_reply_error(rep, SD_EINVALID, what,
                        json_pack("[{s:s,s:s}]", "field", field, "problem", what));
}

/* Reads {"algorithm","k","wait","refit_encoder","seed"}; fills req, *wait. */
static int recluster_body(sd_req *r, sd_reply *rep, sd_recluster_req *req,
                          int *wait) {
  json_t *b = r->body_len ? h_body_object(r, rep) : json_object();
  if (!b) return SD_EINVALID;
  json_t *algo = json_object_get(b, "algorithm"), *k = json_object_get(b, "k");
  json_t *w = json_object_get(b, "wait"), *refit = json_object_get(b, "refit_encoder");
  json_t *seed = json_object_get(b, "seed");
  int rc = 0;
  if (algo && (!json_is_string(algo) ||
               sd_algo_parse(json_string_value(algo), &req->algo) < 0))
    rc = field_problem(rep, "algorithm", "must be kmeans, hierarchical or density");
  else if (k && !json_is_null(k) &&
           (!json_is_integer(k) || json_integer_value(k) < 1 ||
            json_integer_value(k) > r->cfg->k_max))
    rc = field_problem(rep, "k", "must be an integer from 1 to --k-max");
  else if (seed && (!json_is_integer(seed) || json_integer_value(seed) < 0))
    rc = field_problem(rep, "seed", "must be a non-negative integer");
  else if ((w && !json_is_boolean(w)) || (refit && !json_is_boolean(refit)))
    rc = field_problem(rep, w && !json_is_boolean(w) ? "wait" : "refit_encoder",
                       "must be true or false");
  if (rc == 0) {
    req->k = json_is_integer(k) ? (int)json_integer_value(k) : 0;
    *wait = json_is_true(w);
    if (refit) req->refit_encoder = json_is_true(refit);
    if (seed) req->seed = (uint64_t)json_integer_value(seed);
  }
  json_decref(b);
  return rc;
}

static void recluster_done(int64_t job, int rc, json_t *summary,
                           const char *why, void *ud) {
  sd_async *a = ud;
  if (rc < 0) {
    char msg[320];
    snprintf(msg, sizeof(msg), "re-cluster job %lld failed: %s", (long long)job,
             why && why[0] ? why : sd_err_message(rc));
    sd_reply_error(a->rep, rc == SD_EINVAL ? SD_EINVALID : rc, msg, NULL);
  } else {
    sd_reply_json(a->rep, 200, json_pack("{s:I,s:s,s:O}", "job_id",
                                         (json_int_t)job, "state", "done",
                                         "model", summary));
  }
  sd_async_resume(a);
}

typedef struct {
  struct sd_maint *maint;
  sd_recluster_req req;
} recluster_arg;

static int recluster_start(sd_async *a) {
  recluster_arg *ra = a->arg;
  int64_t job;
  int rc = sd_maint_submit(ra->maint, &ra->req, recluster_done, a, &job);
  if (rc == SD_EBUSY)
    sd_reply_error(a->rep, rc, "too many re-cluster jobs queued; retry later",
                   NULL);
  return rc;
}

int h_recluster(sd_req *req, sd_reply *rep) {
  int space = space_index(req->params[0]), wait = 0;
  if (space < 0)
    return sd_reply_error(rep, SD_ENOTFOUND, "no such space (intents | segments)", NULL);
  sd_recluster_req rr = {space, SD_ALGO_KMEANS, 0, space == SD_SPACE_INTENTS, 0x5e9d, 0};
  int rc = recluster_body(req, rep, &rr, &wait);
  if (rc < 0) return rc;
  if (wait) {
    recluster_arg *ra = malloc(sizeof(*ra));
    if (!ra) return sd_reply_error(rep, SD_ENOMEM, NULL, NULL);
    *ra = (recluster_arg){req->maint, rr};
    rep->async = recluster_start;
    rep->async_arg = ra;
    rep->async_free = free;
    return 0;
  }
  int64_t job;
  if ((rc = sd_maint_submit(req->maint, &rr, NULL, NULL, &job)) < 0)
    return sd_reply_error(rep, rc, rc == SD_EBUSY ? "too many re-cluster jobs "
                          "queued; retry later" : NULL, NULL);
  char url[64];
  snprintf(url, sizeof(url), "/v1/jobs/%lld", (long long)job);
  return sd_reply_json(rep, 202, json_pack("{s:I,s:s,s:s}", "job_id",
                                           (json_int_t)job, "state", "queued",
                                           "status_url", url));
}

int h_job(sd_req *req, sd_reply *rep) {
  char *end;
  long long id = strtoll(req->params[0], &end, 10);
  json_t *o = *end || id < 1 ? NULL : sd_maint_job_json(req->maint, id);
  if (!o) return sd_reply_error(rep, SD_ENOTFOUND, "no such job", NULL);
  return sd_reply_json(rep, 200, o);
}

/* ---- GET /v1/spaces/{space}/events ---- */

int h_lineage(sd_req *req, sd_reply *rep) {
  int space = space_index(req->params[0]);
  if (space < 0)
    return sd_reply_error(rep, SD_ENOTFOUND, "no such space (intents | segments)", NULL);
  const char *since = sd_req_query(req, "since"), *lim = sd_req_query(req, "limit");
  char *end = NULL;
  long long after = since ? strtoll(since, &end, 10) : 0;
  if (since && (!*since || *end || after < 0))
    return sd_reply_error(rep, SD_EINVAL, "since must be an event id (cursor)", NULL);
  long long limit = lim ? strtoll(lim, &end, 10) : 100;
  if (lim && (!*lim || *end || limit < 1 || limit > EVENTS_MAX))
    return sd_reply_error(rep, SD_EINVAL, "limit must be 1..1000", NULL);
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(rd,
      "SELECT id,version,kind,clusters,created_at,cause_alert FROM lineage "
      "WHERE space=?1 "
      "AND id>?2 ORDER BY id LIMIT ?3") : NULL;
  if (!st) return sd_reply_error(rep, SD_EDB, NULL, NULL);
  sqlite3_bind_text(st, 1, req->params[0], -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 2, after);
  sqlite3_bind_int64(st, 3, limit + 1);
  json_t *a = json_array();
  long long last = after;
  int more = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    if ((long long)json_array_size(a) == limit) { more = 1; break; }
    json_t *cl = json_loads((const char *)sqlite3_column_text(st, 3), 0, NULL);
    last = sqlite3_column_int64(st, 0);
    json_array_append_new(a, json_pack("{s:I,s:I,s:s,s:O?,s:O?,s:o}", "id",
        (json_int_t)last, "model_version", (json_int_t)sqlite3_column_int64(st, 1),
        "kind", (const char *)sqlite3_column_text(st, 2), "from",
        json_object_get(cl, "from"), "to", json_object_get(cl, "to"),
        "created_at", h_time(sqlite3_column_int64(st, 4))));
    if (sqlite3_column_type(st, 5) != SQLITE_NULL)
      json_object_set_new(json_array_get(a, json_array_size(a) - 1), "cause_alert",
                          json_integer(sqlite3_column_int64(st, 5)));
    json_decref(cl);
  }
  sqlite3_reset(st);
  json_t *o = json_pack("{s:s,s:o}", "space", req->params[0], "events", a);
  if (more) json_object_set_new(o, "next_cursor", json_integer(last));
  return sd_reply_json(rep, 200, o);
}

/* ---- POST /v1/spaces/{space}/evaluate ---- */

typedef struct {
  size_t n, unknown, unassigned;
  int32_t *pred, *truth;
  json_t *classes; /* label -> index */
  json_t *names;   /* index -> label */
} eval_set;

static void eval_free(eval_set *e) {
  free(e->pred), free(e->truth);
  json_decref(e->classes), json_decref(e->names);
}

/* The live cluster index of an entity, -1 unassigned, -2 unknown. */
static int eval_lookup(sqlite3_stmt *st, const sd_snap_space *sp, const char *id) {
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  int r = -2;
  if (sqlite3_step(st) == SQLITE_ROW)
    r = sqlite3_column_type(st, 0) == SQLITE_NULL
            ? -1 : sd_snap_cluster_index(sp, sqlite3_column_int64(st, 0));
  sqlite3_reset(st);
  return r < -1 ? -2 : r;
}

static int eval_collect(const sd_snap_space *sp, json_t *labels, eval_set *e) {
  size_t n = json_object_size(labels);
  e->pred = malloc(sizeof(int32_t) * n);
  e->truth = malloc(sizeof(int32_t) * n);
  e->classes = json_object();
  e->names = json_array();
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(rd, sp->name[0] == 'i'
      ? "SELECT cluster FROM texts WHERE text_id=?1"
      : "SELECT cluster FROM users WHERE user_id=?1") : NULL;
  if (!e->pred || !e->truth || !e->classes || !e->names) return SD_ENOMEM;
  if (!st) return SD_EDB;
  const char *id;
  json_t *v;
  json_object_foreach(labels, id, v) {
    int c = eval_lookup(st, sp, id);
    if (c == -2 || c == -1) {
      e->unknown += c == -2;
      e->unassigned += c == -1;
      continue;
    }
    const char *lab = json_string_value(v);
    json_t *ix = json_object_get(e->classes, lab);
    if (!ix) {
      ix = json_integer((json_int_t)json_array_size(e->names));
      json_object_set_new(e->classes, lab, ix);
      json_array_append_new(e->names, json_string(lab));
    }
    e->pred[e->n] = c;
    e->truth[e->n++] = (int32_t)json_integer_value(ix);
  }
  return 0;
}

static json_t *eval_tables(const sd_snap_space *sp, const eval_set *e,
                           const int64_t *tab, int nc) {
  json_t *purity = json_object(), *cont = json_array();
  for (int a = 0; a < sp->k; a++) {
    int64_t size = 0, best = 0;
    int bi = -1;
    for (int b = 0; b < nc; b++) {
      int64_t x = tab[(size_t)a * nc + b];
      size += x;
      if (x > best) best = x, bi = b;
      if (x)
        json_array_append_new(cont, json_pack("{s:I,s:O,s:I}", "cluster",
            (json_int_t)sp->clusters[a].id, "label", json_array_get(e->names, b),
            "count", (json_int_t)x));
    }
    if (!size) continue;
    char key[24];
    snprintf(key, sizeof(key), "%d", sp->clusters[a].id);
    json_object_set_new(purity, key, json_pack("{s:f,s:O,s:I}", "purity",
        (double)best / (double)size, "label", json_array_get(e->names, bi),
        "size", (json_int_t)size));
  }
  return json_pack("{s:o,s:o}", "purity", purity, "contingency", cont);
}

static int eval_labels(sd_req *req, sd_reply *rep, json_t **body, json_t **labels) {
  *body = h_body_object(req, rep);
  if (!*body) return SD_EINVALID;
  *labels = json_object_get(*body, "labels");
  if (!json_is_object(*labels) || json_object_size(*labels) == 0)
    return field_problem(rep, "labels", "must be a non-empty object of entity id -> label");
  if (json_object_size(*labels) > EVAL_MAX)
    return sd_reply_error(rep, SD_ETOOLARGE, "at most 200000 labels", NULL);
  const char *k;
  json_t *v;
  json_object_foreach(*labels, k, v)
    if (!json_is_string(v)) return field_problem(rep, "labels", "every label must be a string");
  return 0;
}

int h_evaluate(sd_req *req, sd_reply *rep) {
  json_t *body = NULL, *labels = NULL;
  sd_snapshot *snap = NULL;
  const sd_snap_space *sp = h_space(req, rep, &snap);
  int rc = sp ? eval_labels(req, rep, &body, &labels) : SD_ENOTFOUND;
  if (rc == 0 && !sp->has_model)
    rc = sd_reply_error(rep, SD_ENOTREADY, "the space has no model yet", NULL);
  eval_set e = {0};
  if (rc == 0 && (rc = eval_collect(sp, labels, &e)) < 0) sd_reply_error(rep, rc, NULL, NULL);
  int nc = (int)json_array_size(e.names);
  int64_t *tab = rc == 0 ? calloc((size_t)sp->k * (size_t)(nc ? nc : 1), sizeof(int64_t)) : NULL;
  sd_agreement ag = {0};
  if (rc == 0 && !tab) rc = sd_reply_error(rep, SD_ENOMEM, NULL, NULL);
  if (rc == 0 && e.n > 0) {
    sd_contingency(e.pred, sp->k, e.truth, nc, e.n, tab);
    rc = sd_agreement_compute(e.pred, sp->k, e.truth, nc, e.n, &ag);
    if (rc < 0) sd_reply_error(rep, rc, NULL, NULL);
  }
  if (rc == 0) {
    json_t *o = eval_tables(sp, &e, tab, nc);
    json_object_update_new(o, json_pack("{s:I,s:f,s:f,s:f,s:I,s:I,s:I,s:i}", "n",
        (json_int_t)e.n, "nmi", ag.nmi, "ari", ag.ari, "accuracy", ag.accuracy,
        "unknown", (json_int_t)e.unknown, "unassigned", (json_int_t)e.unassigned,
        "model_version", (json_int_t)sp->version, "classes", nc));
    sd_reply_json(rep, 200, o);
  }
  free(tab);
  eval_free(&e);
  sd_snapshot_release(snap);
  json_decref(body);
  return rc;
}
