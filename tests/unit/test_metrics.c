/* Unit tests of metrics_text.c and metrics_record.c: label escaping,
 * histograms (cumulative buckets, sum, count), request slots by route
 * pattern, and the router's table fitting the request table. */
#include "check.h"
#include "metrics_int.h"
#include "segmentd/http.h"
#include "segmentd/ingest.h"
#include "segmentd/metrics.h"

#include <stdlib.h>

static const double LE[] = {0.1, 1, 10};
static const mhist_spec SPEC = {LE, 3, 1e9};

static char *render(void (*fn)(mbuf *, void *), void *arg) {
  mbuf b = {malloc(16), 0, 16, 0}; /* small: exercises growth */
  fn(&b, arg);
  CHECK(!b.oom);
  return b.p;
}

static void one_hist(mbuf *b, void *h) {
  mh_render(b, "x_seconds", "a=\"1\"", h, &SPEC);
}

static void recorded(mbuf *b, void *unused) {
  (void)unused;
  metrics_render_recorded(b);
}

int main(void) {
  char labels[128];
  const char *keys[] = {"route", "space"};
  const char *vals[] = {"/v1/users/{}/segment", "a\"b\\c\nd"};
  mt_labels(labels, sizeof(labels), keys, vals, 2);
  CHECK_STR(labels, "route=\"/v1/users/{}/segment\",space=\"a\\\"b\\\\c\\nd\"");

  mhist h;
  memset(&h, 0, sizeof(h));
  mh_observe(&h, &SPEC, 0.05);
  mh_observe(&h, &SPEC, 0.1); /* on the bound: le="0.1" */
  mh_observe(&h, &SPEC, 5);
  mh_observe(&h, &SPEC, 50);
  CHECK_INT(mh_count(&h, &SPEC), 4);
  char *text = render(one_hist, &h);
  CHECK(strstr(text, "x_seconds_bucket{a=\"1\",le=\"0.1\"} 2\n"
                     "x_seconds_bucket{a=\"1\",le=\"1\"} 2\n"
                     "x_seconds_bucket{a=\"1\",le=\"10\"} 3\n"
                     "x_seconds_bucket{a=\"1\",le=\"+Inf\"} 4\n"
                     "x_seconds_sum{a=\"1\"} 55.149999999999999\n"
                     "x_seconds_count{a=\"1\"} 4\n") != NULL);
  free(text);

  CHECK(sd_route_count() <= SD_METRICS_MAX_ROUTES);
  sd_req req;
  sd_reply rep;
  memset(&req, 0, sizeof(req));
  memset(&rep, 0, sizeof(rep));
  req.method = "GET";
  req.path = "/v1/users/u-9/segment";
  CHECK(sd_route(&req, &rep) != NULL);
  CHECK_STR(sd_route_pattern(req.route), "/v1/users/{}/segment");
  CHECK_STR(sd_route_method(req.route), "GET");
  for (int i = 0; i < 3; i++) sd_metrics_request(req.route, "GET", 200, 0.002);
  sd_metrics_request(-1, "BREW", 404, 0.001);
  sd_metrics_ingest(SD_BATCH_TEXTS, 7, 2);
  sd_metrics_queue_full();
  text = render(recorded, NULL);
  CHECK(strstr(text, "segmentd_http_requests_total{method=\"GET\",route=\""
                     "/v1/users/{}/segment\",code=\"200\"} 3\n") != NULL);
  CHECK(strstr(text, "segmentd_http_requests_total{method=\"other\",route=\""
                     "unmatched\",code=\"404\"} 1\n") != NULL);
  CHECK(strstr(text, "u-9") == NULL);
  CHECK(strstr(text, "segmentd_ingest_items_total{kind=\"texts\",result="
                     "\"accepted\"} 7\n") != NULL);
  CHECK(strstr(text, "segmentd_ingest_items_total{kind=\"texts\",result="
                     "\"duplicate\"} 2\n") != NULL);
  CHECK(strstr(text, "segmentd_ingest_batch_items_bucket{kind=\"texts\","
                     "le=\"10\"} 1\n") != NULL);
  CHECK(strstr(text, "segmentd_writer_queue_full_total 1\n") != NULL);
  free(text);
  return check_done("test_metrics");
}
