/*
 * views.h -- per-user multi-view vectors of the segments space.
 *
 * Owns: the decayed accumulators of a user (text view: time-decayed sum of
 * the user's text embeddings; behaviour view: time-decayed event-type
 * counts, signed-hashed into SD_BEH_DIM buckets), and composing them into
 * one vector: each view L2-normalised and scaled by sqrt(w_v / sum w), the
 * whole then L2-normalised, so a dot product with a centroid splits into
 * per-view contributions. Updates cost O(view width); history is never
 * rescanned.
 *
 * Memory: sd_user_state embeds caller-provided arrays (text_sum: dim floats,
 * beh_sum: SD_BEH_DIM floats). Pure functions, no globals.
 */
#ifndef SEGMENTD_VIEWS_H
#define SEGMENTD_VIEWS_H

#include <stddef.h>
#include <stdint.h>

#define SD_BEH_DIM 64

typedef struct {
  int64_t first_seen, last_seen, n_events, n_texts;
  float *text_sum; /* dim */
  int64_t text_t;  /* time text_sum is decayed to (epoch ms); 0 = empty */
  float *beh_sum;  /* SD_BEH_DIM */
  int64_t beh_t;
} sd_user_state;

typedef struct {
  int dim;            /* text embedding dimension */
  double half_life_ms;
  double w_text, w_beh;
} sd_views_conf;

/* Width of a user vector: dim + SD_BEH_DIM. */
int sd_views_width(const sd_views_conf *vc);

void sd_views_add_text(const sd_views_conf *vc, sd_user_state *u,
                       const float *emb, int64_t ts);
void sd_views_add_event(const sd_views_conf *vc, sd_user_state *u,
                        const char *type, size_t len, int64_t ts);

/* Writes the user vector (width floats). Returns 1 if it is non-zero. */
int sd_views_vector(const sd_views_conf *vc, const sd_user_state *u,
                    float *out);

/* The behaviour bucket and sign of an event type. */
int sd_views_beh_bucket(const char *type, size_t len, float *sign);

#endif
