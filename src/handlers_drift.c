/* handlers_drift.c -- GET /v1/drift[?refresh=true], GET /v1/alerts. */
#include "handlers.h"

#include "segmentd/err.h"
#include "segmentd/timeutil.h"
#include "segmentd/watch.h"

#include <stdio.h>
#include <string.h>

#define ALERTS_DEFAULT 100
#define ALERTS_MAX 1000

int h_drift(sd_req *req, sd_reply *rep) {
  const char *refresh = sd_req_query(req, "refresh");
  if (refresh && strcmp(refresh, "true") && strcmp(refresh, "false"))
    return sd_reply_error(rep, SD_EINVAL, "refresh must be true or false", NULL);
  if (!req->watch) return sd_reply_error(rep, SD_ENOTREADY, NULL, NULL);
  if (refresh && !strcmp(refresh, "true")) {
    int rc = sd_watch_check(req->watch);
    if (rc < 0) return sd_reply_error(rep, rc, "the drift check failed", NULL);
  }
  return sd_reply_json(rep, 200, sd_watch_json(req->watch));
}

/* since: RFC 3339 or epoch milliseconds; absent: the beginning. */
static int since_of(const char *s, int64_t *ms) {
  long long v;
  *ms = 0;
  if (!s) return 0;
  if (h_query_int(s, 0, INT64_MAX, 0, &v) == 0) {
    *ms = v;
    return 0;
  }
  return sd_time_parse(s, strlen(s), ms) == 0 ? 0 : -1;
}

int h_alerts(sd_req *req, sd_reply *rep) {
  int64_t since, next;
  long long limit, cursor;
  if (since_of(sd_req_query(req, "since"), &since) < 0)
    return sd_reply_error(rep, SD_EINVAL, "since must be an RFC 3339 time or "
                          "epoch milliseconds", NULL);
  if (h_query_int(sd_req_query(req, "limit"), 1, ALERTS_MAX, ALERTS_DEFAULT,
                  &limit) < 0)
    return sd_reply_error(rep, SD_EINVAL, "limit must be an integer 1..1000",
                          NULL);
  if (h_query_int(sd_req_query(req, "cursor"), 1, INT64_MAX, 0, &cursor) < 0)
    return sd_reply_error(rep, SD_EINVAL,
                          "cursor must be a next_cursor of this route", NULL);
  json_t *a = sd_watch_alerts_json(since, cursor, (int)limit, &next);
  if (!a) return sd_reply_error(rep, SD_EDB, NULL, NULL);
  json_t *o = json_pack("{s:o}", "alerts", a);
  if (o && next > 0) {
    char c[24];
    snprintf(c, sizeof(c), "%lld", (long long)next);
    json_object_set_new(o, "next_cursor", json_string(c));
  }
  return sd_reply_json(rep, 200, o);
}
