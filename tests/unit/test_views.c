/* Unit tests of views.c: decay, composition, per-view contributions. */
#include "check.h"
#include "segmentd/views.h"

#include <math.h>

static float dot(const float *a, const float *b, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
  return (float)s;
}

int main(void) {
  enum { D = 8 };
  sd_views_conf vc = {D, 1000.0, 3.0, 1.0};
  float ts[D] = {0}, bs[SD_BEH_DIM] = {0}, x[D + SD_BEH_DIM];
  sd_user_state u = {.text_sum = ts, .beh_sum = bs};
  CHECK_INT(sd_views_width(&vc), D + SD_BEH_DIM);
  CHECK_INT(sd_views_vector(&vc, &u, x), 0); /* nothing yet */
  float e1[D] = {1, 0, 0, 0, 0, 0, 0, 0}, e2[D] = {0, 1, 0, 0, 0, 0, 0, 0};
  sd_views_add_text(&vc, &u, e1, 1000);
  sd_views_add_text(&vc, &u, e2, 2000); /* one half-life later */
  CHECK_NEAR(ts[0], 0.5, 1e-6);         /* the old one decayed */
  CHECK_NEAR(ts[1], 1.0, 1e-6);
  sd_views_add_text(&vc, &u, e2, 1000); /* out of order: decayed on entry */
  CHECK_NEAR(ts[1], 1.5, 1e-6);
  CHECK_INT(u.n_texts, 3);
  CHECK_INT(u.first_seen, 1000);
  CHECK_INT(u.last_seen, 2000);
  sd_views_add_event(&vc, &u, "buy", 3, 2000);
  sd_views_add_event(&vc, &u, "buy", 3, 2000);
  CHECK_INT(u.n_events, 2);
  float sign;
  int b = sd_views_beh_bucket("buy", 3, &sign);
  CHECK_NEAR(bs[b], 2 * sign, 1e-6);
  CHECK_INT(sd_views_vector(&vc, &u, x), 1);
  CHECK_NEAR(dot(x, x, D + SD_BEH_DIM), 1.0, 1e-5);
  /* the text view carries w_text / (w_text + w_beh) of the squared norm */
  CHECK_NEAR(dot(x, x, D), 0.75, 1e-5);
  CHECK_NEAR(dot(x + D, x + D, SD_BEH_DIM), 0.25, 1e-5);
  /* so x.c splits into text and behaviour contributions */
  float c[D + SD_BEH_DIM];
  for (int i = 0; i < D + SD_BEH_DIM; i++) c[i] = x[i];
  float total = dot(x, c, D + SD_BEH_DIM);
  CHECK_NEAR(total, dot(x, c, D) + dot(x + D, c + D, SD_BEH_DIM), 1e-6);
  /* a user with only events: the behaviour view is the whole vector */
  float ts2[D] = {0}, bs2[SD_BEH_DIM] = {0};
  sd_user_state v = {.text_sum = ts2, .beh_sum = bs2};
  sd_views_add_event(&vc, &v, "view", 4, 5);
  CHECK_INT(sd_views_vector(&vc, &v, x), 1);
  CHECK_NEAR(dot(x + D, x + D, SD_BEH_DIM), 1.0, 1e-5);
  return check_done("test_views");
}
