/* views.c -- decayed per-user views and their composition (see views.h). */
#include "segmentd/views.h"
#include "segmentd/tokenize.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

int sd_views_width(const sd_views_conf *vc) { return vc->dim + SD_BEH_DIM; }

/* Adds x (scaled) into an accumulator decayed to *t, moving *t forward to
 * ts when ts is newer; an older item is added with its own decay. */
static void decay_add(float *acc, int64_t *t, const float *x, float xs, int n,
                      int64_t ts, double hl) {
  if (*t == 0) {
    *t = ts;
  } else if (ts > *t) {
    float f = (float)exp2(-(double)(ts - *t) / hl);
    cblas_sscal(n, f, acc, 1);
    *t = ts;
  } else {
    xs *= (float)exp2(-(double)(*t - ts) / hl);
  }
  if (x)
    cblas_saxpy(n, xs, x, 1, acc, 1);
}

static void seen(sd_user_state *u, int64_t ts) {
  if (!u->first_seen || ts < u->first_seen) u->first_seen = ts;
  if (ts > u->last_seen) u->last_seen = ts;
}

void sd_views_add_text(const sd_views_conf *vc, sd_user_state *u,
                       const float *emb, int64_t ts) {
  decay_add(u->text_sum, &u->text_t, emb, 1.0f, vc->dim, ts, vc->half_life_ms);
  u->n_texts++;
  seen(u, ts);
}

int sd_views_beh_bucket(const char *type, size_t len, float *sign) {
  uint64_t h = sd_hash64(type, len, 0xbe4a);
  *sign = (h >> 63) ? -1.0f : 1.0f;
  return (int)(h % SD_BEH_DIM);
}

void sd_views_add_event(const sd_views_conf *vc, sd_user_state *u,
                        const char *type, size_t len, int64_t ts) {
  float sign, one[SD_BEH_DIM] = {0};
  int b = sd_views_beh_bucket(type, len, &sign);
  one[b] = sign;
  decay_add(u->beh_sum, &u->beh_t, one, 1.0f, SD_BEH_DIM, ts,
            vc->half_life_ms);
  u->n_events++;
  seen(u, ts);
}

/* Normalises src (n floats) into dst scaled by s; 1 if src was non-zero. */
static int put_view(float *dst, const float *src, int n, float s) {
  float len = cblas_snrm2(n, src, 1);
  if (!(len > 0)) {
    memset(dst, 0, sizeof(float) * (size_t)n);
    return 0;
  }
  memcpy(dst, src, sizeof(float) * (size_t)n);
  cblas_sscal(n, s / len, dst, 1);
  return 1;
}

int sd_views_vector(const sd_views_conf *vc, const sd_user_state *u,
                    float *out) {
  double wsum = vc->w_text + vc->w_beh;
  int any = put_view(out, u->text_sum, vc->dim, (float)sqrt(vc->w_text / wsum));
  any |= put_view(out + vc->dim, u->beh_sum, SD_BEH_DIM,
                  (float)sqrt(vc->w_beh / wsum));
  int w = sd_views_width(vc);
  float len = cblas_snrm2(w, out, 1);
  if (!(len > 0)) return 0;
  cblas_sscal(w, 1.0f / len, out, 1);
  return any;
}
