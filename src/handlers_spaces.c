/*
 * handlers_spaces.c -- GET /v1/spaces, /v1/spaces/{space}/clusters,
 * /v1/spaces/{space}/clusters/{id} and the NDJSON assignments stream.
 *
 * Cluster summaries come from the published snapshot. The assignments
 * stream reads the database in keyset-paginated chunks on the serving
 * thread's read connection, so no long read transaction is held and memory
 * stays bounded whatever the number of entities.
 */
#include "handlers.h"
#include "segmentd/err.h"
#include "segmentd/snapshot.h"
#include "segmentd/store.h"

#include <inttypes.h>
#include <math.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_CHUNK 1000

static json_t *space_json(const sd_snap_space *sp) {
  double coh = 0;
  for (int i = 0; i < sp->k; i++)
    coh += sp->clusters[i].cohesion * sp->clusters[i].share;
  json_t *quality = sp->quality ? json_loads(sp->quality, 0, NULL) : NULL;
  if (!quality) quality = json_object();
  if (sp->has_model) {
    json_object_set_new(quality, "inertia", json_real(sp->inertia));
    json_object_set_new(quality, "mean_cohesion", json_real(coh));
    json_t *st = json_object_get(quality, "stability");
    if (st) json_object_del(st, "per_cluster"); /* per cluster: see clusters */
  }
  return json_pack("{s:s,s:s,s:I,s:s,s:i,s:I,s:I,s:b,s:o,s:o}", "name",
                   sp->name, "entity", sp->entity, "model_version",
                   (json_int_t)sp->version, "algorithm", sp->algorithm, "k",
                   sp->k, "points", (json_int_t)sp->points, "assigned",
                   (json_int_t)sp->assigned, "reassigning", sp->reassigning,
                   "quality", quality, "trained_at",
                   sp->has_model ? h_time(sp->trained_at) : json_null());
}

int h_spaces(sd_req *req, sd_reply *rep) {
  (void)req;
  sd_snapshot *snap = sd_snapshot_acquire();
  if (!snap) return sd_reply_error(rep, SD_ENOTREADY, NULL, NULL);
  json_t *a = json_array();
  for (int i = 0; i < SD_SPACES; i++)
    json_array_append_new(a, space_json(&snap->spaces[i]));
  sd_snapshot_release(snap);
  return sd_reply_json(rep, 200, json_pack("{s:o}", "spaces", a));
}

/* Is the cluster big and stable enough to act on? (Unmeasured stability
 * does not count against it.) */
static int actionable(const sd_config *cfg, const sd_snap_cluster *c) {
  return c->size >= cfg->actionable_size &&
         (isnan(c->stability) || c->stability >= cfg->actionable_stability);
}

/* A segment's most written intents, with the intents' labels. */
static json_t *dominant_intents(const sd_snapshot *snap, const sd_snap_cluster *c) {
  const sd_snap_space *in = &snap->spaces[SD_SPACE_INTENTS];
  json_t *a = json_array();
  for (int j = 0; j < c->n_intents && a; j++) {
    int x = sd_snap_cluster_index(in, c->intents[j]);
    json_array_append_new(a, json_pack("{s:i,s:s?,s:f}", "id", c->intents[j],
                                       "label", x >= 0 ? in->clusters[x].label : NULL,
                                       "share", (double)c->intent_share[j]));
  }
  return a;
}

static json_t *cluster_json(const sd_config *cfg, const sd_snapshot *snap,
                            const sd_snap_space *sp, int i) {
  const sd_snap_cluster *c = &sp->clusters[i];
  json_t *terms = json_array(), *reps = json_array();
  for (int j = 0; j < c->n_terms; j++)
    json_array_append_new(terms, json_string(c->terms[j]));
  for (int j = 0; j < c->n_reps; j++)
    json_array_append_new(reps, json_pack("{s:s,s:s?,s:f}", "id", c->reps[j].id,
                                          "text", c->reps[j].text, "similarity",
                                          (double)c->reps[j].similarity));
  int intents = !strcmp(sp->name, "intents");
  json_t *o = json_pack("{s:I,s:s,s:s,s:s?,s:I,s:f,s:f,s:o,s:o,s:o,s:o,s:o}", "id",
                   (json_int_t)c->id, "label", c->label, "label_source",
                   c->label_manual ? "manual" : "auto", "description",
                   c->description, "size", (json_int_t)c->size, "share",
                   c->share, "cohesion", c->cohesion, "stability",
                   isnan(c->stability) ? json_null() : json_real(c->stability),
                   intents ? "top_terms" : "top_features", terms,
                   "representatives", reps, "created_at", h_time(c->created_at),
                   "actionable", actionable(cfg, c) ? json_true() : json_false());
  if (o && !intents)
    json_object_set_new(o, "dominant_intents", dominant_intents(snap, c));
  return o;
}

int h_clusters(sd_req *req, sd_reply *rep) {
  sd_snapshot *snap;
  const sd_snap_space *sp = h_space(req, rep, &snap);
  if (!sp) return SD_ENOTFOUND;
  json_t *a = json_array();
  for (int i = 0; i < sp->k; i++) json_array_append_new(a, cluster_json(req->cfg, snap, sp, i));
  json_t *o = json_pack("{s:s,s:I,s:o}", "space", sp->name, "model_version",
                        (json_int_t)sp->version, "clusters", a);
  sd_snapshot_release(snap);
  return sd_reply_json(rep, 200, o);
}

int h_cluster(sd_req *req, sd_reply *rep) {
  char *end;
  long long id = strtoll(req->params[1], &end, 10);
  if (*end || id < 0)
    return sd_reply_error(rep, SD_ENOTFOUND, "cluster ids are non-negative "
                          "integers", NULL);
  sd_snapshot *snap;
  const sd_snap_space *sp = h_space(req, rep, &snap);
  if (!sp) return SD_ENOTFOUND;
  int i = sd_snap_cluster_index(sp, id);
  json_t *o = i >= 0 ? cluster_json(req->cfg, snap, sp, i) : NULL;
  if (o) json_object_set_new(o, "model_version", json_integer(sp->version));
  sd_snapshot_release(snap);
  if (i < 0) return sd_reply_error(rep, SD_ENOTFOUND, "no such cluster", NULL);
  return sd_reply_json(rep, 200, o);
}

/* ---- GET /v1/spaces/{space}/assignments (NDJSON) ---- */

typedef struct {
  const char *sql;
  int64_t after; /* last rowid sent */
  char *buf;
  size_t len, off;
  int eof;
} assign_stream;

/* Columns: rowid, entity id, cluster, confidence, similarity, and for
 * texts the user id (NULL for users: the entity id is the user). */
static const char SQL_STREAM_TEXTS[] =
    "SELECT id,text_id,cluster,confidence,similarity,user_id FROM texts "
    "WHERE id>?1 ORDER BY id LIMIT 1000";
static const char SQL_STREAM_USERS[] =
    "SELECT id,user_id,cluster,confidence,similarity,NULL FROM users "
    "WHERE id>?1 ORDER BY id LIMIT 1000";

static json_t *column_or_null(sqlite3_stmt *st, int i) {
  switch (sqlite3_column_type(st, i)) {
  case SQLITE_NULL: return json_null();
  case SQLITE_INTEGER: return json_integer(sqlite3_column_int64(st, i));
  case SQLITE_FLOAT: return json_real(sqlite3_column_double(st, i));
  default: return json_string((const char *)sqlite3_column_text(st, i));
  }
}

static int stream_line(assign_stream *s, sqlite3_stmt *st) {
  json_t *o = json_pack("{s:s,s:o,s:o,s:o}", "id",
                        (const char *)sqlite3_column_text(st, 1), "cluster",
                        column_or_null(st, 2), "confidence",
                        column_or_null(st, 3), "similarity",
                        column_or_null(st, 4));
  if (o && s->sql == SQL_STREAM_TEXTS)
    json_object_set_new(o, "user_id", column_or_null(st, 5));
  char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!line) return -1;
  size_t n = strlen(line);
  char *nb = realloc(s->buf, s->len + n + 2);
  if (nb) {
    memcpy(nb + s->len, line, n);
    nb[s->len + n] = '\n';
    s->len += n + 1;
    s->buf = nb;
  }
  free(line);
  return nb ? 0 : -1;
}

/* Loads the next chunk of rows into the buffer; 0, or -1 on error. */
static int stream_fill(assign_stream *s) {
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(rd, s->sql) : NULL;
  if (!st) return -1;
  sqlite3_bind_int64(st, 1, s->after);
  int rc, rows = 0;
  s->len = s->off = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    s->after = sqlite3_column_int64(st, 0);
    rows++;
    if (stream_line(s, st) < 0) break;
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) return -1;
  if (rows < STREAM_CHUNK) s->eof = 1;
  return 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
  assign_stream *s = cls;
  (void)pos;
  if (s->off == s->len) {
    if (s->eof) return MHD_CONTENT_READER_END_OF_STREAM;
    if (stream_fill(s) < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
    if (s->len == 0) return MHD_CONTENT_READER_END_OF_STREAM;
  }
  size_t n = s->len - s->off < max ? s->len - s->off : max;
  memcpy(buf, s->buf + s->off, n);
  s->off += n;
  return (ssize_t)n;
}

static void stream_free(void *cls) {
  assign_stream *s = cls;
  if (s) free(s->buf);
  free(s);
}

int h_assignments(sd_req *req, sd_reply *rep) {
  sd_snapshot *snap;
  const sd_snap_space *sp = h_space(req, rep, &snap);
  if (!sp) return SD_ENOTFOUND;
  int texts = !strcmp(sp->name, "intents");
  sd_snapshot_release(snap);
  assign_stream *s = calloc(1, sizeof(*s));
  if (!s) return sd_reply_error(rep, SD_ENOMEM, NULL, NULL);
  s->sql = texts ? SQL_STREAM_TEXTS : SQL_STREAM_USERS;
  rep->status = 200;
  rep->content_type = "application/x-ndjson";
  rep->stream = stream_read;
  rep->stream_cls = s;
  rep->stream_free = stream_free;
  return 0;
}
