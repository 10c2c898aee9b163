/*
 * recluster.c -- the re-cluster pipeline (see recluster.h): sample, load
 * (and refit the encoder), fit, score, match.
 */
#include "recluster_int.h"

#include "segmentd/err.h"
#include "segmentd/log.h"
#include "segmentd/rng.h"
#include "segmentd/snapshot.h"
#include "segmentd/store.h"
#include "segmentd/timeutil.h"
#include "segmentd/views.h"
#include "segmentd/views_store.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const algo_names[] = {"kmeans", "hierarchical", "density"};

int sd_algo_parse(const char *name, sd_algo *out) {
  for (int i = 0; i < 3; i++)
    if (!strcmp(name, algo_names[i])) {
      *out = (sd_algo)i;
      return 0;
    }
  return SD_EINVAL;
}

const char *sd_algo_name(sd_algo a) { return algo_names[a]; }

void rc_points_free(rc_points *p) {
  free(p->rowid);
  free(p->x);
  free(p->old_id);
  memset(p, 0, sizeof(*p));
}

void sd_proposal_free(sd_proposal *p) {
  if (!p) return;
  free(p->centroids);
  free(p->ids);
  free(p->weights);
  free(p->ref_x);
  free(p->ref_label);
  free(p->ref_sim);
  json_decref(p->quality);
  sd_proj_unref(p->proj);
  for (int i = 0; i < p->n_events; i++) {
    json_decref(p->events[i].from);
    json_decref(p->events[i].to);
  }
  free(p->events);
  memset(p, 0, sizeof(*p));
}

/* ---- sampling: Efraimidis-Spirakis A-ES, weights 2^(age / half-life) ---- */

typedef struct {
  double key;
  int64_t rowid;
} rc_keyed;

static void heap_down(rc_keyed *h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && h[l].key < h[m].key) m = l;
    if (r < n && h[r].key < h[m].key) m = r;
    if (m == i) return;
    rc_keyed t = h[i];
    h[i] = h[m];
    h[m] = t;
    i = m;
  }
}

static int cmp_rowid(const void *a, const void *b) {
  int64_t x = ((const rc_keyed *)a)->rowid, y = ((const rc_keyed *)b)->rowid;
  return (x > y) - (x < y);
}

/* Keeps the cap rows with the largest ln(u) / w, w = 2^((t - now) / hl). */
static int sample_draw(const sd_config *cfg, int space, uint64_t seed,
                       rc_keyed **out, size_t *n_out) {
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(rd, space == SD_SPACE_INTENTS
                                                ? "SELECT id,ts FROM texts "
                                                  "WHERE embedding IS NOT NULL"
                                                : "SELECT id,last_seen FROM users")
                        : NULL;
  size_t cap = (size_t)cfg->sample_size, n = 0;
  rc_keyed *h = st ? malloc(sizeof(*h) * cap) : NULL;
  if (!h) return st ? SD_ENOMEM : SD_EDB;
  double hl = cfg->half_life_days * 86400e3, now = (double)sd_now_ms();
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    double u = ((double)(sd_splitmix64(&seed) >> 11) + 0.5) / 9007199254740992.0;
    double age = now - (double)sqlite3_column_int64(st, 1);
    double key = log(u) * exp2((age > 0 ? age : 0) / hl);
    rc_keyed item = {key, sqlite3_column_int64(st, 0)};
    if (n < cap) {
      h[n++] = item;
      if (n == cap)
        for (size_t i = cap / 2 + 1; i-- > 0;) heap_down(h, n, i);
    } else if (key > h[0].key) {
      h[0] = item;
      heap_down(h, n, 0);
    }
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) {
    free(h);
    return SD_EDB;
  }
  qsort(h, n, sizeof(*h), cmp_rowid); /* read the table in order */
  *out = h;
  *n_out = n;
  return 0;
}

static int points_alloc(rc_points *p, size_t n, int dim) {
  p->dim = dim;
  p->rowid = malloc(sizeof(int64_t) * (n ? n : 1));
  p->x = malloc(sizeof(float) * (n ? n : 1) * (size_t)dim);
  p->old_id = malloc(sizeof(int64_t) * (n ? n : 1));
  return p->rowid && p->x && p->old_id ? 0 : SD_ENOMEM;
}

static void unit(float *v, int n) {
  float len = cblas_snrm2(n, v, 1);
  if (len > 0) cblas_sscal(n, 1.0f / len, v, 1);
}

/* ---- loading the sampled points ---- */

static const char SQL_RC_TEXT[] =
    "SELECT text,embedding,embedder_id,cluster FROM texts WHERE id=?1";
static const char SQL_RC_USER[] =
    "SELECT cluster," SD_VIEWS_COLS " FROM users WHERE id=?1";

static int blob_copy(sqlite3_stmt *st, int col, float *out, int n) {
  if (sqlite3_column_bytes(st, col) != (int)(sizeof(float) * (size_t)n))
    return 0;
  memcpy(out, sqlite3_column_blob(st, col), sizeof(float) * (size_t)n);
  return 1;
}

/* Texts' TF-IDF rows for the LSA fit (row_of[i] = csr row or -1). */
static int text_features(const sd_encoder *enc, sqlite3_stmt *st, sd_csr *m) {
  sd_sparse f;
  int rc = sd_features((const char *)sqlite3_column_text(st, 0),
                       (size_t)sqlite3_column_bytes(st, 0), SD_ENCODER_BITS, &f);
  if (rc < 0) return rc;
  float *w = malloc(sizeof(float) * (f.n ? f.n : 1));
  if (!w) rc = SD_ENOMEM;
  else {
    sd_encoder_tfidf(enc, &f, w);
    rc = sd_csr_push(m, f.idx, w, f.n);
  }
  free(w);
  sd_sparse_free(&f);
  return rc;
}

/* One sampled text: its stored vector (re-encoded with the live
 * projection if it has none), or its features for a refitted projection. */
static int text_point(const sd_encoder *enc, sqlite3_stmt *st,
                      const sd_live_model *live, int refit, rc_points *p,
                      sd_csr *m, int32_t *row_of) {
  size_t i = p->n;
  float *x = p->x + i * (size_t)p->dim;
  int client = sqlite3_column_int64(st, 2) == live->client_embedder_id;
  int rc = 0;
  p->old_id[i] = sqlite3_column_type(st, 3) == SQLITE_NULL
                     ? -1 : sqlite3_column_int64(st, 3);
  row_of[i] = -1;
  if (refit && !client) {
    if ((rc = text_features(enc, st, m)) < 0) return rc;
    row_of[i] = (int32_t)m->n_rows - 1;
  } else if (blob_copy(st, 1, x, p->dim)) {
    unit(x, p->dim);
  } else {
    rc = sd_encoder_encode_text_proj(enc, live->proj,
                                     (const char *)sqlite3_column_text(st, 0),
                                     (size_t)sqlite3_column_bytes(st, 0), x);
  }
  if (rc == 0) p->n++;
  return rc;
}

/* Projects the rows kept as features with the fitted LSA. */
static void encode_rows(const sd_proj *proj, const sd_csr *m,
                        const int32_t *row_of, rc_points *p) {
  for (size_t i = 0; i < p->n; i++) {
    if (row_of[i] < 0) continue;
    size_t a = m->ptr[row_of[i]], b = m->ptr[row_of[i] + 1];
    float *x = p->x + i * (size_t)p->dim;
    sd_lsa_project(proj->lsa, m->col + a, m->val + a, b - a, x);
    unit(x, p->dim);
  }
}

/* The rows kept for a refit, encoded with the live projection instead. */
static int reencode_live(const sd_encoder *enc, const sd_live_model *live,
                         const int32_t *row_of, rc_points *p) {
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(rd, "SELECT text FROM texts WHERE id=?1")
                        : NULL;
  int rc = st ? 0 : SD_EDB;
  for (size_t i = 0; i < p->n && rc == 0; i++) {
    if (row_of[i] < 0) continue;
    sqlite3_bind_int64(st, 1, p->rowid[i]);
    if (sqlite3_step(st) == SQLITE_ROW)
      rc = sd_encoder_encode_text_proj(enc, live->proj,
                                       (const char *)sqlite3_column_text(st, 0),
                                       (size_t)sqlite3_column_bytes(st, 0),
                                       p->x + i * (size_t)p->dim);
    sqlite3_reset(st);
  }
  return rc;
}

static int fit_projection(const sd_csr *m, int dim, uint64_t seed,
                          const sd_live_model *live, sd_proj **out) {
  sd_lsa_opts o = {dim, 10, 5, seed};
  sd_lsa *lsa = NULL;
  int rc = sd_lsa_fit(m, &o, &lsa);
  if (rc < 0) return rc;
  *out = sd_proj_new(live->proj ? live->proj->version + 1 : 1, 0, lsa);
  if (!*out) {
    sd_lsa_free(lsa);
    return SD_ENOMEM;
  }
  return 0;
}

static int load_texts(const sd_config *cfg, const sd_encoder *enc,
                      const sd_recluster_req *req, const sd_live_model *live,
                      const rc_keyed *keys, size_t n, rc_points *p,
                      sd_proj **newproj) {
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(rd, SQL_RC_TEXT) : NULL;
  sd_csr m = {0};
  /* LSA needs n >= dim; a remote embedder's vectors are never refitted */
  int refit = req->refit_encoder && !sd_config_remote(cfg) &&
              n >= (size_t)cfg->dim;
  int32_t *row_of = malloc(sizeof(int32_t) * (n ? n : 1));
  int rc = !st ? SD_EDB : !row_of ? SD_ENOMEM : points_alloc(p, n, (int)cfg->dim);
  for (size_t i = 0; i < n && rc == 0; i++) {
    sqlite3_bind_int64(st, 1, keys[i].rowid);
    if (sqlite3_step(st) == SQLITE_ROW) {
      p->rowid[p->n] = keys[i].rowid;
      rc = text_point(enc, st, live, refit, p, &m, row_of);
    }
    sqlite3_reset(st);
  }
  if (rc == 0 && m.n_rows > 0) {
    rc = fit_projection(&m, (int)cfg->dim, req->seed, live, newproj);
    if (rc == SD_EINVAL) { /* cannot refit (shape): keep the live projection */
      sd_log_warn("encoder refit skipped: LSA cannot fit %zu texts to %ld "
                  "dimensions", m.n_rows, cfg->dim);
      rc = reencode_live(enc, live, row_of, p);
    } else if (rc == 0) {
      encode_rows(*newproj, &m, row_of, p);
    }
  }
  free(row_of);
  sd_csr_free(&m);
  return rc;
}

static int load_users(const sd_config *cfg, const sd_live_model *live,
                      const rc_keyed *keys, size_t n, rc_points *p) {
  sd_views_conf vc = sd_views_conf_of(cfg, live->beh_idf);
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(rd, SQL_RC_USER) : NULL;
  sd_user_buf ub = {0};
  int rc = !st ? SD_EDB : sd_user_buf_init(&ub, &vc);
  if (rc == 0) rc = points_alloc(p, n, sd_views_width(&vc));
  for (size_t i = 0; i < n && rc == 0; i++) {
    sqlite3_bind_int64(st, 1, keys[i].rowid);
    if (sqlite3_step(st) == SQLITE_ROW) {
      sd_views_read(st, 1, &vc, &ub.u);
      if (sd_views_vector(&vc, &ub.u, p->x + p->n * (size_t)p->dim)) {
        p->rowid[p->n] = keys[i].rowid;
        p->old_id[p->n] = sqlite3_column_type(st, 0) == SQLITE_NULL
                              ? -1 : sqlite3_column_int64(st, 0);
        p->n++;
      }
    }
    sqlite3_reset(st);
  }
  sd_user_buf_free(&ub);
  return rc;
}

/* ---- the pipeline ---- */

static int proposal_fill(const rc_points *p, const rc_fit *f,
                         const double *stab, sd_proposal *out) {
  out->k = f->k;
  out->dim = p->dim;
  out->centroids = f->centroids ? malloc(sizeof(float) * (size_t)f->k * p->dim)
                                : NULL;
  out->weights = calloc((size_t)f->k, sizeof(float));
  if (!out->centroids || !out->weights) return SD_ENOMEM;
  memcpy(out->centroids, f->centroids, sizeof(float) * (size_t)f->k * p->dim);
  for (size_t i = 0; i < p->n; i++)
    if (f->labels[i] >= 0) out->weights[f->labels[i]] += 1.0f;
    else out->noise++;
  out->inertia = f->inertia;
  out->sample_size = p->n;
  json_t *per = json_object();
  for (int c = 0; c < f->k && stab; c++) {
    char key[24];
    snprintf(key, sizeof(key), "%d", out->ids[c]);
    json_object_set_new(per, key, json_real(stab[c]));
  }
  json_t *s = json_object_get(out->quality, "stability");
  if (s) json_object_set_new(s, "per_cluster", per);
  else json_decref(per);
  return 0;
}

/* The drift reference: labelled sample points, evenly spread. */
static int proposal_reference(const sd_config *cfg, const rc_points *p,
                              const rc_fit *f, sd_proposal *out) {
  size_t labelled = 0, cap = (size_t)cfg->drift_sample, dim = (size_t)p->dim;
  for (size_t i = 0; i < p->n; i++) labelled += f->labels[i] >= 0;
  size_t n = labelled < cap ? labelled : cap;
  out->ref_x = malloc(sizeof(float) * (n ? n : 1) * dim);
  out->ref_label = malloc(sizeof(int32_t) * (n ? n : 1));
  out->ref_sim = malloc(sizeof(float) * (n ? n : 1));
  if (!out->ref_x || !out->ref_label || !out->ref_sim) return SD_ENOMEM;
  size_t seen = 0;
  for (size_t i = 0; i < p->n && out->ref_n < n; i++) {
    if (f->labels[i] < 0) continue;
    if (seen++ * n / labelled != out->ref_n) continue; /* every labelled/n-th */
    const float *x = p->x + i * dim;
    memcpy(out->ref_x + out->ref_n * dim, x, sizeof(float) * dim);
    out->ref_label[out->ref_n] = f->labels[i];
    out->ref_sim[out->ref_n++] = cblas_sdot(
        p->dim, x, 1, f->centroids + (size_t)f->labels[i] * dim, 1);
  }
  return 0;
}

static int run_points(const sd_config *cfg, const sd_encoder *enc,
                      const sd_recluster_req *req, const sd_live_model *live,
                      rc_points *p, sd_proposal *out) {
  rc_keyed *keys = NULL;
  size_t n = 0;
  int rc = sample_draw(cfg, req->space, req->seed, &keys, &n);
  if (rc < 0) return rc;
  if (req->space == SD_SPACE_INTENTS)
    rc = load_texts(cfg, enc, req, live, keys, n, p, &out->proj);
  else
    rc = load_users(cfg, live, keys, n, p);
  free(keys);
  return rc;
}

int sd_recluster_run(const sd_config *cfg, const sd_encoder *enc,
                     const sd_recluster_req *req, const sd_live_model *live,
                     sd_proposal *out, char *msg, size_t msglen) {
  int64_t t0 = sd_mono_ns();
  rc_points p = {0};
  rc_fit f = {0};
  if (msglen) msg[0] = 0;
  double *stab = NULL;
  memset(out, 0, sizeof(*out));
  out->space = req->space;
  out->algo = req->algo;
  out->cause_alert = req->cause_alert;
  out->quality = json_object();
  int rc = out->quality ? run_points(cfg, enc, req, live, &p, out) : SD_ENOMEM;
  if (rc == 0 && (p.n < 2 || (req->k && (size_t)req->k > p.n))) {
    snprintf(msg, msglen, "not enough points to cluster (%zu sampled)", p.n);
    rc = SD_EINVALID;
  }
  if (rc == 0) rc = rc_fit_model(cfg, req, live, &p, &f, out->quality);
  if (rc == 0 && f.k < 1) {
    snprintf(msg, msglen, "the %s family found no clusters in %zu points",
             sd_algo_name(req->algo), p.n);
    rc = SD_EINVALID;
  }
  if (rc == 0 && !(stab = calloc((size_t)f.k, sizeof(double)))) rc = SD_ENOMEM;
  if (rc == 0) rc = rc_quality(cfg, req, &p, &f, out->quality, stab);
  if (rc == 0) rc = rc_match(cfg, live, &p, &f, out);
  if (rc == 0) rc = proposal_fill(&p, &f, cfg->stability_runs ? stab : NULL, out);
  if (rc == 0) rc = proposal_reference(cfg, &p, &f, out);
  if (rc < 0 && !msg[0])
    snprintf(msg, msglen, "re-clustering failed: %s", sd_err_message(rc));
  free(stab);
  rc_fit_free(&f);
  rc_points_free(&p);
  out->duration_ms = (sd_mono_ns() - t0) / 1000000;
  if (rc < 0) sd_proposal_free(out);
  return rc;
}
