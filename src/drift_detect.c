/*
 * drift_detect.c -- the detectors of drift.h, run on a copy of a space's
 * reference, window and outliers taken under its mutex.
 *
 * Noise guards (so a stationary stream stays quiet):
 *   mmd    needs --drift-min-points new points; warning at p below
 *          --drift-p-value, critical after --drift-persist drifted checks
 *          in a row (independent samples: the new points of each check);
 *   psi    evaluated once its expected value under no change,
 *          (k - 1)(1/window + 1/reference), is at most half the warning
 *          threshold;
 *   per cluster: at least MIN_CLUSTER_POINTS window members; the centroid
 *          shift must also exceed 4x its sampling noise
 *          (1 - c^2) / (2 n c^2), c the cluster's reference cohesion; a
 *          share shift also needs |z| >= SHARE_Z of a two-proportion test.
 */
#include "drift_int.h"

#include "segmentd/cluster_algos.h"
#include "segmentd/drift_stats.h"
#include "segmentd/err.h"
#include "segmentd/label_terms.h"
#include "segmentd/rng.h"
#include "segmentd/timeutil.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_CLUSTER_POINTS 30
#define SHARE_Z 4.0
#define VANISH_EXPECTED 20.0 /* expected window members to call it vanishing */

static void pool_free(drift_pool *p) {
  for (size_t i = 0; p->text && i < p->n; i++) free(p->text[i]);
  for (size_t i = 0; p->id && i < p->n; i++) free(p->id[i]);
  free(p->x);
  free(p->text);
  free(p->id);
}

static void work_free(drift_work *w) {
  free(w->ref.ids);
  free(w->ref.centroids);
  free(w->ref.counts);
  free(w->ref.base);
  free(w->ref.base_sum);
  free(w->ref.base_sim);
  free(w->ref.x);
  free(w->ref.label);
  free(w->ref.sim);
  free(w->ref.radius);
  free(w->ref.cohesion);
  free(w->win_x);
  free(w->win_label);
  free(w->win_sim);
  pool_free(&w->out);
  pool_free(&w->recent);
}

void *drift_dup(const void *p, size_t len) {
  void *q = malloc(len ? len : 1);
  if (q && len) memcpy(q, p, len);
  return q;
}

static char *dup_str(const char *s) { return s ? drift_dup(s, strlen(s) + 1) : NULL; }

static int copy_ref(drift_work *w, const drift_ref *r) {
  size_t k = (size_t)r->k, n = r->n, dim = (size_t)w->dim;
  w->ref = *r;
  w->ref.ids = drift_dup(r->ids, sizeof(int32_t) * k);
  w->ref.centroids = drift_dup(r->centroids, sizeof(float) * k * dim);
  /* shares compare with the baseline's, never the training sample's */
  w->ref.counts = drift_dup(r->base_done ? r->base : r->counts, sizeof(double) * k);
  w->ref.base = drift_dup(r->base, sizeof(double) * k);
  w->ref.base_sum = drift_dup(r->base_sum, sizeof(float) * k * dim);
  w->ref.base_sim = drift_dup(r->base_sim, sizeof(double) * k);
  w->ref.x = drift_dup(r->x, sizeof(float) * n * dim);
  w->ref.label = drift_dup(r->label, sizeof(int32_t) * n);
  w->ref.sim = drift_dup(r->sim, sizeof(float) * n);
  w->ref.radius = drift_dup(r->radius, sizeof(float) * k);
  w->ref.cohesion = drift_dup(r->cohesion, sizeof(float) * k);
  return w->ref.ids && w->ref.centroids && w->ref.counts && w->ref.x &&
                 w->ref.label && w->ref.sim && w->ref.radius &&
                 w->ref.cohesion && w->ref.base && w->ref.base_sum &&
                 w->ref.base_sim
             ? 0
             : SD_ENOMEM;
}

/* Ring rows in time order: the oldest first. */
static void unring(void *dst, const void *src, size_t n, size_t cap,
                   size_t pos, size_t row) {
  size_t start = n < cap ? 0 : pos, first = n < cap ? n : cap - pos;
  memcpy(dst, (const char *)src + start * row, first * row);
  if (first < n) memcpy((char *)dst + first * row, src, (n - first) * row);
}

static int copy_window(drift_work *w, const drift_space *s) {
  size_t n = s->win_n, dim = (size_t)w->dim;
  w->win_n = n;
  w->win_x = malloc(sizeof(float) * (n ? n : 1) * dim);
  w->win_label = malloc(sizeof(int32_t) * (n ? n : 1));
  w->win_sim = malloc(sizeof(float) * (n ? n : 1));
  if (!w->win_x || !w->win_label || !w->win_sim) return SD_ENOMEM;
  unring(w->win_x, s->win_x, n, s->win_cap, s->win_pos, sizeof(float) * dim);
  unring(w->win_label, s->win_label, n, s->win_cap, s->win_pos, sizeof(int32_t));
  unring(w->win_sim, s->win_sim, n, s->win_cap, s->win_pos, sizeof(float));
  return 0;
}

static int copy_ring(drift_pool *p, const drift_ring *g, int dim) {
  size_t n = g->n;
  p->x = malloc(sizeof(float) * (n ? n : 1) * (size_t)dim);
  p->text = calloc(n ? n : 1, sizeof(char *));
  p->id = calloc(n ? n : 1, sizeof(char *));
  if (!p->x || !p->text || !p->id) return SD_ENOMEM;
  p->n = n;
  memcpy(p->x, g->x, sizeof(float) * n * (size_t)dim);
  for (size_t i = 0; i < n; i++) {
    p->text[i] = dup_str(g->text[i]);
    p->id[i] = dup_str(g->id[i]);
  }
  return 0;
}

/* Copies the space's state and restarts its count of new points. */
static int take(drift_space *s, drift_work *w) {
  memset(w, 0, sizeof(*w));
  w->dim = s->dim;
  pthread_mutex_lock(&s->mu);
  int rc = copy_ref(w, &s->ref);
  if (rc == 0) rc = copy_window(w, s);
  if (rc == 0) rc = copy_ring(&w->out, &s->out, w->dim);
  if (rc == 0) rc = copy_ring(&w->recent, &s->recent, w->dim);
  w->new_points = s->new_points;
  w->streak = s->mmd_streak;
  w->epoch = s->epoch;
  if (rc == 0) s->new_points = 0;
  pthread_mutex_unlock(&s->mu);
  return rc;
}

/* ---- report building ---- */

sd_drift_check *drift_add_check(sd_drift_report *r, const char *kind,
                                const char *method, int64_t cluster) {
  sd_drift_check *c = realloc(r->checks, sizeof(*c) * (r->n + 1));
  if (!c) return NULL;
  r->checks = c;
  c = &r->checks[r->n++];
  memset(c, 0, sizeof(*c));
  snprintf(c->kind, sizeof(c->kind), "%s", kind);
  snprintf(c->method, sizeof(c->method), "%s", method);
  c->cluster = cluster;
  return c;
}

static void drop_checks(sd_drift_report *r) {
  for (size_t i = 0; i < r->n; i++) {
    free(r->checks[i].centroid);
    json_decref(r->checks[i].detail);
  }
  free(r->checks);
  r->checks = NULL;
  r->n = 0;
}

void sd_drift_report_free(sd_drift_report *r) {
  if (!r) return;
  drop_checks(r);
  memset(r, 0, sizeof(*r));
}

/* ---- distribution ---- */

/* The MMD test's reference: n of the baseline's rows, a fresh uniform draw
 * at each check when the baseline has more (so the false alarms of one
 * space's checks do not all hang on one draw). *own: the copy to free, or
 * NULL when the rows are the baseline itself. */
static const float *ref_sample(const drift_work *w, size_t n, uint64_t seed,
                               float **own) {
  *own = NULL;
  if (n >= w->ref.n) return w->ref.x;
  size_t dim = (size_t)w->dim, *pick = malloc(sizeof(size_t) * w->ref.n);
  float *x = malloc(sizeof(float) * n * dim);
  if (!pick || !x) {
    free(pick);
    free(x);
    return NULL;
  }
  sd_rng rng;
  sd_rng_init(&rng, seed);
  for (size_t i = 0; i < w->ref.n; i++) pick[i] = i;
  for (size_t i = 0; i < n; i++) { /* partial Fisher-Yates */
    size_t j = i + sd_rng_below(&rng, w->ref.n - i), t = pick[i];
    pick[i] = pick[j], pick[j] = t;
    memcpy(x + i * dim, w->ref.x + pick[i] * dim, sizeof(float) * dim);
  }
  free(pick);
  return *own = x;
}

static int check_mmd(const sd_config *cfg, drift_work *w, sd_drift_report *r) {
  sd_drift_check *c = drift_add_check(r, "distribution_drift", "mmd", -1);
  if (!c) return SD_ENOMEM;
  c->threshold = cfg->drift_p_value;
  size_t s = (size_t)cfg->drift_sample;
  size_t m = (size_t)w->new_points < s ? (size_t)w->new_points : s;
  if (m > w->win_n) m = w->win_n;
  size_t n = w->ref.n < s ? w->ref.n : s;
  if ((int64_t)m < cfg->drift_min_points || n < 20) {
    snprintf(c->message, sizeof(c->message), "waiting for data: %zu new "
             "points of %ld", m, cfg->drift_min_points);
    return 0;
  }
  sd_mmd_result res;
  uint64_t seed = (uint64_t)r->checked_at ^ (uint64_t)r->space;
  float *own;
  const float *ref = ref_sample(w, n, seed ^ 0x5bd1e995u, &own);
  if (!ref) return SD_ENOMEM;
  int rc = sd_mmd_test(ref, (int)n, w->win_x + (w->win_n - m) * (size_t)w->dim,
                       (int)m, w->dim, (int)cfg->drift_permutations, seed, &res);
  free(own);
  if (rc < 0) return rc;
  c->evaluated = 1;
  c->value = res.p_value;
  c->drifted = res.p_value < cfg->drift_p_value;
  w->streak = c->drifted ? w->streak + 1 : 0;
  c->severity = !c->drifted ? SD_SEV_NONE
                : w->streak >= cfg->drift_persist ? SD_SEV_CRITICAL
                                                  : SD_SEV_WARNING;
  c->detail = json_pack("{s:f,s:f,s:i,s:I,s:I,s:i}", "mmd2", res.mmd2, "sigma",
                        res.sigma, "permutations", res.permutations,
                        "reference_points", (json_int_t)n, "current_points",
                        (json_int_t)m, "drifted_checks_in_a_row", w->streak);
  snprintf(c->message, sizeof(c->message), "embedding distribution %s "
           "(MMD permutation p = %.3g on %zu new points vs %zu reference)",
           c->drifted ? "changed" : "unchanged", res.p_value, m, n);
  return 0;
}

static double ref_total(const drift_ref *ref) {
  double t = 0;
  for (int i = 0; i < ref->k; i++) t += ref->counts[i];
  return t;
}

static int check_psi(const sd_config *cfg, const drift_work *w, const double *cnt,
                     sd_drift_report *r) {
  sd_drift_check *c = drift_add_check(r, "distribution_drift", "psi", -1);
  if (!c) return SD_ENOMEM;
  c->threshold = cfg->psi_warning;
  if (!w->ref.base_done) {
    snprintf(c->message, sizeof(c->message), "collecting the baseline "
             "shares: %zu of %zu points", w->ref.base_n, w->ref.base_cap);
    return 0;
  }
  double n_ref = ref_total(&w->ref), n_win = (double)w->win_n;
  double noise = n_win > 0 && n_ref > 0
                     ? (w->ref.k - 1) * (1.0 / n_win + 1.0 / n_ref) : INFINITY;
  if (noise > cfg->psi_warning / 2) {
    snprintf(c->message, sizeof(c->message), "waiting for data: %.0f points "
             "in the window are too few for %d clusters", n_win, w->ref.k);
    return 0;
  }
  c->evaluated = 1;
  c->value = sd_psi(w->ref.counts, cnt, w->ref.k, 1e-4);
  c->drifted = c->value >= cfg->psi_warning;
  c->severity = !c->drifted ? SD_SEV_NONE
                : c->value >= cfg->psi_critical ? SD_SEV_CRITICAL
                                                : SD_SEV_WARNING;
  c->detail = json_pack("{s:f,s:f}", "expected_without_change", noise,
                        "critical_threshold", cfg->psi_critical);
  snprintf(c->message, sizeof(c->message), "cluster shares %s (PSI %.3f over "
           "%.0f recent points)", c->drifted ? "moved" : "stable", c->value,
           n_win);
  return 0;
}

/* ---- per cluster ---- */

typedef struct {
  double *cnt, *sim; /* k */
  float *sum;        /* k x dim */
} win_stats;

static void win_stats_free(win_stats *s) {
  free(s->cnt);
  free(s->sim);
  free(s->sum);
}

static int win_stats_of(const drift_work *w, win_stats *s) {
  size_t k = (size_t)w->ref.k, dim = (size_t)w->dim;
  s->cnt = calloc(k, sizeof(double));
  s->sim = calloc(k, sizeof(double));
  s->sum = calloc(k * dim, sizeof(float));
  if (!s->cnt || !s->sim || !s->sum) return SD_ENOMEM;
  for (size_t i = 0; i < w->win_n; i++) {
    int c = w->win_label[i];
    s->cnt[c] += 1;
    s->sim[c] += w->win_sim[i];
    cblas_saxpy((int)dim, 1.0f, w->win_x + i * dim, 1, s->sum + (size_t)c * dim, 1);
  }
  return 0;
}

/* The closest call per kind: the highest score (how near the threshold)
 * and the value shown for it. */
typedef struct {
  double score[4], value[4];
  int64_t cluster[4];
} worst_of;

static void track(worst_of *wo, int kind, double score, double value,
                  int64_t id) {
  if (score > wo->score[kind])
    wo->score[kind] = score, wo->value[kind] = value, wo->cluster[kind] = id;
}

/* Adds a drifted per-cluster check (sev > 0), else tracks the value. */
static int per_cluster(sd_drift_report *r, worst_of *wo, int kind,
                       const char *const names[2], int64_t id, double value,
                       double score, double thr, int sev, const char *msg) {
  if (sev == SD_SEV_NONE) {
    track(wo, kind, score, value, id);
    return 0;
  }
  sd_drift_check *c = drift_add_check(r, names[0], names[1], id);
  if (!c) return SD_ENOMEM;
  c->evaluated = c->drifted = 1;
  c->value = value;
  c->threshold = thr;
  c->severity = sev;
  snprintf(c->message, sizeof(c->message), "%s", msg);
  return 0;
}

static const char *const KINDS[4][2] = {{"vanishing_cluster", "floor"},
                                        {"share_shift", "share_z"},
                                        {"centroid_shift", "cosine"},
                                        {"cohesion_drop", "cohesion"}};

static int summary(sd_drift_report *r, const char *kind, const char *method,
                   double worst, int64_t worst_c, double thr, size_t before) {
  for (size_t i = before; i < r->n; i++)
    if (!strcmp(r->checks[i].kind, kind)) return 0; /* some cluster drifted */
  sd_drift_check *c = drift_add_check(r, kind, method, worst_c);
  if (!c) return SD_ENOMEM;
  c->evaluated = worst_c >= 0;
  c->value = worst_c >= 0 ? worst : 0;
  c->threshold = thr;
  snprintf(c->message, sizeof(c->message), worst_c >= 0
           ? "no cluster beyond the threshold (largest shown)"
           : "waiting for data: no cluster has %d recent points", MIN_CLUSTER_POINTS);
  return 0;
}

/* 1 - cosine of the window's mean of cluster c to the baseline's mean,
 * and its threshold (at least 4x the sampling noise of both means). */
static double centroid_shift(const drift_work *w, const win_stats *s, int c,
                             double coh, double cfg_thr, double *thr) {
  size_t dim = (size_t)w->dim;
  const float *sum = s->sum + (size_t)c * dim, *ref = w->ref.base_sum + (size_t)c * dim;
  double na = cblas_snrm2((int)dim, sum, 1), nb = cblas_snrm2((int)dim, ref, 1);
  double cosv = na > 0 && nb > 0 ? cblas_sdot((int)dim, sum, 1, ref, 1) / (na * nb) : 0;
  if (coh < 0.05) coh = 0.05;
  double noise = (1 - coh * coh) / (2 * coh * coh) *
                 (1 / s->cnt[c] + 1 / w->ref.base[c]);
  *thr = cfg_thr > 4 * noise ? cfg_thr : 4 * noise;
  return 1 - cosv;
}

/* Share checks of cluster c: vanishing, else share shift (only once the
 * baseline shares exist). */
static int cluster_shares(const sd_config *cfg, const drift_work *w,
                          const win_stats *s, int c, sd_drift_report *r,
                          worst_of *wo) {
  double n_ref = ref_total(&w->ref), n_win = (double)w->win_n;
  double rs = w->ref.counts[c] / n_ref, ws = s->cnt[c] / n_win;
  int64_t id = w->ref.ids[c];
  char msg[320];
  if (!w->ref.base_done) return 0;
  if (rs * n_win >= VANISH_EXPECTED) {
    int sev = ws < cfg->vanish_floor * rs ? SD_SEV_WARNING : SD_SEV_NONE;
    snprintf(msg, sizeof(msg), "cluster %lld is vanishing: %.2f%% of recent "
             "points, %.2f%% in the baseline", (long long)id, 100 * ws, 100 * rs);
    int rc = per_cluster(r, wo, 0, KINDS[0], id, ws / rs, -ws / rs,
                         cfg->vanish_floor, sev, msg);
    if (rc < 0 || sev) return rc; /* a vanishing cluster's share is said */
  }
  double rel = rs > 0 ? fabs(ws - rs) / rs : 0;
  double z = fabs(sd_two_prop_z(s->cnt[c], n_win, w->ref.counts[c], n_ref));
  int sev = rs * n_win >= 10 && rel >= cfg->share_shift && z >= SHARE_Z
                ? (rel >= 2 * cfg->share_shift ? SD_SEV_CRITICAL : SD_SEV_WARNING)
                : SD_SEV_NONE;
  snprintf(msg, sizeof(msg), "cluster %lld's share went from %.2f%% to "
           "%.2f%% (z = %.1f)", (long long)id, 100 * rs, 100 * ws, z);
  return per_cluster(r, wo, 1, KINDS[1], id, rel, z >= SHARE_Z ? rel : 0,
                     cfg->share_shift, sev, msg);
}

/* Shape checks of cluster c: centroid shift and cohesion drop. */
static int cluster_shape(const sd_config *cfg, const drift_work *w,
                         const win_stats *s, int c, sd_drift_report *r,
                         worst_of *wo) {
  int64_t id = w->ref.ids[c];
  char msg[320];
  double thr;
  if (!w->ref.base_done || s->cnt[c] < MIN_CLUSTER_POINTS ||
      w->ref.base[c] < MIN_CLUSTER_POINTS)
    return 0; /* compared with the baseline's members only */
  double coh = w->ref.base_sim[c] / w->ref.base[c];
  double shift = centroid_shift(w, s, c, coh, cfg->centroid_shift, &thr);
  int sev = shift > thr ? (shift > 2 * thr ? SD_SEV_CRITICAL : SD_SEV_WARNING)
                        : SD_SEV_NONE;
  snprintf(msg, sizeof(msg), "cluster %lld moved: its recent members' mean is "
           "at cosine %.3f from its baseline members' mean", (long long)id,
           1 - shift);
  int rc = per_cluster(r, wo, 2, KINDS[2], id, shift, shift / thr, thr, sev, msg);
  double drop = coh - s->sim[c] / s->cnt[c];
  sev = drop >= cfg->cohesion_drop ? SD_SEV_WARNING : SD_SEV_NONE;
  snprintf(msg, sizeof(msg), "cluster %lld is looser: mean similarity %.3f, "
           "%.3f in the baseline", (long long)id, s->sim[c] / s->cnt[c], coh);
  if (rc == 0)
    rc = per_cluster(r, wo, 3, KINDS[3], id, drop, drop, cfg->cohesion_drop,
                     sev, msg);
  return rc;
}

static int one_cluster(const sd_config *cfg, const drift_work *w, const win_stats *s,
                       int c, sd_drift_report *r, worst_of *wo) {
  int rc = cluster_shares(cfg, w, s, c, r, wo);
  return rc < 0 ? rc : cluster_shape(cfg, w, s, c, r, wo);
}

static int check_clusters(const sd_config *cfg, const drift_work *w,
                          const win_stats *s, sd_drift_report *r) {
  const double thr[4] = {cfg->vanish_floor, cfg->share_shift,
                         cfg->centroid_shift, cfg->cohesion_drop};
  worst_of wo;
  for (int i = 0; i < 4; i++)
    wo.score[i] = -INFINITY, wo.value[i] = 0, wo.cluster[i] = -1;
  size_t before = r->n;
  int rc = 0;
  for (int c = 0; c < w->ref.k && rc == 0 && w->win_n > 0; c++)
    rc = one_cluster(cfg, w, s, c, r, &wo);
  for (int i = 0; i < 4 && rc == 0; i++)
    rc = summary(r, KINDS[i][0], KINDS[i][1], wo.value[i], wo.cluster[i],
                 thr[i], before);
  return rc;
}

/* ---- the check ---- */

static int run_checks(const sd_drift *dr, drift_work *w, sd_drift_report *r) {
  const sd_config *cfg = dr->cfg;
  win_stats st = {0};
  if (!w->ref.baseline) { /* nothing to compare with yet */
    sd_drift_check *c = drift_add_check(r, "distribution_drift", "mmd", -1);
    if (!c) return SD_ENOMEM;
    c->threshold = cfg->drift_p_value;
    snprintf(c->message, sizeof(c->message), "collecting the baseline of "
             "model v%lld: %zu of %zu points", (long long)w->ref.version,
             w->ref.n, w->ref.cap);
    return 0;
  }
  int rc = check_mmd(cfg, w, r);
  if (rc == 0) rc = win_stats_of(w, &st);
  if (rc == 0) rc = check_psi(cfg, w, st.cnt, r);
  if (rc == 0) rc = check_clusters(cfg, w, &st, r);
  if (rc == 0) rc = drift_check_emerging(dr, w, r);
  win_stats_free(&st);
  return rc;
}

int sd_drift_run(sd_drift *d, int space, sd_drift_report *out) {
  drift_space *s = &d->spaces[space];
  memset(out, 0, sizeof(*out));
  out->space = space;
  out->dim = s->dim;
  out->checked_at = sd_now_ms();
  pthread_mutex_lock(&s->check_mu);
  drift_work w;
  int rc = take(s, &w);
  out->version = w.ref.version;
  out->window_points = (int64_t)w.win_n;
  out->new_points = w.new_points;
  if (rc == 0 && w.ref.version > 0) {
    rc = run_checks(d, &w, out);
    pthread_mutex_lock(&s->mu);
    int same = s->epoch == w.epoch;
    if (rc == 0 && same) s->mmd_streak = w.streak;
    pthread_mutex_unlock(&s->mu);
    if (!same) drop_checks(out); /* a new model or pin came meanwhile:
                                    these compared with the old one */
  }
  work_free(&w);
  pthread_mutex_unlock(&s->check_mu);
  if (rc < 0) sd_drift_report_free(out);
  return rc;
}

static const char *severity_name(int s) {
  return s == SD_SEV_CRITICAL ? "critical" : s == SD_SEV_WARNING ? "warning"
         : s == SD_SEV_INFO ? "info" : NULL;
}

json_t *sd_drift_report_json(const sd_drift_report *r) {
  json_t *checks = json_array();
  for (size_t i = 0; i < r->n && checks; i++) {
    const sd_drift_check *c = &r->checks[i];
    json_t *o = json_pack("{s:s,s:s,s:f,s:f,s:b,s:b,s:s}", "kind", c->kind,
                          "method", c->method, "value", c->value, "threshold",
                          c->threshold, "drifted", c->drifted, "evaluated",
                          c->evaluated, "message", c->message);
    if (!o) continue;
    if (c->cluster >= 0) json_object_set_new(o, "cluster", json_integer(c->cluster));
    if (c->drifted) json_object_set_new(o, "severity",
                                        json_string(severity_name(c->severity)));
    if (c->detail) json_object_set(o, "detail", c->detail);
    json_array_append_new(checks, o);
  }
  return json_pack("{s:s,s:I,s:I,s:{s:I,s:I},s:o}", "space",
                   r->space == 0 ? "intents" : "segments", "model_version",
                   (json_int_t)r->version, "checked_at_ms",
                   (json_int_t)r->checked_at, "window", "points",
                   (json_int_t)r->window_points, "new_points",
                   (json_int_t)r->new_points, "checks", checks);
}
