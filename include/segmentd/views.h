/*
 * views.h -- per-user multi-view vectors of the segments space.
 *
 * Owns: the decayed accumulators of a user, one per view:
 *   text      time-decayed sum of the user's text embeddings (dim);
 *   behaviour time-decayed event-type counts, signed-hashed (SD_BEH_DIM),
 *             weighted by inverse global frequency when composed;
 *   time      hour-of-day (24) and day-of-week (7) histograms of activity
 *             (UTC) plus an activity-cadence coordinate (SD_TIME_DIM);
 *   context   categorical properties "key=value", signed-hashed (SD_CTX_DIM);
 * and composing them into one vector: each present view L2-normalised and
 * scaled by sqrt(w_v / sum of the weights of the views the user has), so a
 * dot product with a centroid is the weighted mean of per-view cosines over
 * the user's views (a missing view neither counts as dissimilar nor
 * dilutes the others) and splits exactly into per-view contributions.
 * Updates cost O(view width); history is never rescanned.
 *
 * Memory: sd_user_state points into caller-provided arrays. Pure
 * functions, no globals.
 */
#ifndef SEGMENTD_VIEWS_H
#define SEGMENTD_VIEWS_H

#include <stddef.h>
#include <stdint.h>

#define SD_BEH_DIM 64
#define SD_TIME_DIM 32 /* 24 hours + 7 weekdays + 1 cadence */
#define SD_CTX_DIM 64

enum { SD_VIEW_TEXT, SD_VIEW_BEH, SD_VIEW_TIME, SD_VIEW_CTX, SD_VIEWS };

typedef struct {
  int64_t first_seen, last_seen, n_events, n_texts;
  float *text_sum; /* dim */
  int64_t text_t;  /* time text_sum is decayed to (epoch ms); 0 = empty */
  float *beh_sum;  /* SD_BEH_DIM */
  int64_t beh_t;
  float *time_sum; /* SD_TIME_DIM */
  int64_t time_t;
  float *ctx_sum;  /* SD_CTX_DIM */
  int64_t ctx_t;
  int64_t last_act; /* latest activity, for the cadence */
} sd_user_state;

typedef struct {
  int dim;            /* text embedding dimension */
  double half_life_ms;
  double w_text, w_beh, w_time, w_ctx;
  const float *beh_idf; /* SD_BEH_DIM inverse frequencies, or NULL (1) */
} sd_views_conf;

/* Width of a user vector, and where each view starts in it. */
int sd_views_width(const sd_views_conf *vc);
int sd_views_offset(const sd_views_conf *vc, int view);
int sd_views_len(const sd_views_conf *vc, int view);
/* "text" | "behaviour" | "time" | "context". */
const char *sd_views_name(int view);

/* A text at ts: counts and the time view; emb (unit, dim floats) joins the
 * text view, or is NULL while the text waits for its embedding, which
 * sd_views_add_text_vec() then adds alone. */
void sd_views_add_text(const sd_views_conf *vc, sd_user_state *u,
                       const float *emb, int64_t ts);
void sd_views_add_text_vec(const sd_views_conf *vc, sd_user_state *u,
                           const float *emb, int64_t ts);
void sd_views_add_event(const sd_views_conf *vc, sd_user_state *u,
                        const char *type, size_t len, int64_t ts);
/* One categorical property "key=value" of an event at ts. */
void sd_views_add_context(const sd_views_conf *vc, sd_user_state *u,
                          const char *kv, size_t len, int64_t ts);

/* Writes the user vector (width floats). Returns 1 if it is non-zero. */
int sd_views_vector(const sd_views_conf *vc, const sd_user_state *u,
                    float *out);

/* The bucket and sign of an event type / of a "key=value" property. */
int sd_views_beh_bucket(const char *type, size_t len, float *sign);
int sd_views_ctx_bucket(const char *kv, size_t len, float *sign);

/* A readable name of time-view coordinate i ("21:00 UTC", "Sat",
 * "cadence"), static. */
const char *sd_views_time_name(int i);

#endif
