/*
 * recluster_fit.c -- fitting a family to the sampled points, choosing K,
 * and scoring the result: silhouette, Davies-Bouldin, and clusterwise
 * bootstrap stability (Hennig 2007: the mean, over re-fits on 80%
 * subsamples, of each cluster's best Jaccard overlap).
 */
#include "recluster_int.h"

#include "segmentd/alloc.h"
#include "segmentd/cluster_algos.h"
#include "segmentd/cluster_eval.h"
#include "segmentd/cluster_kmeans.h"
#include "segmentd/err.h"
#include "segmentd/log.h"
#include "segmentd/rng.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define K_GRID 8
#define SUBSAMPLE 0.8

void rc_fit_free(rc_fit *f) {
  free(f->labels);
  free(f->centroids);
  memset(f, 0, sizeof(*f));
}

/* Sum of 1 - x.c over labelled points (spherical inertia). */
static double fit_inertia(const float *x, size_t n, int dim, const rc_fit *f) {
  double s = 0;
  for (size_t i = 0; i < n; i++)
    if (f->labels[i] >= 0)
      s += 1.0 - cblas_sdot(dim, x + i * (size_t)dim, 1,
                            f->centroids + (size_t)f->labels[i] * dim, 1);
  return s;
}

/* quick: one start, 30 iterations (K search, bootstrap); otherwise
 * `restarts` starts of up to 300 iterations, as scikit-learn's defaults. */
static int fit_kmeans(const float *x, size_t n, int dim, int k, uint64_t seed,
                      int restarts, rc_fit *out) {
  sd_kmeans_opts o = sd_kmeans_defaults(k);
  o.spherical = 1;
  o.seed = seed;
  o.restarts = restarts > 0 ? restarts : 1;
  o.max_iter = restarts > 0 ? 300 : 30;
  sd_kmeans_result r = {0};
  int rc = sd_kmeans_fit(x, n, dim, &o, &r);
  if (rc < 0) return rc;
  out->k = r.k;
  out->labels = r.assign;
  out->centroids = r.centroids;
  out->inertia = r.inertia;
  return 0;
}

static int fit_tree_cut(const sd_tree *t, int k, rc_fit *out) {
  out->labels = malloc(sizeof(int32_t) * (t->n ? t->n : 1));
  if (!out->labels) return SD_ENOMEM;
  return sd_tree_cut(t, k, 0, 1, out->labels, &out->centroids, &out->k);
}

static int fit_density(const float *x, size_t n, int dim, uint64_t seed,
                       rc_fit *out) {
  sd_density_opts o = {0};
  o.spherical = 1;
  o.seed = seed;
  sd_density_result r = {0};
  int rc = sd_density_fit(x, n, dim, &o, &r);
  if (rc < 0) return rc;
  out->k = r.k;
  out->labels = r.labels;
  out->centroids = r.centroids;
  return 0;
}

/* One fit of the family with k clusters (k ignored by density);
 * restarts 0 = a quick fit. */
static int fit_once(sd_algo algo, const float *x, size_t n, int dim, int k,
                    uint64_t seed, int restarts, rc_fit *out) {
  memset(out, 0, sizeof(*out));
  int rc;
  if (algo == SD_ALGO_KMEANS) {
    rc = fit_kmeans(x, n, dim, k, seed, restarts, out);
  } else if (algo == SD_ALGO_DENSITY) {
    rc = fit_density(x, n, dim, seed, out);
  } else {
    sd_tree t = {0};
    sd_tree_opts o = {0, seed, 1};
    rc = sd_tree_build(x, n, dim, &o, &t);
    if (rc == 0) rc = fit_tree_cut(&t, k < t.m ? k : t.m, out);
    sd_tree_free(&t);
  }
  if (rc == 0) out->inertia = fit_inertia(x, n, dim, out);
  else rc_fit_free(out);
  return rc;
}

/* ---- choosing K ---- */

/* Candidate K values: a geometric grid over [k_min, min(k_max, n/2)]. */
static int k_grid(const sd_config *cfg, size_t n, int *ks) {
  long lo = cfg->k_min < 2 ? 2 : cfg->k_min;
  long hi = cfg->k_max < (long)(n / 2) ? cfg->k_max : (long)(n / 2);
  if (hi < lo) hi = lo;
  int m = 0;
  for (int i = 0; i < K_GRID; i++) {
    double t = K_GRID == 1 ? 0 : (double)i / (K_GRID - 1);
    int k = (int)lround(exp(log((double)lo) + t * (log((double)hi) - log((double)lo))));
    if (m == 0 || k > ks[m - 1]) ks[m++] = k; /* cppcheck-suppress uninitvar */
  }
  return m;
}

typedef struct {
  const sd_config *cfg;
  const sd_recluster_req *req;
  const rc_points *p;
  const sd_tree *tree; /* hierarchical: cut this tree; NULL: k-means */
  json_t *scores;      /* [{"k", "silhouette"}] in the order tried */
} k_search;

/* Fits k (quickly) and records its silhouette. */
static int k_try(k_search *s, int k) {
  rc_fit f = {0};
  int rc = s->tree ? fit_tree_cut(s->tree, k, &f)
                   : fit_once(SD_ALGO_KMEANS, s->p->x, s->p->n, s->p->dim, k,
                              s->req->seed + (uint64_t)k, 0, &f);
  double sil = 0;
  if (rc == 0)
    rc = sd_silhouette(s->p->x, s->p->n, s->p->dim, f.labels, f.k, 1,
                       (size_t)s->cfg->silhouette_sample, s->req->seed, &sil);
  if (rc == 0)
    json_array_append_new(s->scores, json_pack("{s:i,s:f}", "k", k,
                                               "silhouette", sil));
  rc_fit_free(&f);
  return rc;
}

/*
 * The smallest K whose silhouette is within --k-tolerance of the best one
 * tried. On short texts the silhouette keeps creeping up as K grows (every
 * split of a loose topic helps a little), so the best score alone drifts to
 * the top of the range; the most parsimonious K that scores about as well
 * is the one-standard-error habit applied to clustering. A well separated
 * structure has a sharp peak and is chosen exactly.
 */
static int k_choose(const k_search *s) {
  double best = -2;
  size_t i;
  json_t *o;
  json_array_foreach(s->scores, i, o)
    if (json_real_value(json_object_get(o, "silhouette")) > best)
      best = json_real_value(json_object_get(o, "silhouette"));
  double bar = best > 0 ? best * (1.0 - s->cfg->k_tolerance) : best;
  int k = 0;
  json_array_foreach(s->scores, i, o) {
    int ki = (int)json_integer_value(json_object_get(o, "k"));
    if (json_real_value(json_object_get(o, "silhouette")) >= bar && (!k || ki < k))
      k = ki;
  }
  return k;
}

static int k_tried(const k_search *s, int k) {
  size_t i;
  json_t *o;
  json_array_foreach(s->scores, i, o)
    if (json_integer_value(json_object_get(o, "k")) == k) return 1;
  return 0;
}

/* A geometric grid, then a refinement between the chosen K's neighbours. */
static int k_select(k_search *s, int *chosen) {
  int ks[K_GRID], m = k_grid(s->cfg, s->p->n, ks), rc = 0;
  for (int i = 0; i < m && rc == 0; i++) rc = k_try(s, ks[i]);
  if (rc < 0) return rc;
  int pick = k_choose(s), at = 0;
  while (at < m && ks[at] != pick) at++;
  int lo = at > 0 ? ks[at - 1] : ks[0], hi = at + 1 < m ? ks[at + 1] : ks[m - 1];
  for (int j = 1; j <= 4 && rc == 0; j++) {
    int k = lo + (int)lround((double)(hi - lo) * j / 5.0);
    if (!k_tried(s, k) && k >= 2 && (size_t)k <= s->p->n) rc = k_try(s, k);
  }
  *chosen = k_choose(s);
  return rc;
}

/* The live clusters as centroids in the points' space (their sampled
 * members' normalised mean); NULL when one has no member in the sample. */
static float *live_centroids(const sd_live_model *live, const rc_points *p) {
  float *c = sd_calloc_n((size_t)live->k, (size_t)p->dim, sizeof(float));
  int *have = calloc((size_t)live->k, sizeof(int));
  int ok = c && have;
  for (size_t i = 0; ok && i < p->n; i++)
    for (int o = 0; o < live->k; o++)
      if (p->old_id[i] == live->ids[o]) {
        cblas_saxpy(p->dim, 1.0f, p->x + i * (size_t)p->dim, 1,
                    c + (size_t)o * p->dim, 1);
        have[o] = 1;
        break;
      }
  for (int o = 0; ok && o < live->k; o++) {
    float len = cblas_snrm2(p->dim, c + (size_t)o * p->dim, 1);
    ok = have[o] && len > 0;
    if (ok) cblas_sscal(p->dim, 1.0f / len, c + (size_t)o * p->dim, 1);
  }
  free(have);
  if (!ok) free(c);
  return ok ? c : NULL;
}

/* Continuity: a k-means from the live clusters is kept over the fresh fit
 * in *out unless the fresh one lowers inertia by --fresh-gain. */
static int warm_start(const sd_config *cfg, const sd_recluster_req *req,
                      const sd_live_model *live, const rc_points *p,
                      rc_fit *out, json_t *quality) {
  float *init = live_centroids(live, p);
  if (!init) return 0; /* a live cluster vanished from the sample: fresh */
  sd_kmeans_opts o = sd_kmeans_defaults(live->k);
  o.spherical = 1;
  o.seed = req->seed;
  o.restarts = 1;
  o.max_iter = 300;
  o.init = init;
  sd_kmeans_result r = {0};
  int rc = sd_kmeans_fit(p->x, p->n, p->dim, &o, &r);
  free(init);
  if (rc < 0) return rc;
  int fresh = out->inertia < r.inertia * (1.0 - cfg->fresh_gain);
  json_object_set_new(quality, "start",
                      json_pack("{s:s,s:f,s:f,s:f}", "kept", fresh ? "fresh" : "warm",
                                "warm_inertia", r.inertia, "fresh_inertia",
                                out->inertia, "fresh_gain", cfg->fresh_gain));
  if (!fresh) {
    rc_fit_free(out);
    out->k = r.k;
    out->labels = r.assign;
    out->centroids = r.centroids;
    out->inertia = r.inertia;
  } else {
    sd_kmeans_result_free(&r);
  }
  return 0;
}

int rc_fit_model(const sd_config *cfg, const sd_recluster_req *req,
                 const sd_live_model *live, const rc_points *p, rc_fit *out,
                 json_t *quality) {
  k_search s = {cfg, req, p, NULL, json_array()};
  sd_tree tree = {0};
  int rc = s.scores ? 0 : SD_ENOMEM;
  const char *method = req->algo == SD_ALGO_DENSITY ? "density"
                       : req->k ? "given" : "silhouette";
  if (rc == 0 && req->algo == SD_ALGO_HIER) {
    sd_tree_opts o = {0, req->seed, 1};
    rc = sd_tree_build(p->x, p->n, p->dim, &o, &tree);
    s.tree = &tree;
  }
  int k = req->k;
  if (rc == 0 && !k && req->algo != SD_ALGO_DENSITY) {
    rc = k_select(&s, &k);
  }
  if (rc == 0 && req->algo == SD_ALGO_HIER) {
    memset(out, 0, sizeof(*out));
    rc = fit_tree_cut(&tree, k < tree.m ? k : tree.m, out);
    if (rc == 0) out->inertia = fit_inertia(p->x, p->n, p->dim, out);
  } else if (rc == 0) {
    rc = fit_once(req->algo, p->x, p->n, p->dim, k, req->seed,
                  (int)cfg->restarts, out);
    if (rc == 0 && req->algo == SD_ALGO_KMEANS && live && live->k == k)
      rc = warm_start(cfg, req, live, p, out, quality);
  }
  sd_tree_free(&tree);
  if (rc == 0)
    json_object_set_new(quality, "k_selection",
                        json_pack("{s:s,s:i,s:f,s:o}", "method", method,
                                  "chosen", out->k, "tolerance",
                                  cfg->k_tolerance, "scores", s.scores));
  else
    json_decref(s.scores);
  return rc;
}

/* ---- quality and stability ---- */

/* A subsample of m of the n rows (partial Fisher-Yates), copied out. */
static int subsample(const rc_points *p, size_t m, uint64_t seed,
                     size_t *idx, float *xs) {
  for (size_t i = 0; i < p->n; i++) idx[i] = i;
  for (size_t i = 0; i < m; i++) {
    size_t j = i + (size_t)(sd_splitmix64(&seed) % (p->n - i));
    size_t t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
  for (size_t i = 0; i < m; i++)
    memcpy(xs + i * (size_t)p->dim, p->x + idx[i] * (size_t)p->dim,
           sizeof(float) * (size_t)p->dim);
  return 0;
}

/* Adds, for each original cluster, its best Jaccard with a re-fit's
 * clusters on the subsample rows idx[0..m). */
static int jaccard_add(const rc_fit *f, const size_t *idx, size_t m,
                       const rc_fit *g, double *acc) {
  int64_t *tab = calloc((size_t)f->k * (size_t)(g->k > 0 ? g->k : 1), sizeof(int64_t));
  int64_t *na = calloc((size_t)f->k, sizeof(int64_t));
  int64_t *nb = calloc((size_t)(g->k > 0 ? g->k : 1), sizeof(int64_t));
  if (!tab || !na || !nb) {
    free(tab), free(na), free(nb);
    return SD_ENOMEM;
  }
  for (size_t i = 0; i < m; i++) {
    int32_t a = f->labels[idx[i]], b = g->labels[i];
    if (a >= 0) na[a]++;
    if (b >= 0) nb[b]++;
    if (a >= 0 && b >= 0) tab[(size_t)a * g->k + b]++;
  }
  for (int a = 0; a < f->k; a++) {
    double best = 0;
    for (int b = 0; b < g->k; b++) {
      int64_t both = tab[(size_t)a * g->k + b], uni = na[a] + nb[b] - both;
      if (uni > 0 && (double)both / uni > best) best = (double)both / uni;
    }
    acc[a] += best;
  }
  free(tab), free(na), free(nb);
  return 0;
}

static int stability(const sd_config *cfg, const sd_recluster_req *req,
                     const rc_points *p, const rc_fit *f, double *stab) {
  size_t m = (size_t)(p->n * SUBSAMPLE);
  if (m < 2) return 0;
  size_t *idx = malloc(sizeof(size_t) * p->n);
  float *xs = malloc(sizeof(float) * m * (size_t)p->dim);
  int rc = idx && xs ? 0 : SD_ENOMEM;
  int runs = (int)cfg->stability_runs;
  for (int r = 0; r < runs && rc == 0; r++) {
    rc_fit g = {0};
    subsample(p, m, req->seed + 7919u * (uint64_t)(r + 1), idx, xs);
    int k = f->k <= (int)m ? f->k : (int)m;
    rc = fit_once(req->algo, xs, m, p->dim, k, req->seed + (uint64_t)r + 1, 0, &g);
    if (rc == 0) rc = jaccard_add(f, idx, m, &g, stab);
    rc_fit_free(&g);
  }
  for (int a = 0; a < f->k && runs > 0; a++) stab[a] /= runs;
  free(idx);
  free(xs);
  return rc;
}

int rc_quality(const sd_config *cfg, const sd_recluster_req *req,
               const rc_points *p, const rc_fit *f, json_t *quality,
               double *stab) {
  double sil = 0, db = 0;
  int rc = f->k >= 2 ? sd_silhouette(p->x, p->n, p->dim, f->labels, f->k, 1,
                                     (size_t)cfg->silhouette_sample, req->seed,
                                     &sil)
                     : 0;
  if (rc == 0 && f->k >= 2)
    rc = sd_davies_bouldin(p->x, p->n, p->dim, f->labels, f->centroids, f->k, &db);
  if (rc == 0 && cfg->stability_runs > 0) rc = stability(cfg, req, p, f, stab);
  if (rc < 0) return rc;
  double mean = 0;
  for (int a = 0; a < f->k; a++) mean += stab[a] / f->k;
  json_object_set_new(quality, "silhouette", json_real(sil));
  json_object_set_new(quality, "davies_bouldin", json_real(db));
  json_object_set_new(quality, "inertia", json_real(f->inertia));
  if (cfg->stability_runs > 0)
    json_object_set_new(quality, "stability",
                        json_pack("{s:s,s:i,s:f,s:f}", "method",
                                  "bootstrap_jaccard", "runs",
                                  (int)cfg->stability_runs, "subsample",
                                  SUBSAMPLE, "mean", mean));
  return 0;
}
