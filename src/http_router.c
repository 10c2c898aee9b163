/*
 * http_router.c -- the routing table: method + path pattern -> handler.
 * Patterns are '/'-separated; "{}" matches one non-empty segment and
 * becomes a path parameter. A path that matches with another method gets
 * 405 and the Allow list; no match at all gets 404.
 */
#include "handlers.h"
#include "segmentd/err.h"
#include "segmentd/snapshot.h"

#include <stdio.h>
#include <string.h>

typedef struct {
  const char *method, *pattern;
  sd_handler fn;
} route;

static const route routes[] = {
    {"GET", "/healthz", h_healthz},
    {"GET", "/readyz", h_readyz},
    {"GET", "/v1/info", h_info},
    {"GET", "/metrics", h_metrics},
    {"GET", "/v1/drift", h_drift},
    {"GET", "/v1/alerts", h_alerts},
    {"POST", "/v1/events", h_events},
    {"POST", "/v1/texts", h_texts},
    {"GET", "/v1/users/{}", h_user},
    {"DELETE", "/v1/users/{}", h_user_delete},
    {"GET", "/v1/users/{}/segment", h_user_segment},
    {"POST", "/v1/segments/lookup", h_segments_lookup},
    {"POST", "/v1/assign", h_assign},
    {"GET", "/v1/spaces", h_spaces},
    {"GET", "/v1/spaces/{}/clusters", h_clusters},
    {"GET", "/v1/spaces/{}/clusters/{}", h_cluster},
    {"GET", "/v1/spaces/{}/clusters/{}/members", h_cluster_members},
    {"GET", "/v1/spaces/{}/map", h_map},
    {"PATCH", "/v1/spaces/{}/clusters/{}", h_cluster_patch},
    {"GET", "/v1/spaces/{}/assignments", h_assignments},
    {"POST", "/v1/spaces/{}/recluster", h_recluster},
    {"GET", "/v1/spaces/{}/events", h_lineage},
    {"POST", "/v1/spaces/{}/evaluate", h_evaluate},
    {"GET", "/v1/jobs/{}", h_job},
};

#define MAX_SEGS 16

/* Splits "/a/b/c" in place into segments; -1 if not absolute or too deep. */
static int split(char *s, char **seg) {
  if (*s != '/') return -1;
  int n = 0;
  char *p = s + 1;
  for (;;) {
    if (n == MAX_SEGS) return -1;
    seg[n++] = p;
    char *e = strchr(p, '/');
    if (!e) return n;
    *e = 0;
    p = e + 1;
  }
}

/* Does the pattern match these path segments? Fills params. */
static int route_match(const char *pattern, char **seg, int nseg,
                       const char **params, int *np) {
  char buf[128], *pseg[MAX_SEGS];
  snprintf(buf, sizeof(buf), "%s", pattern);
  int n = split(buf, pseg);
  if (n != nseg) return 0;
  *np = 0;
  for (int i = 0; i < n; i++) {
    if (!strcmp(pseg[i], "{}")) {
      if (!seg[i][0] || *np == SD_MAX_PARAMS) return 0;
      params[(*np)++] = seg[i];
    } else if (strcmp(pseg[i], seg[i]) != 0) {
      return 0;
    }
  }
  return 1;
}

sd_handler sd_route(sd_req *req, sd_reply *rep) {
  static _Thread_local char scratch[8192];
  static _Thread_local char allow[64];
  char *seg[MAX_SEGS];
  const char *params[SD_MAX_PARAMS];
  int n, nseg = -1;
  if (strlen(req->path) < sizeof(scratch)) {
    memcpy(scratch, req->path, strlen(req->path) + 1);
    nseg = split(scratch, seg);
  }
  /* HEAD is GET without a body (libmicrohttpd drops the body) */
  const char *method = strcmp(req->method, "HEAD") ? req->method : "GET";
  allow[0] = 0;
  req->route = -1;
  for (size_t i = 0; nseg > 0 && i < sizeof(routes) / sizeof(routes[0]); i++) {
    const route *r = &routes[i];
    if (!route_match(r->pattern, seg, nseg, params, &n)) continue;
    if (!strcmp(r->method, method)) {
      memcpy(req->params, params, sizeof(params));
      req->n_params = n;
      req->route = (int)i;
      return r->fn;
    }
    if (!strstr(allow, r->method)) {
      size_t l = strlen(allow);
      snprintf(allow + l, sizeof(allow) - l, "%s%s%s", l ? ", " : "", r->method,
               strcmp(r->method, "GET") ? "" : ", HEAD");
    }
  }
  if (allow[0]) {
    rep->allow = allow;
    sd_reply_error(rep, SD_EMETHOD, NULL, NULL);
  } else {
    sd_reply_error(rep, SD_ENOTFOUND, "no such route", NULL);
  }
  return NULL;
}

int sd_route_count(void) { return (int)(sizeof(routes) / sizeof(routes[0])); }

const char *sd_route_method(int i) {
  return i >= 0 && i < sd_route_count() ? routes[i].method : "";
}

const char *sd_route_pattern(int i) {
  return i >= 0 && i < sd_route_count() ? routes[i].pattern : "unmatched";
}
