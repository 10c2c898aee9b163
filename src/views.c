/* views.c -- decayed per-user views and their composition (see views.h). */
#include "segmentd/views.h"
#include "segmentd/tokenize.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#define CADENCE 31 /* the time view's last coordinate */

int sd_views_len(const sd_views_conf *vc, int view) {
  static const int fixed[SD_VIEWS] = {0, SD_BEH_DIM, SD_TIME_DIM, SD_CTX_DIM};
  return view == SD_VIEW_TEXT ? vc->dim : fixed[view];
}

int sd_views_offset(const sd_views_conf *vc, int view) {
  int off = 0;
  for (int v = 0; v < view; v++) off += sd_views_len(vc, v);
  return off;
}

int sd_views_width(const sd_views_conf *vc) {
  return sd_views_offset(vc, SD_VIEWS);
}

const char *sd_views_name(int view) {
  static const char *const names[SD_VIEWS] = {"text", "behaviour", "time",
                                              "context"};
  return names[view];
}

const char *sd_views_time_name(int i) {
  static const char *const hours[24] = {
      "00:00 UTC", "01:00 UTC", "02:00 UTC", "03:00 UTC", "04:00 UTC",
      "05:00 UTC", "06:00 UTC", "07:00 UTC", "08:00 UTC", "09:00 UTC",
      "10:00 UTC", "11:00 UTC", "12:00 UTC", "13:00 UTC", "14:00 UTC",
      "15:00 UTC", "16:00 UTC", "17:00 UTC", "18:00 UTC", "19:00 UTC",
      "20:00 UTC", "21:00 UTC", "22:00 UTC", "23:00 UTC"};
  static const char *const days[7] = {"Mon", "Tue", "Wed", "Thu",
                                      "Fri", "Sat", "Sun"};
  if (i < 24) return hours[i];
  if (i < 31) return days[i - 24];
  return "cadence";
}

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
  if (x) cblas_saxpy(n, xs, x, 1, acc, 1);
}

static void seen(sd_user_state *u, int64_t ts) {
  if (!u->first_seen || ts < u->first_seen) u->first_seen = ts;
  if (ts > u->last_seen) u->last_seen = ts;
}

/* Activity at ts: its hour and weekday, and how soon after the previous
 * activity it came (1 within minutes, falling to ~0 after a month). */
static void add_activity(const sd_views_conf *vc, sd_user_state *u, int64_t ts) {
  float one[SD_TIME_DIM] = {0};
  int64_t hours = ts / 3600000, days = ts / 86400000;
  one[hours % 24] = 1.0f;
  one[24 + (days + 3) % 7] = 1.0f; /* 1970-01-01 was a Thursday */
  if (u->last_act && ts > u->last_act) {
    double gap_h = (double)(ts - u->last_act) / 3600e3;
    one[CADENCE] = (float)(1.0 / (1.0 + log1p(gap_h)));
  }
  if (ts > u->last_act) u->last_act = ts;
  decay_add(u->time_sum, &u->time_t, one, 1.0f, SD_TIME_DIM, ts, vc->half_life_ms);
}

void sd_views_add_text_vec(const sd_views_conf *vc, sd_user_state *u,
                           const float *emb, int64_t ts) {
  decay_add(u->text_sum, &u->text_t, emb, 1.0f, vc->dim, ts, vc->half_life_ms);
}

void sd_views_add_text(const sd_views_conf *vc, sd_user_state *u,
                       const float *emb, int64_t ts) {
  if (emb) sd_views_add_text_vec(vc, u, emb, ts);
  add_activity(vc, u, ts);
  u->n_texts++;
  seen(u, ts);
}

static int signed_bucket(const char *s, size_t len, uint64_t seed, int width,
                         float *sign) {
  uint64_t h = sd_hash64(s, len, seed);
  *sign = (h >> 63) ? -1.0f : 1.0f;
  return (int)(h % (uint64_t)width);
}

int sd_views_beh_bucket(const char *type, size_t len, float *sign) {
  return signed_bucket(type, len, 0xbe4a, SD_BEH_DIM, sign);
}

int sd_views_ctx_bucket(const char *kv, size_t len, float *sign) {
  return signed_bucket(kv, len, 0xc0c7, SD_CTX_DIM, sign);
}

void sd_views_add_event(const sd_views_conf *vc, sd_user_state *u,
                        const char *type, size_t len, int64_t ts) {
  float sign, one[SD_BEH_DIM] = {0};
  int b = sd_views_beh_bucket(type, len, &sign); /* sets sign first */
  one[b] = sign;
  decay_add(u->beh_sum, &u->beh_t, one, 1.0f, SD_BEH_DIM, ts, vc->half_life_ms);
  add_activity(vc, u, ts);
  u->n_events++;
  seen(u, ts);
}

void sd_views_add_context(const sd_views_conf *vc, sd_user_state *u,
                          const char *kv, size_t len, int64_t ts) {
  float sign, one[SD_CTX_DIM] = {0};
  int b = sd_views_ctx_bucket(kv, len, &sign); /* sets sign first */
  one[b] = sign;
  decay_add(u->ctx_sum, &u->ctx_t, one, 1.0f, SD_CTX_DIM, ts, vc->half_life_ms);
}

/* The behaviour counts weighted by inverse global frequency (TF-IDF). */
static const float *beh_weighted(const sd_views_conf *vc, const float *src,
                                 float *tmp) {
  if (!vc->beh_idf) return src;
  for (int i = 0; i < SD_BEH_DIM; i++) tmp[i] = src[i] * vc->beh_idf[i];
  return tmp;
}

int sd_views_vector(const sd_views_conf *vc, const sd_user_state *u,
                    float *out) {
  float tmp[SD_BEH_DIM];
  const float *src[SD_VIEWS] = {u->text_sum, beh_weighted(vc, u->beh_sum, tmp),
                                u->time_sum, u->ctx_sum};
  const int64_t t[SD_VIEWS] = {u->text_t, u->beh_t, u->time_t, u->ctx_t};
  const double w[SD_VIEWS] = {vc->w_text, vc->w_beh, vc->w_time, vc->w_ctx};
  float len[SD_VIEWS];
  double wsum = 0;
  for (int v = 0; v < SD_VIEWS; v++) {
    int n = sd_views_len(vc, v);
    len[v] = t[v] && src[v] ? cblas_snrm2(n, src[v], 1) : 0.0f;
    if (len[v] > 0 && w[v] > 0) wsum += w[v];
  }
  memset(out, 0, sizeof(float) * (size_t)sd_views_width(vc));
  if (!(wsum > 0)) return 0;
  for (int v = 0; v < SD_VIEWS; v++) {
    if (!(len[v] > 0) || !(w[v] > 0)) continue; /* a missing view: no bias */
    int n = sd_views_len(vc, v), off = sd_views_offset(vc, v);
    cblas_saxpy(n, (float)sqrt(w[v] / wsum) / len[v], src[v], 1, out + off, 1);
  }
  return 1;
}
