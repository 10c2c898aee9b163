/*
 * drift.h -- windows and detectors of drift, per space.
 *
 * Owns, per space: the reference of the live model (its cluster counts
 * over the whole training sample, its centroids, and a baseline: the first
 * --drift-baseline points assigned once the model is live, with clusters and
 * similarities; points the model was fitted on are not used, as they sit
 * closer to its centroids and its encoder projection than new points
 * ever will, which alone would read as drift), the
 * current window (the latest --drift-window assignments of new or updated
 * entities: vectors, clusters, similarities), the outlier buffer (recent
 * points less similar to their cluster than its --outlier-quantile radius,
 * with ids and texts), and the detectors that compare them:
 *   distribution_drift  MMD with an RBF kernel and a permutation p-value
 *                       between the reference sample and the points new
 *                       since the last check (method "mmd"); population
 *                       stability index of cluster shares (method "psi")
 *   centroid_shift      1 - cosine of a cluster's window mean to its
 *                       reference centroid
 *   share_shift         relative change of a cluster's share, when a
 *                       two-proportion z-test also finds it significant
 *   cohesion_drop       fall of the mean similarity to the centroid
 *   vanishing_cluster   window share below --vanish-floor x reference
 *   emerging_cluster    a group of recent points where the baseline has
 *                       none (at least --emerging-neighbourhood-min-size),
 *                       or a dense group (HDBSCAN-style) of outliers of at
 *                       least --emerging-min-size points
 * Thresholds and their sources are in config.c and the README.
 *
 * Threads: sd_drift_observe and sd_drift_set_reference come from the core
 * writer; sd_drift_run from the maintenance thread or an HTTP thread
 * (checks of one space run one at a time). A mutex guards the windows; a
 * check copies what it needs and computes outside it. Memory: the drift
 * object is owned by the core; a report is freed with
 * sd_drift_report_free.
 */
#ifndef SEGMENTD_DRIFT_H
#define SEGMENTD_DRIFT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "segmentd/config.h"

typedef struct sd_drift sd_drift;

enum { SD_SEV_NONE, SD_SEV_INFO, SD_SEV_WARNING, SD_SEV_CRITICAL };

/* The kinds of check above, in that order (labels of /metrics). */
#define SD_DRIFT_KINDS 6
extern const char *const sd_drift_kinds[SD_DRIFT_KINDS];

/* Where a space's baseline comes from: the first assignments after its
 * model went live (MODEL), or a pin by hand (drift_baseline.c): the
 * window's latest points (CURRENT) or the assignments after the pin
 * (NEXT). A pin belongs to its model version: a new model starts again
 * from MODEL. */
enum { SD_DRIFT_BASE_MODEL, SD_DRIFT_BASE_CURRENT, SD_DRIFT_BASE_NEXT };
#define SD_DRIFT_BASE_SOURCES 3
extern const char *const sd_drift_base_sources[SD_DRIFT_BASE_SOURCES];

typedef struct {
  int source;          /* SD_DRIFT_BASE_* */
  int64_t pinned_at;   /* epoch ms; 0 for MODEL */
  char pinned_by[96];  /* who pinned it (the API key's entry); "" unknown */
} sd_drift_pin;

/* The model a space's reference belongs to (copied in). */
typedef struct {
  int64_t version;
  int k, dim;
  const int32_t *ids;       /* k cluster ids */
  const float *centroids;   /* k x dim, unit rows */
  const float *counts;      /* k: training-sample members per cluster */
  const float *x;           /* n x dim reference sample (unit rows) */
  const int32_t *label;     /* n: row index into ids */
  const float *sim;         /* n: cosine to its centroid */
  size_t n;
  const float *base_sum;    /* baseline 2: k x dim vector sums, k sims */
  const float *base_sim;
  int baseline;             /* 0: collect the baseline from the next
                               observations; 1: x/label/sim are the
                               complete baseline; 2: and counts are the
                               baseline shares */
  const sd_drift_pin *pin;  /* NULL: SD_DRIFT_BASE_MODEL */
} sd_drift_ref;

/* One check's outcome. Per-cluster kinds carry the cluster id. */
typedef struct {
  char kind[24];     /* distribution_drift | centroid_shift | ... */
  char method[16];   /* mmd | psi | cosine | share_z | cohesion | floor |
                        density */
  int64_t cluster;   /* cluster id, or -1 */
  double value, threshold;
  int evaluated;     /* 0: not enough data (value and drifted are 0) */
  int drifted;
  int severity;      /* SD_SEV_* when drifted */
  char message[320];
  float *centroid;   /* emerging_cluster: its centroid where it was found
                        (dim floats, owned; see sd_drift_set_encoder) */
  json_t *detail;    /* extra figures (owned), or NULL */
} sd_drift_check;

typedef struct {
  int space;
  int64_t version;   /* model the checks ran against (0: none yet) */
  int64_t checked_at;
  int64_t window_points, new_points; /* in the window, since last check */
  sd_drift_check *checks;
  size_t n;
  int dim;
} sd_drift_report;

sd_drift *sd_drift_new(const sd_config *cfg, const int dims[2]);
void sd_drift_free(sd_drift *d);

/* A new model of space: its reference replaces the old one, and the
 * window and outliers start afresh. 0 or SD_ENOMEM. */
int sd_drift_set_reference(sd_drift *d, int space, const sd_drift_ref *ref);

/* One entity of space assigned (cluster index idx of model version, with
 * similarity sim, unit vector x of the space's dimension). id and text
 * (texts only; may be NULL) are kept when the point is an outlier. */
int sd_drift_observe(sd_drift *d, int space, int64_t version, int idx,
                     float sim, const float *x, const char *id,
                     const char *text, size_t len);
/* A space's baseline as table drift_reference stores it; every array is
 * owned (sd_drift_base_free releases them). */
typedef struct {
  int64_t version;
  int k, dim;
  size_t n;          /* rows of the vector baseline (0 while collected) */
  float *x;          /* n x dim */
  int32_t *label;    /* n */
  float *sim;        /* n */
  float *counts;     /* k: the baseline shares when level is 2, else the
                        training counts */
  float *base_sum;   /* k x dim: per-cluster sums of vectors and (base_sim, */
  float *base_sim;   /* k) of similarities over the shares' assignments */
  int level;         /* as sd_drift_ref.baseline */
  sd_drift_pin pin;
} sd_drift_base;
void sd_drift_base_free(sd_drift_base *b);

/* sd_drift_observe returns non-zero when its point completed the vector
 * baseline (bit 1) or the baseline shares (bit 2: the clusters of the
 * first max(--drift-window / 2, --drift-baseline) assignments, which share
 * checks compare with), which the caller then stores: *out gets a copy of
 * it. 0 or SD_ENOMEM. */
int sd_drift_baseline(sd_drift *d, int space, sd_drift_base *out);

/* Rows of a vector baseline: --drift-baseline (0: 4 x --drift-sample), at
 * least --drift-sample (the MMD test compares a fresh draw of --drift-sample
 * of them at each check). */
size_t sd_drift_baseline_size(const sd_config *cfg);

/* ---- pinning a baseline by hand (drift_baseline.c) ---- */

/* The baseline a pin of space's model `version` would install, built
 * without changing anything: for SD_DRIFT_BASE_CURRENT the latest
 * sd_drift_baseline_size window points (vector baseline) and the latest
 * max(--drift-window / 2, that size) of them, or the whole window
 * when it holds fewer (shares); for SD_DRIFT_BASE_NEXT none (level 0: it
 * is collected again from the next assignments). 0, SD_ECONFLICT with msg
 * saying why (no reference of that version, or fewer than
 * sd_drift_baseline_size points in the window), or SD_ENOMEM. */
int sd_drift_pin_plan(sd_drift *d, int space, int64_t version,
                      const sd_drift_pin *pin, sd_drift_base *out, char *msg,
                      size_t msglen);

/* What GET /v1/spaces/{space}/drift/baseline tells of a space's baseline. */
typedef struct {
  int64_t version;      /* 0: no reference yet */
  int source;           /* SD_DRIFT_BASE_* */
  size_t points;        /* vector baseline rows held so far */
  size_t share_points;  /* assignments the baseline shares count so far */
  int complete;         /* both complete: every check can run */
  int64_t pinned_at;    /* 0: not pinned */
  char pinned_by[96];
} sd_drift_base_info;
void sd_drift_base_describe(sd_drift *d, int space, sd_drift_base_info *out);
/* {space, model_version, source, points, share_points, complete,
 * pinned_at, pinned_by} (a new reference; pinned_* are null when unset). */
json_t *sd_drift_base_info_json(const sd_drift_base_info *b,
                                const char *space);

/* Texts of a space may be re-encoded for the emerging-cluster search:
 * fn(ud, text, len, out) writes a unit vector of dim floats (0 or an
 * sd_err), called from the checking thread. The built-in encoder's fitted
 * projection only spans the words of its training texts, so texts about a
 * new topic land near the origin, scattered; a projection of the raw
 * features keeps their words and lets them group. */
typedef int (*sd_drift_encode_fn)(void *ud, const char *text, size_t len,
                                  float *out);
void sd_drift_set_encoder(sd_drift *d, int space, sd_drift_encode_fn fn,
                          void *ud, int dim); /* dim: the space's */

/* Runs every detector of space on the data so far; the window's "new
 * points" restart. A report whose reference was replaced while it ran (a
 * new model, or a pinned baseline) has no checks: they compared with the
 * old one. 0 or a negative sd_err. */
int sd_drift_run(sd_drift *d, int space, sd_drift_report *out);
void sd_drift_report_free(sd_drift_report *r);

/* The report as JSON (API.md's "checks"), a new reference. */
json_t *sd_drift_report_json(const sd_drift_report *r);

#endif
