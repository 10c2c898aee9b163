/*
 * space.c -- a space's live model, online updates and member bookkeeping
 * (see space.h).
 */
#include "segmentd/space.h"
#include "segmentd/cluster_kmeans.h"
#include "segmentd/err.h"

#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TERMS_EVERY_MS 1000
#define CONF_TEMPERATURE 0.05f

int sd_space_init(sd_space *sp, int index, int dim, double half_life_ms) {
  memset(sp, 0, sizeof(*sp));
  sp->index = index;
  sp->name = index == SD_SPACE_INTENTS ? "intents" : "segments";
  sp->entity = index == SD_SPACE_INTENTS ? "texts" : "users";
  sp->dim = dim;
  sp->half_life_ms = half_life_ms;
  snprintf(sp->algorithm, sizeof(sp->algorithm), "kmeans");
  if (index == SD_SPACE_INTENTS && !(sp->terms = sd_terms_new()))
    return SD_ENOMEM;
  return 0;
}

static void rep_free(sd_space_rep *r) {
  free(r->id);
  free(r->text);
  free(r->vec);
  *r = (sd_space_rep){0, NULL, NULL, NULL};
}

static void space_free_model(sd_space *sp) {
  for (int i = 0; i < sp->k; i++) { /* any array may be missing (ENOMEM) */
    for (int r = 0; r < SD_REP_POOL && sp->reps; r++) rep_free(&sp->reps[i][r]);
    if (sp->label) free(sp->label[i]);
    if (sp->description) free(sp->description[i]);
  }
  free(sp->ids);
  free(sp->centroids);
  free(sp->weights);
  free(sp->weight_t);
  free(sp->sizes);
  free(sp->sim_sum);
  free(sp->created_at);
  free(sp->label);
  free(sp->description);
  free(sp->reps);
  free(sp->top_cache);
  free(sp->stability);
  free(sp->quality);
  sp->stability = NULL;
  sp->quality = NULL;
  sp->ids = NULL;
  sp->centroids = sp->weights = NULL;
  sp->weight_t = sp->sizes = sp->created_at = NULL;
  sp->sim_sum = NULL;
  sp->label = sp->description = NULL;
  sp->reps = NULL;
  sp->top_cache = NULL;
  sp->has_model = sp->k = 0;
}

void sd_space_free(sd_space *sp) {
  space_free_model(sp);
  sd_terms_free(sp->terms);
  sp->terms = NULL;
}

static void normalise(float *v, int n) {
  float len = cblas_snrm2(n, v, 1);
  if (len > 0) cblas_sscal(n, 1.0f / len, v, 1);
}

int sd_space_set_model(sd_space *sp, int k, const int32_t *ids,
                       const float *centroids, const float *weights,
                       int64_t version, int64_t trained_at, double inertia,
                       const char *algorithm) {
  space_free_model(sp);
  size_t kd = (size_t)k * sp->dim;
  sp->ids = malloc(sizeof(int32_t) * k);
  sp->centroids = malloc(sizeof(float) * kd);
  sp->weights = malloc(sizeof(float) * k);
  sp->weight_t = calloc(k, sizeof(int64_t));
  sp->sizes = calloc(k, sizeof(int64_t));
  sp->sim_sum = calloc(k, sizeof(double));
  sp->created_at = calloc(k, sizeof(int64_t));
  sp->label = calloc(k, sizeof(char *));
  sp->description = calloc(k, sizeof(char *));
  sp->reps = calloc(k, sizeof(*sp->reps));
  sp->top_cache = calloc((size_t)k * SD_TOP_TERMS, sizeof(char *));
  sp->stability = malloc(sizeof(double) * (size_t)k);
  if (!sp->stability || !sp->ids || !sp->centroids || !sp->weights || !sp->weight_t ||
      !sp->sizes || !sp->sim_sum || !sp->created_at || !sp->label ||
      !sp->description || !sp->reps || !sp->top_cache) {
    sp->k = k; /* so the loops in space_free_model see the arrays */
    space_free_model(sp);
    return SD_ENOMEM;
  }
  sp->k = k;
  memcpy(sp->ids, ids, sizeof(int32_t) * k);
  memcpy(sp->centroids, centroids, sizeof(float) * kd);
  memcpy(sp->weights, weights, sizeof(float) * k);
  for (int i = 0; i < k; i++) {
    normalise(sp->centroids + (size_t)i * sp->dim, sp->dim);
    sp->weight_t[i] = trained_at;
    sp->created_at[i] = trained_at;
    sp->stability[i] = NAN;
    if (ids[i] >= sp->next_id) sp->next_id = ids[i] + 1;
  }
  sp->has_model = 1;
  sp->version = version;
  sp->trained_at = trained_at;
  sp->inertia = inertia;
  snprintf(sp->algorithm, sizeof(sp->algorithm), "%s", algorithm);
  if (sp->terms) sd_terms_reset(sp->terms);
  sp->terms_at = 0;
  return 0;
}

int sd_space_set_quality(sd_space *sp, const char *quality_json) {
  free(sp->quality);
  sp->quality = quality_json ? strdup(quality_json) : NULL;
  if (quality_json && !sp->quality) return SD_ENOMEM;
  json_t *q = quality_json ? json_loads(quality_json, 0, NULL) : NULL;
  json_t *per = json_object_get(json_object_get(q, "stability"), "per_cluster");
  for (int i = 0; i < sp->k; i++) {
    char key[24];
    snprintf(key, sizeof(key), "%d", sp->ids[i]);
    json_t *v = json_object_get(per, key);
    sp->stability[i] = json_is_number(v) ? json_number_value(v) : NAN;
  }
  json_decref(q);
  return 0;
}

int sd_space_index_of(const sd_space *sp, int64_t id) {
  for (int i = 0; i < sp->k; i++)
    if (sp->ids[i] == id) return i;
  return -1;
}

float sd_confidence(float best, float second) {
  if (!isfinite(second)) return 1.0f;
  return 1.0f / (1.0f + expf(-(best - second) / CONF_TEMPERATURE));
}

int sd_space_assign(const sd_space *sp, const float *x, int *idx, float *sim,
                    float *conf) {
  if (!sp->has_model) return SD_ENOTREADY;
  int32_t b, s;
  float bs, ss;
  int rc = sd_kmeans_assign(x, 1, sp->centroids, sp->k, sp->dim, 1, &b, &bs,
                            &s, &ss);
  if (rc < 0) return rc;
  *idx = b;
  *sim = bs;
  *conf = sd_confidence(bs, ss);
  return 0;
}

void sd_space_update(sd_space *sp, int idx, const float *x, int64_t now) {
  float *c = sp->centroids + (size_t)idx * sp->dim;
  double dt = (double)(now - sp->weight_t[idx]);
  float w = sp->weights[idx];
  if (dt > 0) w *= (float)exp2(-dt / sp->half_life_ms);
  w += 1.0f;
  sp->weights[idx] = w;
  sp->weight_t[idx] = now > sp->weight_t[idx] ? now : sp->weight_t[idx];
  float eta = 1.0f / w;
  cblas_sscal(sp->dim, 1.0f - eta, c, 1);
  cblas_saxpy(sp->dim, eta, x, 1, c, 1);
  normalise(c, sp->dim);
}

/*
 * The inverse of sd_space_update's step c' = m / |m|, m = (1 - e) c + e x,
 * e = 1 / w: m = s c' with the scale s for which the old c is a unit
 * vector, |s c' - e x| = 1 - e, i.e. s = e (c'.x) + sqrt(e^2 (c'.x)^2 -
 * e^2 |x|^2 + (1 - e)^2); then c = (s c' - e x) / (1 - e). Exact when no
 * decay happened in between, close otherwise.
 */
void sd_space_unlearn(sd_space *sp, int idx, const float *x) {
  float w = sp->weights[idx];
  if (!(w > 1.0f)) return;
  float *c = sp->centroids + (size_t)idx * sp->dim;
  double e = 1.0 / w, cx = cblas_sdot(sp->dim, c, 1, x, 1);
  double xx = cblas_sdot(sp->dim, x, 1, x, 1);
  double disc = e * e * cx * cx - e * e * xx + (1 - e) * (1 - e);
  double sc = e * cx + sqrt(disc > 0 ? disc : 0);
  cblas_sscal(sp->dim, (float)sc, c, 1);
  cblas_saxpy(sp->dim, (float)-e, x, 1, c, 1);
  cblas_sscal(sp->dim, (float)(1.0 / (1 - e)), c, 1);
  normalise(c, sp->dim);
  sp->weights[idx] = w - 1.0f;
}

static char *dup_n(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = 0;
  }
  return p;
}

/* Keeps the SD_REP_POOL most similar members, most similar first. */
static void reps_offer(sd_space_rep *r, int dim, float sim, const char *id,
                       const char *text, size_t text_len, const float *vec) {
  if (r[SD_REP_POOL - 1].id && sim <= r[SD_REP_POOL - 1].sim) return;
  sd_space_rep n = {sim, dup_n(id, strlen(id)),
                    text ? dup_n(text, text_len > 240 ? 240 : text_len) : NULL,
                    vec ? malloc(sizeof(float) * (size_t)dim) : NULL};
  if (!n.id || (text && !n.text) || (vec && !n.vec)) {
    rep_free(&n); /* representatives are best effort under memory pressure */
    return;
  }
  if (vec) memcpy(n.vec, vec, sizeof(float) * (size_t)dim);
  rep_free(&r[SD_REP_POOL - 1]);
  int j = SD_REP_POOL - 1;
  while (j > 0 && (!r[j - 1].id || sim > r[j - 1].sim)) {
    r[j] = r[j - 1];
    j--;
  }
  r[j] = n;
}

int sd_space_rep_wants(const sd_space *sp, int idx, float sim) {
  const sd_space_rep *last = &sp->reps[idx][SD_REP_POOL - 1];
  return !last->id || sim > last->sim;
}

void sd_space_member_add(sd_space *sp, int idx, float sim, const char *id,
                         const char *text, size_t text_len, const float *vec) {
  sp->sizes[idx]++;
  sp->sim_sum[idx] += sim;
  reps_offer(sp->reps[idx], sp->dim, sim, id, text, text_len, vec);
  if (sp->terms && text) sd_terms_add(sp->terms, idx, text, text_len, 1);
}

void sd_space_members_clear(sd_space *sp) {
  for (int i = 0; i < sp->k; i++) {
    sp->sizes[i] = 0;
    sp->sim_sum[i] = 0;
    for (int r = 0; r < SD_REP_POOL; r++) rep_free(&sp->reps[i][r]);
  }
  if (sp->terms) sd_terms_reset(sp->terms);
  sp->terms_at = 0; /* rank top terms again at the next snapshot */
}

void sd_space_member_remove(sd_space *sp, int idx, float sim, const char *id,
                            const char *text, size_t text_len) {
  sd_space_rep *r = sp->reps[idx];
  sp->sizes[idx]--;
  sp->sim_sum[idx] -= sim;
  if (sp->terms && text) sd_terms_add(sp->terms, idx, text, text_len, -1);
  for (int j = 0; j < SD_REP_POOL; j++) {
    if (!r[j].id || strcmp(r[j].id, id)) continue;
    rep_free(&r[j]);
    memmove(&r[j], &r[j + 1], sizeof(*r) * (size_t)(SD_REP_POOL - 1 - j));
    r[SD_REP_POOL - 1] = (sd_space_rep){0, NULL, NULL, NULL};
    break;
  }
}

/* A ranked list of the n best (score, name) features. */
typedef struct {
  double sc[SD_TOP_TERMS];
  const char **out;
  int n, got;
} feat_top;

static void feat_offer(feat_top *t, double s, const char *name) {
  if (!name || s <= 1e-3 || (t->got == t->n && s <= t->sc[t->n - 1])) return;
  int j = t->got < t->n ? t->got++ : t->n - 1;
  while (j > 0 && s > t->sc[j - 1]) {
    t->sc[j] = t->sc[j - 1];
    t->out[j] = t->out[j - 1];
    j--;
  }
  t->sc[j] = s;
  t->out[j] = name;
}

/* A signed-hashed view: each named bucket scores (c - mean) * sign. */
static void feat_hashed(feat_top *t, const float *c, const float *mean, int n,
                        const char *const *names,
                        int (*bucket)(const char *, size_t, float *)) {
  for (int b = 0; b < n; b++) {
    if (!names[b]) continue;
    float sign;
    bucket(names[b], strlen(names[b]), &sign);
    feat_offer(t, (c[b] - mean[b]) * sign, names[b]);
  }
}

/*
 * A segment's distinguishing features: event types, "key=value" context
 * and hours/weekdays whose weight in the centroid exceeds the population's
 * (the size-weighted mean of all centroids) the most -- a lift over the
 * population, read off the views of the centroid.
 */
static int seg_features(const sd_space *sp, const float *c, const float *mean,
                        const sd_snapshot *snap, const char **out, int n) {
  feat_top t = {{0}, out, n, 0};
  int text = sp->dim - SD_BEH_DIM - SD_TIME_DIM - SD_CTX_DIM;
  int beh = text, tim = beh + SD_BEH_DIM, ctx = tim + SD_TIME_DIM;
  if (text < 0) return 0;
  feat_hashed(&t, c + beh, mean + beh, SD_BEH_DIM, snap->beh_names,
              sd_views_beh_bucket);
  feat_hashed(&t, c + ctx, mean + ctx, SD_CTX_DIM, snap->ctx_names,
              sd_views_ctx_bucket);
  for (int i = 0; i < SD_TIME_DIM - 1; i++) /* hours and weekdays */
    feat_offer(&t, c[tim + i] - mean[tim + i], sd_views_time_name(i));
  return t.got;
}

static const char *auto_label(sd_snapshot *snap, const char *const *terms,
                              int n) {
  char buf[256] = "";
  size_t len = 0;
  for (int i = 0; i < n && i < 3 && terms[i]; i++) {
    int w = snprintf(buf + len, sizeof(buf) - len, "%s%s", i ? ", " : "",
                     terms[i]);
    if (w < 0 || (size_t)w >= sizeof(buf) - len) break;
    len += (size_t)w;
  }
  return sd_snapshot_strdup(snap, len ? buf : "unlabelled");
}

/* Up to SD_REPS candidates by maximal marginal relevance: each pick
 * maximises lambda * similarity to the centroid - (1 - lambda) * its
 * highest cosine to those already picked, so near-duplicates give way.
 * Candidates without vectors are taken in similarity order. */
static int reps_mmr(const sd_space_rep *pool, int dim, int *pick) {
  int n = 0, m = 0, used[SD_REP_POOL] = {0};
  while (m < SD_REP_POOL && pool[m].id) m++;
  while (n < SD_REPS && n < m) {
    int best = -1;
    float bs = -INFINITY;
    for (int j = 0; j < m; j++) {
      if (used[j]) continue;
      float red = 0;
      for (int q = 0; q < n && pool[j].vec; q++)
        if (pool[pick[q]].vec) {
          float d = cblas_sdot(dim, pool[j].vec, 1, pool[pick[q]].vec, 1);
          if (d > red) red = d;
        }
      float sc = SD_REP_LAMBDA * pool[j].sim - (1 - SD_REP_LAMBDA) * red;
      if (sc > bs) bs = sc, best = j;
    }
    used[best] = 1;
    pick[n++] = best;
  }
  return n;
}

static void snap_cluster(sd_space *sp, int i, sd_snapshot *snap,
                         sd_snap_space *out, const float *mean) {
  sd_snap_cluster *c = &out->clusters[i];
  c->id = sp->ids[i];
  c->size = sp->sizes[i];
  c->share = out->assigned ? (double)sp->sizes[i] / out->assigned : 0;
  c->cohesion = sp->sizes[i] ? sp->sim_sum[i] / sp->sizes[i] : 0;
  c->created_at = sp->created_at[i];
  c->stability = sp->stability[i];
  const char *terms[SD_TOP_TERMS] = {0};
  if (sp->terms) {
    memcpy(terms, sp->top_cache + (size_t)i * SD_TOP_TERMS, sizeof(terms));
  } else {
    seg_features(sp, sp->centroids + (size_t)i * sp->dim, mean, snap, terms,
                 SD_TOP_TERMS);
  }
  for (int j = 0; j < SD_TOP_TERMS && terms[j]; j++)
    c->terms[c->n_terms++] = sd_snapshot_strdup(snap, terms[j]);
  int pick[SD_REPS];
  int n = reps_mmr(sp->reps[i], sp->dim, pick);
  for (int r = 0; r < n; r++) {
    const sd_space_rep *rep = &sp->reps[i][pick[r]];
    c->reps[r].id = sd_snapshot_strdup(snap, rep->id);
    c->reps[r].text = sd_snapshot_strdup(snap, rep->text);
    c->reps[r].similarity = rep->sim;
    c->n_reps++;
  }
  c->label_manual = sp->label[i] != NULL;
  c->label = c->label_manual ? sd_snapshot_strdup(snap, sp->label[i])
                             : auto_label(snap, c->terms, c->n_terms);
  c->description = sd_snapshot_strdup(snap, sp->description[i]);
}

/* The population's mean vector: centroids weighted by their sizes. */
static float *population_mean(const sd_space *sp, sd_snapshot *snap) {
  float *m = sd_snapshot_alloc(snap, sizeof(float) * (size_t)sp->dim);
  int64_t total = 0;
  for (int i = 0; i < sp->k && m; i++) total += sp->sizes[i];
  for (int i = 0; i < sp->k && m && total > 0; i++)
    cblas_saxpy(sp->dim, (float)sp->sizes[i] / (float)total,
                sp->centroids + (size_t)i * sp->dim, 1, m, 1);
  return m;
}

/* Whether a ranking is kept for TERMS_EVERY_MS: one taken while members
 * were still arriving (after a model install, during re-assignment) left a
 * cluster with members but no terms, and the next snapshot ranks again, up
 * to TERMS_RETRIES times in a row (a cluster may have no words at all). */
#define TERMS_RETRIES 8
static int terms_settled(sd_space *sp) {
  for (int i = 0; i < sp->k; i++)
    if (sp->sizes[i] > 0 && !sp->top_cache[(size_t)i * SD_TOP_TERMS] &&
        sp->terms_retries < TERMS_RETRIES) {
      sp->terms_retries++;
      return 0;
    }
  sp->terms_retries = 0;
  return 1;
}

int sd_space_snapshot(sd_space *sp, sd_snapshot *snap, sd_snap_space *out,
                      int64_t now) {
  memset(out, 0, sizeof(*out));
  out->name = sp->name;
  out->entity = sp->entity;
  out->dim = sp->dim;
  out->points = sp->points;
  out->points_at_train = sp->points_at_train;
  out->next_id = sp->next_id;
  out->algorithm = sp->algorithm;
  out->updated_at = now;
  if (!sp->has_model) return 0;
  out->has_model = 1;
  out->k = sp->k;
  out->version = sp->version;
  out->trained_at = sp->trained_at;
  out->inertia = sp->inertia;
  out->quality = sd_snapshot_strdup(snap, sp->quality);
  for (int i = 0; i < sp->k; i++) out->assigned += sp->sizes[i];
  size_t kd = (size_t)sp->k * sp->dim;
  out->centroids = sd_snapshot_alloc(snap, sizeof(float) * kd);
  out->clusters = sd_snapshot_alloc(snap, sizeof(sd_snap_cluster) * sp->k);
  if (!out->centroids || !out->clusters) return SD_ENOMEM;
  memcpy(out->centroids, sp->centroids, sizeof(float) * kd);
  if (sp->terms && (sp->terms_at == 0 || now - sp->terms_at >= TERMS_EVERY_MS)) {
    if (sd_terms_top(sp->terms, sp->k, SD_TOP_TERMS, sp->top_cache) == 0)
      sp->terms_at = terms_settled(sp) ? now : 0;
  }
  float *mean = sp->terms ? NULL : population_mean(sp, snap);
  if (!sp->terms && !mean) return SD_ENOMEM;
  for (int i = 0; i < sp->k; i++) snap_cluster(sp, i, snap, out, mean);
  return 0;
}
