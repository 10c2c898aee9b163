/*
 * handlers_clusters.c -- GET /v1/spaces/{space}/clusters/{id}/members and
 * GET /v1/spaces/{space}/map.
 *
 * Members: one keyset page of a live cluster's entities in rowid order,
 * read on the calling thread's read-only connection through the
 * texts_cluster / users_cluster indexes. The cursor is the last rowid of
 * the page as a decimal string (opaque to clients). No page holds a read
 * transaction open: every statement is reset before the handler returns.
 *
 * Map: a 2-D picture of a space. The axes are the top two principal
 * components of the live centroids: rows weighted by cluster size and
 * centred, then power iteration with deflation on the implicit k x dim
 * matrix (two cblas_sgemv per step, no dim x dim matrix is formed). It is
 * cheap, deterministic (the start is the row of largest norm, the sign of
 * each axis makes its largest component positive) and the same for every
 * request on one model, up to the centroids' online drift. The points are
 * a deterministic stratified sample over rowids: [min rowid, max rowid] is
 * cut into `limit` equal strata, each gives a target at a fixed
 * pseudo-random offset inside it (a plain every-n-th stride would alias
 * with any periodic pattern of the input), and each target takes the first
 * entity with a vector at or after max(target, previous + 1), so a space
 * of at most `limit` entities comes back whole: one rowid seek per point.
 * Each point's vector (texts: the stored embedding, normalised; users: the
 * composed views vector) is projected on the same axes. Memory: O(k * dim)
 * for the axes, one vector at a time for the points, and the JSON answer.
 */
#include "handlers.h"
#include "segmentd/err.h"
#include "segmentd/rng.h"
#include "segmentd/snapshot.h"
#include "segmentd/store.h"
#include "segmentd/views.h"
#include "segmentd/views_store.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEMBERS_DEFAULT 100
#define MEMBERS_MAX 1000
#define MAP_DEFAULT 2000
#define MAP_MAX 10000
#define PCA_ITERS 300
#define PCA_TOL 1e-6f
#define MAP_SEED 0x6d6170u /* fixed: the same sample every time */

/* A REAL column as a JSON number, or null (NULL or not finite). */
static json_t *column_real(sqlite3_stmt *st, int col) {
  double v = sqlite3_column_double(st, col);
  if (sqlite3_column_type(st, col) == SQLITE_NULL || !isfinite(v))
    return json_null();
  return json_real(v);
}

/* ---- GET /v1/spaces/{space}/clusters/{id}/members ---- */

static const char SQL_MEMBERS_TEXTS[] =
    "SELECT id,text_id,similarity,confidence,text FROM texts "
    "WHERE cluster=?1 AND id>?2 ORDER BY id LIMIT ?3";
static const char SQL_MEMBERS_USERS[] =
    "SELECT id,user_id,similarity,confidence FROM users "
    "WHERE cluster=?1 AND id>?2 ORDER BY id LIMIT ?3";

typedef struct {
  int texts;         /* intents: texts (with their text); else users */
  int64_t cluster;   /* stable cluster id */
  long long after;   /* rowid cursor (exclusive) */
  long long limit;
  long long last;    /* out: rowid of the last member of the page */
  int more;          /* out: another page follows */
} members_q;

/* One member object of the current row, or NULL on ENOMEM. */
static json_t *member_json(sqlite3_stmt *st, int texts) {
  json_t *m = json_pack("{s:s,s:o,s:o}", "id",
                        (const char *)sqlite3_column_text(st, 1),
                        "similarity", column_real(st, 2), "confidence",
                        column_real(st, 3));
  if (m && texts) {
    const char *t = (const char *)sqlite3_column_text(st, 4);
    json_t *js = json_string(t ? t : "");
    if (!js || json_object_set_new(m, "text", js) < 0) {
      json_decref(m);
      return NULL;
    }
  }
  return m;
}

/* Appends one page of members to a. 0, SD_ENOMEM or SD_EDB. */
static int members_read(members_q *q, json_t *a) {
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(rd, q->texts ? SQL_MEMBERS_TEXTS
                                                     : SQL_MEMBERS_USERS)
                        : NULL;
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, q->cluster);
  sqlite3_bind_int64(st, 2, q->after);
  sqlite3_bind_int64(st, 3, q->limit + 1); /* one more: is there a next page? */
  int rc, err = 0;
  q->last = q->after;
  q->more = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if ((long long)json_array_size(a) == q->limit) {
      q->more = 1;
      break;
    }
    json_t *m = member_json(st, q->texts);
    if (!m || json_array_append_new(a, m) < 0) {
      err = SD_ENOMEM;
      break;
    }
    q->last = sqlite3_column_int64(st, 0);
  }
  sqlite3_reset(st);
  if (err) return err;
  return q->more || rc == SQLITE_DONE ? 0 : SD_EDB;
}

/* Reads limit and cursor into q; 0 or the 400 reply's error. */
static int members_query(sd_req *req, sd_reply *rep, members_q *q) {
  if (h_query_int(sd_req_query(req, "limit"), 1, MEMBERS_MAX, MEMBERS_DEFAULT,
                &q->limit) < 0)
    return sd_reply_error(rep, SD_EINVAL, "limit must be an integer 1..1000",
                          NULL);
  if (h_query_int(sd_req_query(req, "cursor"), 0, INT64_MAX, 0, &q->after) < 0)
    return sd_reply_error(rep, SD_EINVAL,
                          "cursor must be a next_cursor of this route", NULL);
  return 0;
}

int h_cluster_members(sd_req *req, sd_reply *rep) {
  members_q q = {0};
  sd_snapshot *snap;
  const sd_snap_space *sp = h_space(req, rep, &snap);
  if (!sp) return SD_ENOTFOUND;
  char *end;
  long long id = strtoll(req->params[1], &end, 10);
  int live = !*end && id >= 0 && id <= INT32_MAX &&
             sd_snap_cluster_index(sp, id) >= 0;
  int64_t version = sp->version;
  q.texts = sp == &snap->spaces[SD_SPACE_INTENTS];
  sd_snapshot_release(snap);
  if (!live) return sd_reply_error(rep, SD_ENOTFOUND, "no such cluster", NULL);
  int rc = members_query(req, rep, &q);
  if (rc < 0) return rc;
  q.cluster = id;
  json_t *a = json_array();
  if (!a) return sd_reply_error(rep, SD_ENOMEM, NULL, NULL);
  if ((rc = members_read(&q, a)) < 0) {
    json_decref(a);
    return sd_reply_error(rep, rc, NULL, NULL);
  }
  json_t *o = json_pack("{s:s,s:I,s:I,s:o}", "space", req->params[0],
                        "cluster", (json_int_t)id, "model_version",
                        (json_int_t)version, "members", a);
  if (o && q.more) {
    char cur[24];
    snprintf(cur, sizeof(cur), "%lld", q.last);
    json_object_set_new(o, "next_cursor", json_string(cur));
  }
  return sd_reply_json(rep, 200, o);
}

/* ---- GET /v1/spaces/{space}/map: the axes ---- */

typedef struct {
  int k, dim;
  float *x;        /* k x dim: centred centroids scaled by sqrt(weight) */
  float *mu;       /* dim: the size-weighted mean of the centroids */
  float *axes;     /* 2 x dim, orthonormal rows */
  float *u;        /* dim: scratch */
  float *t;        /* k: scratch */
  float origin[2]; /* mu on each axis */
  double explained[2];
  double trace;    /* total weighted variance of the centroids */
} map_pca;

/* Weights rows by cluster size (uniform when no cluster has members),
 * centres them on the weighted mean and scales each by sqrt(weight). */
static void pca_center(const sd_snap_space *sp, map_pca *p) {
  double total = 0;
  for (int i = 0; i < p->k; i++)
    total += sp->clusters[i].size > 0 ? (double)sp->clusters[i].size : 0;
  for (int i = 0; i < p->k; i++) {
    double s = sp->clusters[i].size > 0 ? (double)sp->clusters[i].size : 0;
    p->t[i] = (float)(total > 0 ? s / total : 1.0 / p->k);
  }
  cblas_sgemv(CblasRowMajor, CblasTrans, p->k, p->dim, 1.0f, sp->centroids,
              p->dim, p->t, 1, 0.0f, p->mu, 1);
  p->trace = 0;
  for (int i = 0; i < p->k; i++) {
    float *row = p->x + (size_t)i * p->dim;
    memcpy(row, sp->centroids + (size_t)i * p->dim, sizeof(float) * p->dim);
    cblas_saxpy(p->dim, -1.0f, p->mu, 1, row, 1);
    cblas_sscal(p->dim, sqrtf(p->t[i]), row, 1);
    float n = cblas_snrm2(p->dim, row, 1);
    p->trace += (double)n * n;
  }
}

/* Removes from v its components along axes 0..a-1 (the deflation). */
static void pca_deflate(const map_pca *p, int a, float *v) {
  for (int b = 0; b < a; b++) {
    const float *ax = p->axes + (size_t)b * p->dim;
    cblas_saxpy(p->dim, -cblas_sdot(p->dim, v, 1, ax, 1), ax, 1, v, 1);
  }
}

/* A unit start vector for axis a, orthogonal to the axes before it: the
 * deflated row of largest norm, else a deflated basis vector. */
static void pca_start(map_pca *p, int a, float *v) {
  float best = 0;
  for (int i = 0; i < p->k; i++) {
    memcpy(p->u, p->x + (size_t)i * p->dim, sizeof(float) * p->dim);
    pca_deflate(p, a, p->u);
    float n = cblas_snrm2(p->dim, p->u, 1);
    if (n > best * 1.0001f) {
      best = n;
      memcpy(v, p->u, sizeof(float) * p->dim);
    }
  }
  /* Rows left with only rounding noise (k <= a + 1): a basis vector. */
  if (!(best > 1e-4f * (float)sqrt(p->trace))) best = 0;
  for (int j = 0; best == 0 && j < p->dim; j++) {
    memset(v, 0, sizeof(float) * p->dim);
    v[j] = 1.0f;
    pca_deflate(p, a, v);
    best = cblas_snrm2(p->dim, v, 1);
    if (best < 0.5f) best = 0; /* nearly inside the earlier axes: next */
  }
  if (best > 0) cblas_sscal(p->dim, 1.0f / best, v, 1);
  else memset(v, 0, sizeof(float) * p->dim); /* dim 1: no second axis */
}

/* Axis a by power iteration on X^T X with the earlier axes deflated. */
static void pca_axis(map_pca *p, int a) {
  float *v = p->axes + (size_t)a * p->dim;
  pca_start(p, a, v);
  for (int it = 0; it < PCA_ITERS; it++) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, p->k, p->dim, 1.0f, p->x, p->dim,
                v, 1, 0.0f, p->t, 1);
    cblas_sgemv(CblasRowMajor, CblasTrans, p->k, p->dim, 1.0f, p->x, p->dim,
                p->t, 1, 0.0f, p->u, 1);
    pca_deflate(p, a, p->u);
    float n = cblas_snrm2(p->dim, p->u, 1);
    if (!(n > 1e-12f)) break; /* no variance left: keep the start */
    cblas_sscal(p->dim, 1.0f / n, p->u, 1);
    float c = cblas_sdot(p->dim, v, 1, p->u, 1);
    memcpy(v, p->u, sizeof(float) * p->dim);
    if (c > 1.0f - PCA_TOL) break;
  }
  size_t big = cblas_isamax(p->dim, v, 1);
  if (v[big] < 0) cblas_sscal(p->dim, -1.0f, v, 1);
  cblas_sgemv(CblasRowMajor, CblasNoTrans, p->k, p->dim, 1.0f, p->x, p->dim, v,
              1, 0.0f, p->t, 1);
  float lam = cblas_snrm2(p->k, p->t, 1);
  p->explained[a] = p->trace > 0 ? (double)lam * lam / p->trace : 0;
  if (p->explained[a] > 1) p->explained[a] = 1;
  p->origin[a] = cblas_sdot(p->dim, p->mu, 1, v, 1);
}

static void pca_free(map_pca *p) { free(p->x); }

/* Fits the two axes of sp's centroids. 0 or SD_ENOMEM. */
static int pca_fit(const sd_snap_space *sp, map_pca *p) {
  memset(p, 0, sizeof(*p));
  p->k = sp->k;
  p->dim = sp->dim;
  size_t kd = (size_t)p->k * (size_t)p->dim, d = (size_t)p->dim;
  p->x = malloc(sizeof(float) * (kd + 4 * d + (size_t)p->k));
  if (!p->x) return SD_ENOMEM;
  p->mu = p->x + kd;
  p->axes = p->mu + d;
  p->u = p->axes + 2 * d;
  p->t = p->u + d;
  pca_center(sp, p);
  pca_axis(p, 0);
  pca_axis(p, 1);
  return 0;
}

/* x, y of vector v (p->dim floats) on the axes. */
static void pca_project(const map_pca *p, const float *v, float xy[2]) {
  cblas_sgemv(CblasRowMajor, CblasNoTrans, 2, p->dim, 1.0f, p->axes, p->dim,
              v, 1, 0.0f, xy, 1);
  xy[0] -= p->origin[0];
  xy[1] -= p->origin[1];
}

/* ---- GET /v1/spaces/{space}/map: the points ---- */

static const char SQL_MAP_RANGE_TEXTS[] =
    "SELECT (SELECT min(id) FROM texts),(SELECT max(id) FROM texts)";
static const char SQL_MAP_RANGE_USERS[] =
    "SELECT (SELECT min(id) FROM users),(SELECT max(id) FROM users)";
static const char SQL_MAP_TEXT[] =
    "SELECT id,text_id,cluster,embedding FROM texts "
    "WHERE id>=?1 AND embedding IS NOT NULL ORDER BY id LIMIT 1";
static const char SQL_MAP_USER[] =
    "SELECT id,user_id,cluster," SD_VIEWS_COLS " FROM users "
    "WHERE id>=?1 ORDER BY id LIMIT 1";

typedef struct {
  const sd_snap_space *sp;
  const map_pca *pca;
  sqlite3_stmt *st;  /* the seek statement of the space */
  int texts;
  sd_views_conf vc;  /* users: how to compose their vector */
  float *vec;        /* sp->dim: the point's vector */
  sd_user_buf ub;    /* users: their view accumulators */
  json_t *points;
} map_sample;

/* Copies a float BLOB of exactly n floats into out; 1 if it had that size. */
static int blob_floats(sqlite3_stmt *st, int col, float *out, int n) {
  if (sqlite3_column_bytes(st, col) != (int)(sizeof(float) * (size_t)n))
    return 0;
  memcpy(out, sqlite3_column_blob(st, col), sizeof(float) * (size_t)n);
  return 1;
}

/* The current row's vector into s->vec; 1 if it is usable (non-zero). */
static int row_vector(map_sample *s) {
  if (s->texts) {
    if (!blob_floats(s->st, 3, s->vec, s->sp->dim)) return 0;
    float n = cblas_snrm2(s->sp->dim, s->vec, 1);
    if (!(n > 0) || !isfinite(n)) return 0;
    cblas_sscal(s->sp->dim, 1.0f / n, s->vec, 1);
    return 1;
  }
  sd_views_read(s->st, 3, &s->vc, &s->ub.u);
  return sd_views_vector(&s->vc, &s->ub.u, s->vec);
}

/* The point of the current row (vector in s->vec), or NULL when its
 * coordinates are not finite or on ENOMEM. */
static json_t *point_json(const map_sample *s) {
  float xy[2];
  pca_project(s->pca, s->vec, xy);
  if (!isfinite(xy[0]) || !isfinite(xy[1])) return NULL;
  int live = sqlite3_column_type(s->st, 2) != SQLITE_NULL &&
             sd_snap_cluster_index(s->sp, sqlite3_column_int64(s->st, 2)) >= 0;
  return json_pack("{s:s,s:o,s:f,s:f}", "id",
                   (const char *)sqlite3_column_text(s->st, 1), "cluster",
                   live ? json_integer(sqlite3_column_int64(s->st, 2))
                        : json_null(),
                   "x", (double)xy[0], "y", (double)xy[1]);
}

/* Appends the first entity with a usable vector at rowid >= from; *last is
 * the last rowid read. 1 appended, 0 none left, or a negative sd_err. */
static int map_take(map_sample *s, int64_t from, int64_t *last) {
  for (;;) {
    sqlite3_bind_int64(s->st, 1, from);
    int rc = sqlite3_step(s->st);
    if (rc != SQLITE_ROW) {
      sqlite3_reset(s->st);
      return rc == SQLITE_DONE ? 0 : SD_EDB;
    }
    *last = sqlite3_column_int64(s->st, 0);
    json_t *pt = row_vector(s) ? point_json(s) : NULL;
    sqlite3_reset(s->st);
    if (pt) return json_array_append_new(s->points, pt) < 0 ? SD_ENOMEM : 1;
    if (*last == INT64_MAX) return 0;
    from = *last + 1;
  }
}

/* The smallest and largest rowid of the space's table; 0 (empty: lo > hi)
 * or SD_EDB. */
static int map_range(sd_store *rd, int texts, int64_t *lo, int64_t *hi) {
  sqlite3_stmt *st =
      sd_store_stmt(rd, texts ? SQL_MAP_RANGE_TEXTS : SQL_MAP_RANGE_USERS);
  if (!st) return SD_EDB;
  int rc = sqlite3_step(st);
  *lo = 1;
  *hi = 0;
  if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
    *lo = sqlite3_column_int64(st, 0);
    *hi = sqlite3_column_int64(st, 1);
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : SD_EDB;
}

/* Samples up to limit points evenly over the rowid range into s->points. */
static int map_points(map_sample *s, long long limit) {
  sd_store *rd = sd_store_reader();
  int64_t lo, hi, last = INT64_MIN;
  int rc = rd ? map_range(rd, s->texts, &lo, &hi) : SD_EDB;
  if (rc < 0 || lo > hi) return rc;
  s->st = sd_store_stmt(rd, s->texts ? SQL_MAP_TEXT : SQL_MAP_USER);
  if (!s->st) return SD_EDB;
  double span = (double)hi - (double)lo + 1.0;
  for (long long i = 0; i < limit; i++) {
    uint64_t h = MAP_SEED ^ (uint64_t)i;
    double off = (double)(sd_splitmix64(&h) >> 11) * 0x1p-53; /* [0, 1) */
    int64_t target = lo + (int64_t)(span * ((double)i + off) / (double)limit);
    if (last != INT64_MIN && target <= last) {
      if (last == INT64_MAX) break;
      target = last + 1;
    }
    if ((rc = map_take(s, target, &last)) <= 0) return rc;
  }
  return 0;
}

/* ---- GET /v1/spaces/{space}/map: the answer ---- */

static json_t *map_centroids(const sd_snap_space *sp, const map_pca *p) {
  json_t *a = json_array();
  for (int i = 0; a && i < sp->k; i++) {
    float xy[2];
    pca_project(p, sp->centroids + (size_t)i * sp->dim, xy);
    /* unit centroids give finite coordinates; json_pack fails on NaN */
    json_t *c = json_pack("{s:I,s:f,s:f,s:I,s:s}", "id",
                          (json_int_t)sp->clusters[i].id, "x", (double)xy[0],
                          "y", (double)xy[1], "size",
                          (json_int_t)sp->clusters[i].size, "label",
                          sp->clusters[i].label ? sp->clusters[i].label : "");
    if (!c || json_array_append_new(a, c) < 0) {
      json_decref(a);
      return NULL;
    }
  }
  return a;
}

/* Fills o's centroids, points and axes_explained for a space with a
 * model. 0 or a negative sd_err. */
static int map_fill(const sd_req *req, const sd_snapshot *snap,
                    const sd_snap_space *sp, json_t *o, long long limit) {
  map_sample s = {.sp = sp, .texts = !strcmp(sp->name, "intents")};
  s.vc = sd_views_conf_of(req->cfg, snap->beh_idf);
  if (!s.texts && sd_views_width(&s.vc) != sp->dim) return SD_EINTERNAL;
  map_pca p;
  if (pca_fit(sp, &p) < 0) return SD_ENOMEM;
  size_t d = (size_t)sp->dim;
  s.vec = malloc(sizeof(float) * d);
  if (!s.texts && sd_user_buf_init(&s.ub, &s.vc) < 0) {
    free(s.vec);
    s.vec = NULL;
  }
  s.pca = &p;
  s.points = json_array();
  json_t *cents = map_centroids(sp, &p);
  int rc = s.vec && s.points && cents ? 0 : SD_ENOMEM;
  if (rc == 0) rc = map_points(&s, limit);
  if (rc == 0) {
    json_object_set_new(o, "axes_explained",
                        json_pack("[ff]", p.explained[0], p.explained[1]));
    json_object_set_new(o, "centroids", cents);
    json_object_set_new(o, "points", s.points);
  } else {
    json_decref(cents);
    json_decref(s.points);
  }
  free(s.vec);
  sd_user_buf_free(&s.ub);
  pca_free(&p);
  return rc;
}

int h_map(sd_req *req, sd_reply *rep) {
  sd_snapshot *snap;
  const sd_snap_space *sp = h_space(req, rep, &snap);
  if (!sp) return SD_ENOTFOUND;
  long long limit;
  if (h_query_int(sd_req_query(req, "limit"), 1, MAP_MAX, MAP_DEFAULT, &limit) <
      0) {
    sd_snapshot_release(snap);
    return sd_reply_error(rep, SD_EINVAL, "limit must be an integer 1..10000",
                          NULL);
  }
  int model = sp->has_model && sp->k > 0 && sp->dim > 0;
  json_t *o = json_pack("{s:s,s:I,s:s,s:[ff],s:[],s:[]}", "space", sp->name,
                        "model_version", (json_int_t)(model ? sp->version : 0),
                        "method", "pca_centroids", "axes_explained", 0.0, 0.0,
                        "centroids", "points");
  int rc = o ? 0 : SD_ENOMEM;
  if (rc == 0 && model) rc = map_fill(req, snap, sp, o, limit);
  sd_snapshot_release(snap);
  if (rc < 0) {
    json_decref(o);
    return sd_reply_error(rep, rc, NULL, NULL);
  }
  return sd_reply_json(rep, 200, o);
}
