/*
 * drift_baseline.c -- baselines pinned by hand (drift.h, "pinning a
 * baseline by hand") and what a space's baseline is.
 *
 * Owns: building the baseline a pin installs, without changing anything
 * (the caller stores it, then hands it to sd_drift_set_reference as a
 * reference of the same model, which restarts the windows), describing a
 * space's baseline, and the sd_drift_base copies (sd_drift_base_free).
 *
 * A "current" pin takes the latest --drift-baseline window points as the
 * vector baseline (what MMD and the emerging-cluster neighbourhoods
 * compare with; the radii and cohesions follow from it) and the latest
 * max(--drift-window / 2, --drift-baseline) window points, or the whole
 * window when it holds fewer, as the baseline shares with their
 * per-cluster vector and similarity sums (what PSI, share, centroid,
 * cohesion and vanishing checks compare with). It needs at least
 * sd_drift_baseline_size window points: the size of the vector baseline a
 * model collects. A "next" pin empties the baseline, which is then collected
 * again from the next assignments as after a model install.
 *
 * Threads: called from the core writer (plan) or any thread (describe);
 * the space's mutex guards the reads. Memory: a planned sd_drift_base is
 * the caller's, released with sd_drift_base_free.
 */
#include "drift_int.h"

#include "segmentd/err.h"
#include "segmentd/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const sd_drift_base_sources[SD_DRIFT_BASE_SOURCES] = {
    "model", "current", "next"};

void sd_drift_base_free(sd_drift_base *b) {
  if (!b) return;
  free(b->x);
  free(b->label);
  free(b->sim);
  free(b->counts);
  free(b->base_sum);
  free(b->base_sim);
  memset(b, 0, sizeof(*b));
}

int drift_base_alloc(sd_drift_base *b, size_t n, int k, int dim) {
  size_t rows = n ? n : 1, kk = k > 0 ? (size_t)k : 1, d = (size_t)dim;
  memset(b, 0, sizeof(*b));
  b->k = k, b->dim = dim, b->n = n;
  b->x = malloc(sizeof(float) * rows * d);
  b->label = malloc(sizeof(int32_t) * rows);
  b->sim = malloc(sizeof(float) * rows);
  b->counts = calloc(kk, sizeof(float));
  b->base_sum = calloc(kk * d, sizeof(float));
  b->base_sim = calloc(kk, sizeof(float));
  if (b->x && b->label && b->sim && b->counts && b->base_sum && b->base_sim)
    return 0;
  sd_drift_base_free(b);
  return SD_ENOMEM;
}

/* Row of the window ring holding point t of its latest m (t = 0 the
 * oldest of them); m <= win_n. */
static size_t win_row(const drift_space *s, size_t m, size_t t) {
  return (s->win_pos + s->win_cap - m + t) % s->win_cap;
}

/* The latest b->n window points as the vector baseline. */
static void take_points(const drift_space *s, sd_drift_base *b) {
  size_t dim = (size_t)s->dim;
  for (size_t t = 0; t < b->n; t++) {
    size_t i = win_row(s, b->n, t);
    memcpy(b->x + t * dim, s->win_x + i * dim, sizeof(float) * dim);
    b->label[t] = s->win_label[i];
    b->sim[t] = s->win_sim[i];
  }
}

/* Cluster counts and per-cluster sums of the latest m window points. */
static void take_shares(const drift_space *s, size_t m, sd_drift_base *b) {
  size_t dim = (size_t)s->dim;
  for (size_t t = 0; t < m; t++) {
    size_t i = win_row(s, m, t), c = (size_t)s->win_label[i];
    const float *x = s->win_x + i * dim;
    b->counts[c] += 1;
    b->base_sim[c] += s->win_sim[i];
    for (size_t j = 0; j < dim; j++) b->base_sum[c * dim + j] += x[j];
  }
}

/* Can space s (mutex held) take a pin of this source? */
static int plan_check(const drift_space *s, int64_t version, int source,
                      size_t need, char *msg, size_t msglen) {
  if (s->ref.version == 0 || s->ref.version != version) {
    snprintf(msg, msglen, "model v%lld has no drift reference (it predates "
             "drift checks): baselines start with the next model",
             (long long)version);
    return SD_ECONFLICT;
  }
  if (source == SD_DRIFT_BASE_CURRENT && s->win_n < need) {
    snprintf(msg, msglen, "the drift window holds %zu points since the "
             "baseline; pinning it needs at least %zu (--drift-baseline, at "
             "least --drift-sample)",
             s->win_n, need);
    return SD_ECONFLICT;
  }
  return 0;
}

int sd_drift_pin_plan(sd_drift *d, int space, int64_t version,
                      const sd_drift_pin *pin, sd_drift_base *out, char *msg,
                      size_t msglen) {
  drift_space *s = &d->spaces[space];
  size_t need = sd_drift_baseline_size(d->cfg);
  int current = pin->source == SD_DRIFT_BASE_CURRENT;
  memset(out, 0, sizeof(*out));
  pthread_mutex_lock(&s->mu);
  const drift_ref *r = &s->ref;
  int rc = plan_check(s, version, pin->source, need, msg, msglen);
  if (rc == 0) rc = drift_base_alloc(out, current ? need : 0, r->k, s->dim);
  if (rc == 0) {
    out->version = r->version;
    out->pin = *pin;
    out->level = current ? 2 : 0;
    if (current) {
      take_points(s, out);
      take_shares(s, s->win_n < r->base_cap ? s->win_n : r->base_cap, out);
    } else {
      for (int c = 0; c < r->k; c++) out->counts[c] = (float)r->counts[c];
    }
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

void sd_drift_base_describe(sd_drift *d, int space, sd_drift_base_info *o) {
  drift_space *s = &d->spaces[space];
  memset(o, 0, sizeof(*o));
  pthread_mutex_lock(&s->mu);
  const drift_ref *r = &s->ref;
  o->version = r->version;
  o->source = r->pin.source;
  o->points = r->n;
  o->share_points = r->base_n;
  o->complete = r->version != 0 && r->baseline && r->base_done;
  o->pinned_at = r->pin.pinned_at;
  memcpy(o->pinned_by, r->pin.pinned_by, sizeof(o->pinned_by));
  pthread_mutex_unlock(&s->mu);
}

json_t *sd_drift_base_info_json(const sd_drift_base_info *b,
                                const char *space) {
  char at[48];
  if (b->pinned_at) sd_time_format(b->pinned_at, at);
  return json_pack("{s:s,s:I,s:s,s:I,s:I,s:b,s:s?,s:s?}", "space", space,
                   "model_version", (json_int_t)b->version, "source",
                   sd_drift_base_sources[b->source], "points",
                   (json_int_t)b->points, "share_points",
                   (json_int_t)b->share_points, "complete", b->complete,
                   "pinned_at", b->pinned_at ? at : NULL, "pinned_by",
                   b->pinned_by[0] ? b->pinned_by : NULL);
}
