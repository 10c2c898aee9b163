/* Unit tests of views.c: decay, the four views, composition without bias
 * for missing views, per-view contributions, the behaviour TF-IDF. */
#include "check.h"
#include "segmentd/views.h"

#include <math.h>

enum { D = 8 };

static float dot(const float *a, const float *b, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
  return (float)s;
}

typedef struct {
  float text[D], beh[SD_BEH_DIM], time[SD_TIME_DIM], ctx[SD_CTX_DIM];
  sd_user_state u;
} user;

static void user_init(user *x) {
  memset(x, 0, sizeof(*x));
  x->u.text_sum = x->text, x->u.beh_sum = x->beh;
  x->u.time_sum = x->time, x->u.ctx_sum = x->ctx;
}

static void test_decay_and_counts(const sd_views_conf *vc) {
  user a;
  user_init(&a);
  float e1[D] = {1, 0, 0, 0, 0, 0, 0, 0}, e2[D] = {0, 1, 0, 0, 0, 0, 0, 0};
  sd_views_add_text(vc, &a.u, e1, 1000);
  sd_views_add_text(vc, &a.u, e2, 2000); /* one half-life later */
  CHECK_NEAR(a.text[0], 0.5, 1e-6);       /* the old one decayed */
  CHECK_NEAR(a.text[1], 1.0, 1e-6);
  sd_views_add_text(vc, &a.u, e2, 1000); /* out of order: decayed on entry */
  CHECK_NEAR(a.text[1], 1.5, 1e-6);
  CHECK_INT(a.u.n_texts, 3);
  CHECK_INT(a.u.first_seen, 1000);
  CHECK_INT(a.u.last_seen, 2000);
  sd_views_add_event(vc, &a.u, "buy", 3, 2000);
  sd_views_add_event(vc, &a.u, "buy", 3, 2000);
  CHECK_INT(a.u.n_events, 2);
  float sign;
  int b = sd_views_beh_bucket("buy", 3, &sign);
  CHECK_NEAR(a.beh[b], 2 * sign, 1e-6);
  sd_views_add_context(vc, &a.u, "device=ios", 10, 2000);
  b = sd_views_ctx_bucket("device=ios", 10, &sign);
  CHECK_NEAR(a.ctx[b], sign, 1e-6);
}

static void test_time_view(const sd_views_conf *vc) {
  user a;
  user_init(&a);
  /* 2026-11-27 (a Friday) 21:30 UTC, epoch ms */
  int64_t ts = 1795815000000LL;
  sd_views_add_event(vc, &a.u, "view", 4, ts);
  CHECK_NEAR(a.time[21], 1.0, 1e-6);      /* hour 21 */
  CHECK_NEAR(a.time[24 + 4], 1.0, 1e-6);  /* Fri */
  CHECK_STR(sd_views_time_name(21), "21:00 UTC");
  CHECK_STR(sd_views_time_name(28), "Fri");
  CHECK_NEAR(a.time[31], 0.0, 1e-6);      /* no previous activity yet */
  sd_views_add_event(vc, &a.u, "view", 4, ts + 60000); /* a minute later */
  CHECK(a.time[31] > 0.9);                /* high cadence */
}

static void test_composition(const sd_views_conf *vc) {
  user a;
  user_init(&a);
  float e[D] = {1, 2, 0, 0, 0, 0, 0, 0};
  sd_views_add_text(vc, &a.u, e, 5000);
  sd_views_add_event(vc, &a.u, "buy", 3, 5000);
  sd_views_add_context(vc, &a.u, "plan=pro", 8, 5000);
  int w = sd_views_width(vc);
  CHECK_INT(w, D + SD_BEH_DIM + SD_TIME_DIM + SD_CTX_DIM);
  float x[D + SD_BEH_DIM + SD_TIME_DIM + SD_CTX_DIM];
  CHECK_INT(sd_views_vector(vc, &a.u, x), 1);
  CHECK_NEAR(dot(x, x, w), 1.0, 1e-5);
  /* each view holds its weight's share of the squared norm: 3, 1, .5, .5 */
  double shares[SD_VIEWS] = {3.0 / 5, 1.0 / 5, 0.5 / 5, 0.5 / 5};
  for (int v = 0; v < SD_VIEWS; v++) {
    int off = sd_views_offset(vc, v), n = sd_views_len(vc, v);
    CHECK_NEAR(dot(x + off, x + off, n), shares[v], 1e-5);
  }
  /* so x.c splits exactly into per-view contributions */
  float c[D + SD_BEH_DIM + SD_TIME_DIM + SD_CTX_DIM];
  for (int i = 0; i < w; i++) c[i] = (float)((i * 37) % 11) / 11.0f;
  float parts = 0;
  for (int v = 0; v < SD_VIEWS; v++) {
    int off = sd_views_offset(vc, v), n = sd_views_len(vc, v);
    parts += dot(x + off, c + off, n);
  }
  CHECK_NEAR(parts, dot(x, c, w), 1e-5);
}

/* A missing view is left out of the weights: the present ones keep unit
 * norm between them, and identical present views score cosine 1. */
static void test_missing_views(const sd_views_conf *vc) {
  user a, b;
  user_init(&a), user_init(&b);
  sd_views_add_event(vc, &a.u, "buy", 3, 10);
  sd_views_add_event(vc, &b.u, "buy", 3, 10);
  float e[D] = {0, 0, 1, 0, 0, 0, 0, 0};
  sd_views_add_text(vc, &b.u, e, 10); /* b also wrote */
  int w = sd_views_width(vc);
  float xa[D + SD_BEH_DIM + SD_TIME_DIM + SD_CTX_DIM], xb[sizeof(xa) / sizeof(float)];
  CHECK_INT(sd_views_vector(vc, &a.u, xa), 1);
  CHECK_INT(sd_views_vector(vc, &b.u, xb), 1);
  CHECK_NEAR(dot(xa, xa, w), 1.0, 1e-5); /* no text: still a unit vector */
  int t = sd_views_offset(vc, SD_VIEW_TEXT);
  CHECK_NEAR(dot(xa + t, xa + t, D), 0.0, 0);
  user none;
  user_init(&none);
  CHECK_INT(sd_views_vector(vc, &none.u, xa), 0);
}

static void test_behaviour_idf(void) {
  float idf[SD_BEH_DIM];
  for (int i = 0; i < SD_BEH_DIM; i++) idf[i] = 1.0f;
  float s1, s2;
  int common = sd_views_beh_bucket("view", 4, &s1);
  int rare = sd_views_beh_bucket("refund", 6, &s2);
  CHECK(common != rare);
  idf[common] = 0.1f; /* "view" is everywhere: it says little */
  sd_views_conf vc = {D, 1000.0, 0, 1, 0, 0, idf};
  user a;
  user_init(&a);
  sd_views_add_event(&vc, &a.u, "view", 4, 1);
  sd_views_add_event(&vc, &a.u, "refund", 6, 1);
  float x[D + SD_BEH_DIM + SD_TIME_DIM + SD_CTX_DIM];
  CHECK_INT(sd_views_vector(&vc, &a.u, x), 1);
  int off = sd_views_offset(&vc, SD_VIEW_BEH);
  CHECK(fabsf(x[off + rare]) > 5 * fabsf(x[off + common]));
}

int main(void) {
  sd_views_conf vc = {D, 1000.0, 3.0, 1.0, 0.5, 0.5, NULL};
  test_decay_and_counts(&vc);
  test_time_view(&vc);
  test_composition(&vc);
  test_missing_views(&vc);
  test_behaviour_idf();
  return check_done("test_views");
}
