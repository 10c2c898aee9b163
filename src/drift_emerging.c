/*
 * drift_emerging.c -- the emerging_cluster checks of drift.h: two methods
 * that find groups of new points, one candidate pipeline.
 *
 *   neighbourhood  the recent ring (the latest --drift-sample window
 *       points) against the drift baseline (--drift-baseline points, 4
 *       times as many by default: the fewer of a point's neighbours chance
 *       makes recent, the sooner a small new group stands out). Each recent
 *       point's K nearest neighbours (K = --emerging-neighbours; cosine, one
 *       sgemm) among both sets: with no change, how many of them are
 *       recent is about Binomial(K, p0), p0 = (m - 1) / (n + m - 1) for n
 *       baseline and m recent points (the k-nearest-
 *       neighbour two-sample idea of Schilling 1986 and Henze 1988, used
 *       point by point). A point whose count has a tail probability below
 *       --emerging-p-value sits where the baseline has nothing. Connected
 *       components of such points (an edge: one among the other's K
 *       nearest), less their known members (known_member: a rim, or a
 *       twin in the baseline), of at least
 *       --emerging-neighbourhood-min-size are candidates. This sees a
 *       new topic even where its points fall inside a known cluster's
 *       radius (a new intent close to known ones), which the outlier method
 *       cannot.
 *   density  the outlier ring (points beyond their cluster's radius),
 *       re-encoded when the space has an encoder for that (drift.h), then
 *       density clustering (sd_density_fit; a second pass lets the whole
 *       buffer be one group). A group must be coherent (mean cosine to its
 *       centre >= EMERGING_COHESION where it was found) and not the rim of a
 *       known cluster (its centre less similar to the nearest centroid than
 *       that cluster's typical member).
 * Two candidates whose centres (unit means in the space's own vectors, the
 * alert's identity in watch.c) are within SAME_GROUP_COS are one. Every
 * method also reports a passing check when it found nothing, so watch.c
 * can clear its alerts.
 */
#include "drift_int.h"

#include "segmentd/cluster_algos.h"
#include "segmentd/drift_stats.h"
#include "segmentd/err.h"
#include "segmentd/label_terms.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOP_TERMS 5
#define EMERGING_REPS 3
#define SAME_GROUP_COS 0.8f /* two groups with centres this close are one */
#define MEMBERS_SAMPLE 50
#define EMERGING_COHESION 0.5 /* mean member cosine of a density group */
#define MIN_BASELINE 50       /* baseline rows the neighbourhood method needs */
#define RIM_SHARE 0.3 /* fewer of a member's K neighbours in its group: rim */
#define TIE_COS 1e-6f /* cosines this close are a tie (copies of one text) */

/* One candidate: group j of labels over a pool. */
typedef struct {
  const drift_pool *p;
  const int32_t *labels;
  int j;
  size_t size;
  const char *method;
  int rim_test; /* drop a group whose centre is a known cluster's rim */
  long min;     /* the method's minimum size */
} group;

/* Top terms of the group's texts against the pool's other texts. */
static json_t *group_terms(const group *g) {
  sd_terms *t = sd_terms_new();
  json_t *a = json_array();
  const char *top[2 * TOP_TERMS];
  for (size_t i = 0; t && i < g->p->n; i++)
    if (g->p->text[i])
      sd_terms_add(t, g->labels[i] == g->j ? 0 : 1, g->p->text[i],
                   strlen(g->p->text[i]), 1);
  if (t && a && sd_terms_top(t, 2, TOP_TERMS, top) == 0)
    for (int k = 0; k < TOP_TERMS && top[k]; k++)
      json_array_append_new(a, json_string(top[k]));
  sd_terms_free(t);
  return a;
}

/* The members nearest the group's centre: [{"id","text"}]. */
static json_t *group_reps(const group *g, int dim, const float *cen) {
  json_t *a = json_array();
  int best[EMERGING_REPS];
  float bsim[EMERGING_REPS];
  for (int k = 0; k < EMERGING_REPS; k++) best[k] = -1, bsim[k] = -2;
  for (size_t i = 0; i < g->p->n; i++) {
    if (g->labels[i] != g->j) continue;
    float s = cblas_sdot(dim, g->p->x + i * (size_t)dim, 1, cen, 1);
    for (int k = 0; k < EMERGING_REPS; k++) {
      if (s <= bsim[k]) continue;
      memmove(best + k + 1, best + k, sizeof(int) * (size_t)(EMERGING_REPS - k - 1));
      memmove(bsim + k + 1, bsim + k, sizeof(float) * (size_t)(EMERGING_REPS - k - 1));
      best[k] = (int)i, bsim[k] = s;
      break;
    }
  }
  for (int k = 0; k < EMERGING_REPS && best[k] >= 0 && a; k++)
    json_array_append_new(a, json_pack("{s:s?,s:s?}", "id", g->p->id[best[k]],
                                       "text", g->p->text[best[k]]));
  return a;
}

/* Up to MEMBERS_SAMPLE ids of the group, evenly spread over its members (a
 * fair sample, unlike the representatives nearest its centre). */
static json_t *group_members(const group *g) {
  json_t *a = json_array();
  size_t want = g->size < MEMBERS_SAMPLE ? g->size : MEMBERS_SAMPLE;
  size_t seen = 0, got = 0;
  for (size_t i = 0; a && i < g->p->n && got < want; i++) {
    if (g->labels[i] != g->j) continue;
    if (seen++ * want / g->size != got) continue;
    got++;
    json_array_append_new(a, g->p->id[i] ? json_string(g->p->id[i]) : json_null());
  }
  return a;
}

/* The nearest model cluster to a unit vector: its index and cosine. */
static int nearest(const drift_work *w, const float *v, float *cosv) {
  int best = 0;
  *cosv = -2;
  for (int c = 0; c < w->ref.k; c++) {
    float s = cblas_sdot(w->dim, w->ref.centroids + (size_t)c * w->dim, 1, v, 1);
    if (s > *cosv) *cosv = s, best = c;
  }
  return best;
}

/* The unit mean of the group's points in the space's own vectors. */
static void group_mean(const group *g, int dim, float *cen) {
  memset(cen, 0, sizeof(float) * (size_t)dim);
  for (size_t i = 0; i < g->p->n; i++)
    if (g->labels[i] == g->j)
      cblas_saxpy(dim, 1.0f, g->p->x + i * (size_t)dim, 1, cen, 1);
  float n = cblas_snrm2(dim, cen, 1);
  if (n > 0) cblas_sscal(dim, 1.0f / n, cen, 1);
}

/* Folds the group into an earlier candidate with a centre this close (one
 * new group found twice, or split in two): 1 when it did. */
static int merge_same(sd_drift_report *r, int dim, const float *cen,
                      size_t size) {
  for (size_t i = 0; i < r->n; i++) {
    sd_drift_check *o = &r->checks[i];
    if (!o->centroid || cblas_sdot(dim, o->centroid, 1, cen, 1) < SAME_GROUP_COS)
      continue;
    if (!strcmp(o->method, "density")) { /* a split: sizes add up */
      o->value += (double)size;
      json_object_set_new(o->detail, "size", json_integer((json_int_t)o->value));
    }
    return 1;
  }
  return 0;
}

static void candidate_message(sd_drift_check *c, const group *g, long long near,
                              float cosv, json_t *terms) {
  char words[160] = "";
  for (size_t k = 0; k < json_array_size(terms); k++)
    snprintf(words + strlen(words), sizeof(words) - strlen(words), "%s%s",
             k ? ", " : "", json_string_value(json_array_get(terms, k)));
  snprintf(c->message, sizeof(c->message), "emerging cluster of %zu %s "
           "(nearest cluster %lld at cosine %.2f)%s%s", g->size,
           strcmp(g->method, "density") ? "recent points where the baseline "
           "has none" : "points far from every cluster", near, (double)cosv,
           words[0] ? ": " : "", words);
}

static int candidate_check(const drift_work *w, const group *g, float *cen,
                           sd_drift_report *r) {
  float cosv;
  int near = nearest(w, cen, &cosv);
  /* a centre as close to a known cluster as its typical member is that
   * cluster's rim, not a new group */
  if (g->rim_test && cosv >= w->ref.cohesion[near]) return 0;
  if (merge_same(r, w->dim, cen, g->size)) return 0;
  sd_drift_check *c = drift_add_check(r, "emerging_cluster", g->method, -1);
  if (!c) return SD_ENOMEM;
  c->centroid = cen; /* the report owns it now */
  c->evaluated = c->drifted = 1;
  c->severity = SD_SEV_WARNING;
  c->value = (double)g->size;
  c->threshold = (double)g->min;
  json_t *terms = group_terms(g);
  c->detail = json_pack("{s:I,s:I,s:f,s:o,s:o,s:o}", "size", (json_int_t)g->size,
                        "nearest_cluster", (json_int_t)w->ref.ids[near],
                        "nearest_similarity", (double)cosv, "top_terms", terms,
                        "representatives", group_reps(g, w->dim, cen),
                        "members_sample", group_members(g));
  candidate_message(c, g, (long long)w->ref.ids[near], cosv, terms);
  return 1;
}

static int add_candidate(const drift_work *w, const group *g,
                         sd_drift_report *r) {
  float *cen = malloc(sizeof(float) * (size_t)w->dim);
  if (!cen) return SD_ENOMEM;
  group_mean(g, w->dim, cen);
  int rc = candidate_check(w, g, cen, r);
  if (rc != 1) free(cen);
  return rc < 0 ? rc : 0;
}

/* A passing check of one method: nothing found (value: the largest group). */
static int add_quiet(sd_drift_report *r, const char *method, int evaluated,
                     size_t largest, long min, const char *what) {
  sd_drift_check *c = drift_add_check(r, "emerging_cluster", method, -1);
  if (!c) return SD_ENOMEM;
  c->evaluated = evaluated;
  c->value = (double)largest;
  c->threshold = (double)min;
  snprintf(c->message, sizeof(c->message), "%s, no dense new group", what);
  return 0;
}

/* ---- density over the outliers ---- */

/* The outliers as the density search sees them: re-encoded texts when the
 * space has an encoder for that (drift.h), else their own vectors. */
static float *search_vectors(const sd_drift *dr, int space, const drift_pool *p,
                             int own_dim, int *dim) {
  sd_drift_encode_fn fn = dr->encode[space];
  *dim = fn ? dr->encode_dim[space] : own_dim;
  float *x = malloc(sizeof(float) * (p->n ? p->n : 1) * (size_t)*dim);
  if (!x) return NULL;
  if (!fn) {
    memcpy(x, p->x, sizeof(float) * p->n * (size_t)own_dim);
    return x;
  }
  for (size_t i = 0; i < p->n; i++) {
    float *row = x + i * (size_t)*dim;
    const char *t = p->text[i];
    if (!t || fn(dr->encode_ud[space], t, strlen(t), row) < 0)
      memset(row, 0, sizeof(float) * (size_t)*dim);
  }
  return x;
}

/* Mean cosine of group j's members to its centroid where it was found:
 * a real group is coherent; "every outlier" (a single-cluster answer over
 * scattered points) is not. */
static double group_cohesion(const float *xs, int dim, size_t n,
                             const sd_density_result *d, int j) {
  double sum = 0;
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (d->labels[i] == j)
      sum += cblas_sdot(dim, xs + i * (size_t)dim, 1,
                        d->centroids + (size_t)j * dim, 1), m++;
  return m ? sum / (double)m : 0;
}

/* One density search over the outliers (single: the whole buffer may be
 * the group, for when nearly every outlier is about the new thing). */
static int search(const sd_config *cfg, const drift_work *w, const float *xs,
                  int dim, int single, sd_drift_report *r, size_t *largest) {
  size_t min = (size_t)cfg->emerging_min_size;
  sd_density_opts o = {(int)min, 0, 1, (uint64_t)r->checked_at, 0, single};
  sd_density_result d = {0};
  int rc = sd_density_fit(xs, w->out.n, dim, &o, &d);
  for (int j = 0; rc == 0 && j < d.k; j++) {
    group g = {&w->out, d.labels, j, 0, "density", 1, cfg->emerging_min_size};
    for (size_t i = 0; i < w->out.n; i++) g.size += d.labels[i] == j;
    if (g.size > *largest) *largest = g.size;
    if (g.size >= min && group_cohesion(xs, dim, w->out.n, &d, j) >= EMERGING_COHESION)
      rc = add_candidate(w, &g, r);
  }
  sd_density_result_free(&d);
  return rc;
}

static int check_density(const sd_drift *dr, const drift_work *w,
                         sd_drift_report *r) {
  const sd_config *cfg = dr->cfg;
  size_t before = r->n, min = (size_t)cfg->emerging_min_size, largest = 0;
  int rc = 0, dim;
  if (w->out.n >= min) {
    float *xs = search_vectors(dr, r->space, &w->out, w->dim, &dim);
    rc = xs ? search(cfg, w, xs, dim, 0, r, &largest) : SD_ENOMEM;
    if (rc == 0 && r->n == before) rc = search(cfg, w, xs, dim, 1, r, &largest);
    free(xs);
  }
  if (rc < 0 || r->n > before) return rc;
  char what[64];
  snprintf(what, sizeof(what), "%zu outliers", w->out.n);
  return add_quiet(r, "density", w->out.n >= min, largest, cfg->emerging_min_size,
                   what);
}

/* ---- neighbourhood: recent points against the baseline ---- */

/* The K columns of row s (length cols) with the largest values, largest
 * first, skipping column self; best gets their values. */
static void top_neighbours(const float *s, size_t cols, size_t self, int K,
                           int *nb, float *best) {
  for (int k = 0; k < K; k++) nb[k] = -1, best[k] = -3;
  for (size_t c = 0; c < cols; c++) {
    if (c == self || s[c] <= best[K - 1]) continue;
    int k = K - 1;
    while (k > 0 && best[k - 1] < s[c]) {
      best[k] = best[k - 1], nb[k] = nb[k - 1];
      k--;
    }
    best[k] = s[c], nb[k] = (int)c;
  }
}

static int find_root(int32_t *parent, int i) {
  while (parent[i] != i) i = parent[i] = parent[parent[i]];
  return i;
}

/* nb: m x K neighbour columns (recent rows start at column n). Labels the
 * new points' components 0.. (others -1); returns their count. */
static int components(const int *nb, int K, const char *is_new, size_t n,
                      size_t m, int32_t *labels) {
  for (size_t i = 0; i < m; i++) labels[i] = (int32_t)i;
  for (size_t i = 0; i < m; i++)
    for (int k = 0; is_new[i] && k < K; k++) {
      int c = nb[i * (size_t)K + (size_t)k];
      if (c < (int)n || !is_new[c - (int)n]) continue;
      int a = find_root(labels, (int)i), b = find_root(labels, c - (int)n);
      if (a != b) labels[a] = b;
    }
  int32_t *root = malloc(sizeof(int32_t) * 2 * (m ? m : 1));
  if (!root) return SD_ENOMEM;
  int32_t *id = root + m;
  int k = 0;
  for (size_t i = 0; i < m; i++) root[i] = find_root(labels, (int)i), id[i] = -1;
  for (size_t i = 0; i < m; i++)
    if (is_new[i] && id[root[i]] < 0) id[root[i]] = k++;
  for (size_t i = 0; i < m; i++) labels[i] = is_new[i] ? id[root[i]] : -1;
  free(root);
  return k;
}

/* The recent points' K nearest neighbours among the n baseline points
 * (columns 0..n-1) and the recent ones (columns n..), nearest first. */
typedef struct {
  int *nb;    /* m x K columns; -1 where there are fewer */
  float *sim; /* m x K cosines */
  int K;
  size_t n;
} knn;

/* Fills kn and marks the recent points whose neighbourhood is mostly
 * recent. */
static int mark_new(const sd_config *cfg, const drift_work *w, knn *kn,
                    char *is_new) {
  size_t n = w->ref.n, m = w->recent.n, dim = (size_t)w->dim, cols = n + m;
  int K = kn->K;
  float *all = malloc(sizeof(float) * cols * dim);
  float *s = malloc(sizeof(float) * m * cols);
  if (!all || !s) {
    free(all);
    free(s);
    return SD_ENOMEM;
  }
  memcpy(all, w->ref.x, sizeof(float) * n * dim);
  memcpy(all + n * dim, w->recent.x, sizeof(float) * m * dim);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)cols,
              (int)dim, 1.0f, w->recent.x, (int)dim, all, (int)dim, 0.0f, s,
              (int)cols);
  double p0 = (double)(m - 1) / (double)(cols - 1);
  for (size_t i = 0; i < m; i++) {
    int *row = kn->nb + i * (size_t)K, hits = 0;
    top_neighbours(s + i * cols, cols, n + i, K, row, kn->sim + i * (size_t)K);
    for (int k = 0; k < K; k++) hits += row[k] >= (int)n;
    is_new[i] = sd_binom_sf(hits, K, p0) < cfg->emerging_p_value;
  }
  free(all);
  free(s);
  return 0;
}

/* 1 when member i (labels[i] >= 0) is a known point beside its group
 * rather than in it:
 *   rim   fewer than RIM_SHARE of its K neighbours are in its group (its
 *         own neighbourhood lies elsewhere);
 *   twin  its nearest neighbour among the baseline and its group is a
 *         baseline point (the baseline already holds one like it); among
 *         equally near ones, when the baseline has at least as many as the
 *         group (so a burst of copies of one text is not known just
 *         because the baseline has a copy, and a copy of a baseline point
 *         amid the group does not save its neighbours). In a
 *         replay of BANKING77 with 5 held-back intents (bench/
 *         drift_replay.py --member-stats) this held for 14% of such
 *         groups' held-back members and 73% of their known ones. */
static int known_member(const knn *kn, size_t i, const int32_t *labels) {
  const int *row = kn->nb + i * (size_t)kn->K;
  const float *sim = kn->sim + i * (size_t)kn->K;
  int in = 0, twin = -1, n = (int)kn->n;
  for (int k = 0; k < kn->K; k++) {
    int c = row[k], mine = c >= n && labels[c - n] == labels[i];
    if (twin < 0 && (mine || (c >= 0 && c < n))) { /* the nearest: a tie? */
      int base = 0, mates = 0;
      for (int j = k; j < kn->K && sim[j] >= sim[k] - TIE_COS; j++) {
        base += row[j] >= 0 && row[j] < n;
        mates += row[j] >= n && labels[row[j] - n] == labels[i];
      }
      twin = base >= mates;
    }
    in += mine;
  }
  return (double)in < RIM_SHARE * kn->K || twin == 1;
}

/* Drops the known members (known_member) of every group: one pass over the
 * original labels. */
static int prune_known(const knn *kn, size_t m, int32_t *labels) {
  char *drop = calloc(m ? m : 1, 1);
  if (!drop) return SD_ENOMEM;
  for (size_t i = 0; i < m; i++)
    drop[i] = labels[i] >= 0 && known_member(kn, i, labels);
  for (size_t i = 0; i < m; i++)
    if (drop[i]) labels[i] = -1;
  free(drop);
  return 0;
}

static int neighbour_groups(const sd_config *cfg, const drift_work *w,
                            sd_drift_report *r, size_t *largest, size_t *marked) {
  size_t m = w->recent.n, K = (size_t)cfg->emerging_neighbours;
  knn kn = {malloc(sizeof(int) * m * K), malloc(sizeof(float) * m * K), (int)K,
            w->ref.n};
  char *is_new = malloc(m);
  int32_t *labels = malloc(sizeof(int32_t) * m);
  int rc = kn.nb && kn.sim && is_new && labels ? mark_new(cfg, w, &kn, is_new)
                                                : SD_ENOMEM;
  int k = rc == 0 ? components(kn.nb, (int)K, is_new, w->ref.n, m, labels) : rc;
  if (k > 0 && (rc = prune_known(&kn, m, labels)) < 0) k = rc;
  for (size_t i = 0; k >= 0 && i < m; i++) *marked += (size_t)is_new[i];
  for (int j = 0; j < k && rc == 0; j++) {
    group g = {&w->recent, labels, j, 0, "neighbourhood", 0,
               cfg->emerging_nb_min_size};
    for (size_t i = 0; i < m; i++) g.size += labels[i] == j;
    if (g.size > *largest) *largest = g.size;
    if (g.size >= (size_t)g.min) rc = add_candidate(w, &g, r);
  }
  free(kn.nb);
  free(kn.sim);
  free(is_new);
  free(labels);
  return k < 0 ? k : rc;
}

static int check_neighbourhood(const sd_config *cfg, const drift_work *w,
                               sd_drift_report *r) {
  size_t before = r->n, largest = 0, marked = 0;
  int ready = w->ref.n >= MIN_BASELINE &&
              (int64_t)w->recent.n >= cfg->drift_min_points &&
              w->recent.n >= (size_t)cfg->emerging_nb_min_size;
  int rc = ready ? neighbour_groups(cfg, w, r, &largest, &marked) : 0;
  if (rc < 0 || r->n > before) return rc;
  char what[96];
  snprintf(what, sizeof(what), "%zu of %zu recent points in new neighbourhoods",
           marked, w->recent.n);
  return add_quiet(r, "neighbourhood", ready, largest, cfg->emerging_nb_min_size,
                   what);
}

int drift_check_emerging(const sd_drift *dr, const drift_work *w,
                         sd_drift_report *r) {
  int rc = check_neighbourhood(dr->cfg, w, r);
  return rc < 0 ? rc : check_density(dr, w, r);
}
