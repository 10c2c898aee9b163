/*
 * drift.c -- the reference, the current window and the outlier buffer of
 * each space (drift.h); the detectors are in drift_detect.c.
 *
 * After a new model's reference arrives, the first sd_drift_baseline_size
 * (--drift-baseline) assignments form its baseline (drift.h says why);
 * then the window, a ring of the latest --drift-window assignments
 * (vector, cluster index, similarity), fills. The latest --drift-sample
 * window points also enter the recent ring, with the entity's id and
 * text, and an assignment whose similarity is below its cluster's radius
 * (the --outlier-quantile of the baseline members' similarities) the
 * outlier ring. Both rings keep one slot per entity (a user updated again
 * replaces its slot). Everything is reset when a new model's reference
 * arrives, since cluster indexes and the vector space may have changed,
 * and when a baseline is pinned by hand (drift_baseline.c builds it, and
 * it arrives as a reference of the same model), so that checks compare it
 * only with points assigned after it.
 */
#include "drift_int.h"

#include "segmentd/drift_stats.h"
#include "segmentd/err.h"
#include "segmentd/snapshot.h"
#include "segmentd/tokenize.h"

#include <stdlib.h>
#include <string.h>

#define OUTLIER_CAP 2000

const char *const sd_drift_kinds[SD_DRIFT_KINDS] = {
    "distribution_drift", "centroid_shift",    "share_shift",
    "cohesion_drop",      "vanishing_cluster", "emerging_cluster"};

static void ref_free(drift_ref *r) {
  free(r->ids);
  free(r->centroids);
  free(r->counts);
  free(r->base);
  free(r->base_sum);
  free(r->base_sim);
  free(r->x);
  free(r->label);
  free(r->sim);
  free(r->radius);
  free(r->cohesion);
  memset(r, 0, sizeof(*r));
}

static void ring_clear(drift_ring *g) {
  for (size_t i = 0; i < g->n; i++) {
    free(g->id[i]);
    free(g->text[i]);
    g->id[i] = g->text[i] = NULL;
  }
  g->n = g->pos = 0;
}

static void ring_free(drift_ring *g) {
  if (g->id) ring_clear(g);
  free(g->x);
  free(g->id);
  free(g->text);
  free(g->hash);
}

static int ring_init(drift_ring *g, size_t cap, int dim) {
  g->cap = cap;
  g->x = malloc(sizeof(float) * cap * (size_t)dim);
  g->id = calloc(cap, sizeof(char *));
  g->text = calloc(cap, sizeof(char *));
  g->hash = calloc(cap, sizeof(uint64_t));
  return g->x && g->id && g->text && g->hash ? 0 : SD_ENOMEM;
}

static void space_free(drift_space *s) {
  ref_free(&s->ref);
  ring_free(&s->out);
  ring_free(&s->recent);
  free(s->win_x);
  free(s->win_label);
  free(s->win_sim);
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->check_mu);
}

static int space_init(drift_space *s, const sd_config *cfg, int dim) {
  size_t w = (size_t)cfg->drift_window;
  pthread_mutex_init(&s->mu, NULL);
  pthread_mutex_init(&s->check_mu, NULL);
  s->dim = dim;
  s->win_cap = w;
  s->win_x = malloc(sizeof(float) * w * (size_t)dim);
  s->win_label = malloc(sizeof(int32_t) * w);
  s->win_sim = malloc(sizeof(float) * w);
  int rc = ring_init(&s->out, OUTLIER_CAP, dim);
  if (rc == 0) rc = ring_init(&s->recent, (size_t)cfg->drift_sample, dim);
  return rc == 0 && s->win_x && s->win_label && s->win_sim ? 0 : SD_ENOMEM;
}

sd_drift *sd_drift_new(const sd_config *cfg, const int dims[2]) {
  sd_drift *d = calloc(1, sizeof(*d));
  if (!d) return NULL;
  d->cfg = cfg;
  for (int s = 0; s < DRIFT_SPACES; s++) {
    d->spaces[s].index = s;
    if (space_init(&d->spaces[s], cfg, dims[s]) < 0) {
      sd_drift_free(d);
      return NULL;
    }
  }
  return d;
}

void sd_drift_free(sd_drift *d) {
  if (!d) return;
  for (int s = 0; s < DRIFT_SPACES; s++) space_free(&d->spaces[s]);
  free(d);
}

/* ---- the reference ---- */

size_t sd_drift_baseline_size(const sd_config *cfg) {
  long b = cfg->drift_baseline ? cfg->drift_baseline : 4 * cfg->drift_sample;
  return (size_t)(b > cfg->drift_sample ? b : cfg->drift_sample);
}

/* Assignments whose clusters form the baseline shares: half the window,
 * at least the vector baseline (drift.h). */
static size_t base_cap(const sd_config *cfg) {
  size_t h = (size_t)cfg->drift_window / 2, b = sd_drift_baseline_size(cfg);
  return h > b ? h : b;
}

/* Per cluster: the radius (outlier quantile of its members' similarities;
 * the pooled quantile for clusters with few sampled members) and the mean
 * similarity. */
static int ref_radii(drift_ref *r, double q) {
  float *buf = malloc(sizeof(float) * (r->n ? r->n : 1));
  if (!buf) return SD_ENOMEM;
  memcpy(buf, r->sim, sizeof(float) * r->n);
  float pooled = r->n ? sd_quantile(buf, r->n, q) : -1.0f;
  for (int c = 0; c < r->k; c++) {
    size_t m = 0;
    double sum = 0;
    for (size_t i = 0; i < r->n; i++)
      if (r->label[i] == c) buf[m++] = r->sim[i], sum += r->sim[i];
    r->cohesion[c] = m ? (float)(sum / (double)m) : 0;
    r->radius[c] = m >= DRIFT_MIN_RADIUS_MEMBERS ? sd_quantile(buf, m, q) : pooled;
  }
  free(buf);
  return 0;
}

static int ref_copy(drift_ref *r, const sd_drift_ref *in, size_t cap,
                    double q) {
  size_t k = (size_t)in->k, n = in->baseline ? in->n : 0, dim = (size_t)in->dim;
  r->version = in->version;
  r->k = in->k;
  r->n = n;
  r->cap = in->baseline ? n : cap;
  r->baseline = in->baseline && n > 0;
  r->ids = malloc(sizeof(int32_t) * k);
  r->centroids = malloc(sizeof(float) * k * dim);
  r->counts = malloc(sizeof(double) * k);
  r->x = malloc(sizeof(float) * (r->cap ? r->cap : 1) * dim);
  r->label = malloc(sizeof(int32_t) * (r->cap ? r->cap : 1));
  r->sim = malloc(sizeof(float) * (r->cap ? r->cap : 1));
  r->radius = malloc(sizeof(float) * k);
  r->cohesion = calloc(k, sizeof(float));
  r->base = calloc(k, sizeof(double));
  r->base_sum = calloc(k * dim, sizeof(float));
  r->base_sim = calloc(k, sizeof(double));
  if (!r->ids || !r->centroids || !r->counts || !r->x || !r->label ||
      !r->sim || !r->radius || !r->cohesion || !r->base || !r->base_sum ||
      !r->base_sim)
    return SD_ENOMEM;
  memcpy(r->ids, in->ids, sizeof(int32_t) * k);
  memcpy(r->centroids, in->centroids, sizeof(float) * k * dim);
  for (size_t c = 0; c < k; c++) r->counts[c] = in->counts[c], r->radius[c] = -2;
  r->pin = in->pin ? *in->pin : (sd_drift_pin){SD_DRIFT_BASE_MODEL, 0, ""};
  r->base_done = in->baseline >= 2 && in->base_sum && in->base_sim;
  for (size_t c = 0; c < k && r->base_done; c++) {
    r->base[c] = in->counts[c], r->base_n += (size_t)in->counts[c];
    r->base_sim[c] = in->base_sim[c];
  }
  if (r->base_done) memcpy(r->base_sum, in->base_sum, sizeof(float) * k * dim);
  if (n) { /* an empty stored baseline's blobs read as NULL */
    memcpy(r->x, in->x, sizeof(float) * n * dim);
    memcpy(r->label, in->label, sizeof(int32_t) * n);
    memcpy(r->sim, in->sim, sizeof(float) * n);
  }
  return r->baseline ? ref_radii(r, q) : 0;
}

int sd_drift_set_reference(sd_drift *d, int space, const sd_drift_ref *in) {
  drift_space *s = &d->spaces[space];
  if (in->dim != s->dim || in->k < 1) return SD_EINVAL;
  drift_ref r = {0};
  int rc = ref_copy(&r, in, sd_drift_baseline_size(d->cfg),
                    d->cfg->outlier_quantile);
  r.base_cap = base_cap(d->cfg);
  if (rc < 0) {
    ref_free(&r);
    return rc;
  }
  pthread_mutex_lock(&s->mu);
  ref_free(&s->ref);
  s->ref = r;
  s->win_n = s->win_pos = 0;
  s->new_points = 0;
  ring_clear(&s->out);
  ring_clear(&s->recent);
  s->mmd_streak = 0;
  s->epoch++;
  pthread_mutex_unlock(&s->mu);
  return 0;
}

/* ---- observations ---- */

static char *dup_n(const char *s, size_t len) {
  char *p = s ? malloc(len + 1) : NULL;
  if (p) {
    memcpy(p, s, len);
    p[len] = 0;
  }
  return p;
}

/* The slot of an entity already in the ring (observed again), or the next
 * slot. */
static size_t ring_slot(const drift_ring *g, const char *id, uint64_t h,
                        int *reuse) {
  *reuse = 0;
  for (size_t i = 0; id && i < g->n; i++)
    if (g->hash[i] == h && g->id[i] && !strcmp(g->id[i], id)) {
      *reuse = 1;
      return i;
    }
  return g->pos;
}

static void ring_add(drift_ring *g, int dim, const float *x, const char *id,
                     const char *text, size_t len) {
  uint64_t h = id ? sd_hash64(id, strlen(id), 0x0d71) : 0;
  int reuse;
  size_t i = ring_slot(g, id, h, &reuse);
  g->hash[i] = h;
  free(g->id[i]);
  free(g->text[i]);
  memcpy(g->x + i * (size_t)dim, x, sizeof(float) * (size_t)dim);
  g->id[i] = id ? dup_n(id, strlen(id)) : NULL;
  g->text[i] = dup_n(text, len);
  if (reuse) return;
  g->pos = (g->pos + 1) % g->cap;
  if (g->n < g->cap) g->n++;
}

/* One more baseline point; 1 when that completed the baseline. */
static int baseline_add(drift_space *s, int idx, float sim, const float *x,
                        double q) {
  drift_ref *r = &s->ref;
  memcpy(r->x + r->n * (size_t)s->dim, x, sizeof(float) * (size_t)s->dim);
  r->label[r->n] = idx;
  r->sim[r->n++] = sim;
  if (r->n < r->cap) return 0;
  r->baseline = ref_radii(r, q) == 0;
  return r->baseline;
}

int sd_drift_observe(sd_drift *d, int space, int64_t version, int idx,
                     float sim, const float *x, const char *id,
                     const char *text, size_t len) {
  if (!d) return 0;
  drift_space *s = &d->spaces[space];
  int done = 0;
  pthread_mutex_lock(&s->mu);
  if (s->ref.version == version && idx >= 0 && idx < s->ref.k) {
    if (!s->ref.base_done) {
      s->ref.base[idx] += 1;
      s->ref.base_sim[idx] += sim;
      for (int j = 0; j < s->dim; j++)
        s->ref.base_sum[(size_t)idx * (size_t)s->dim + (size_t)j] += x[j];
      s->ref.base_done = ++s->ref.base_n >= s->ref.base_cap;
      if (s->ref.base_done) done = 2;
    }
    if (!s->ref.baseline) {
      done |= baseline_add(s, idx, sim, x, d->cfg->outlier_quantile);
    } else {
      size_t i = s->win_pos;
      memcpy(s->win_x + i * (size_t)s->dim, x, sizeof(float) * (size_t)s->dim);
      s->win_label[i] = idx;
      s->win_sim[i] = sim;
      s->win_pos = (s->win_pos + 1) % s->win_cap;
      if (s->win_n < s->win_cap) s->win_n++;
      s->new_points++;
      ring_add(&s->recent, s->dim, x, id, text, len);
      if (sim < s->ref.radius[idx]) ring_add(&s->out, s->dim, x, id, text, len);
    }
  }
  pthread_mutex_unlock(&s->mu);
  return done;
}

int sd_drift_baseline(sd_drift *d, int space, sd_drift_base *out) {
  drift_space *s = &d->spaces[space];
  pthread_mutex_lock(&s->mu);
  const drift_ref *r = &s->ref;
  size_t rows = r->baseline ? r->n : 0, dim = (size_t)s->dim;
  int rc = drift_base_alloc(out, rows, r->k, s->dim);
  if (rc == 0) {
    out->version = r->version;
    out->level = r->baseline ? (r->base_done ? 2 : 1) : 0;
    out->pin = r->pin;
    for (int c = 0; c < r->k; c++) {
      out->counts[c] = (float)(r->base_done ? r->base[c] : r->counts[c]);
      out->base_sim[c] = (float)r->base_sim[c];
    }
    memcpy(out->base_sum, r->base_sum, sizeof(float) * (size_t)r->k * dim);
    memcpy(out->x, r->x, sizeof(float) * rows * dim);
    memcpy(out->label, r->label, sizeof(int32_t) * rows);
    memcpy(out->sim, r->sim, sizeof(float) * rows);
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

void sd_drift_set_encoder(sd_drift *d, int space, sd_drift_encode_fn fn,
                          void *ud, int dim) {
  d->encode[space] = fn;
  d->encode_ud[space] = ud;
  d->encode_dim[space] = dim;
}
