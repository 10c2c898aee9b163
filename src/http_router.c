/*
 * http_router.c -- the routing table: method + path pattern -> handler.
 * Patterns are '/'-separated; "{}" matches one non-empty segment and
 * becomes a path parameter. A path that matches with another method gets
 * 405 and the Allow list; no match at all gets 404. Each route's scope
 * column says which API key scope it needs (auth.h); a miss under /v1
 * needs any known key before it is told 404 or 405.
 */
#include "handlers.h"
#include "segmentd/auth.h"
#include "segmentd/err.h"
#include "segmentd/snapshot.h"

#include <stdio.h>
#include <string.h>

/* Every row names what it needs (auth.h, sd_access): a row without it
 * does not compile (-Wmissing-field-initializers under -Werror), and the
 * scopes are documented in the README's "Auth" section. */
typedef struct {
  const char *method, *pattern;
  sd_handler fn;
  sd_access access;
} route;

static const route routes[] = {
    {"GET", "/healthz", h_healthz, SD_ACCESS_PROBE},
    {"GET", "/readyz", h_readyz, SD_ACCESS_PROBE},
    {"GET", "/v1/info", h_info, SD_ACCESS_READ},
    {"GET", "/metrics", h_metrics, SD_ACCESS_METRICS},
    {"GET", "/v1/drift", h_drift, SD_ACCESS_READ},
    {"GET", "/v1/alerts", h_alerts, SD_ACCESS_READ},
    {"POST", "/v1/events", h_events, SD_ACCESS_INGEST},
    {"POST", "/v1/texts", h_texts, SD_ACCESS_INGEST},
    {"GET", "/v1/users/{}", h_user, SD_ACCESS_READ},
    {"DELETE", "/v1/users/{}", h_user_delete, SD_ACCESS_ADMIN},
    {"GET", "/v1/users/{}/segment", h_user_segment, SD_ACCESS_READ},
    {"POST", "/v1/segments/lookup", h_segments_lookup, SD_ACCESS_READ},
    {"POST", "/v1/assign", h_assign, SD_ACCESS_READ},
    {"GET", "/v1/spaces", h_spaces, SD_ACCESS_READ},
    {"GET", "/v1/spaces/{}/clusters", h_clusters, SD_ACCESS_READ},
    {"GET", "/v1/spaces/{}/clusters/{}", h_cluster, SD_ACCESS_READ},
    {"GET", "/v1/spaces/{}/clusters/{}/members", h_cluster_members, SD_ACCESS_READ},
    {"GET", "/v1/spaces/{}/map", h_map, SD_ACCESS_READ},
    {"PATCH", "/v1/spaces/{}/clusters/{}", h_cluster_patch, SD_ACCESS_ADMIN},
    {"GET", "/v1/spaces/{}/assignments", h_assignments, SD_ACCESS_READ},
    {"POST", "/v1/spaces/{}/recluster", h_recluster, SD_ACCESS_ADMIN},
    {"GET", "/v1/spaces/{}/events", h_lineage, SD_ACCESS_READ},
    {"POST", "/v1/spaces/{}/evaluate", h_evaluate, SD_ACCESS_ADMIN},
    {"GET", "/v1/spaces/{}/drift/baseline", h_drift_baseline, SD_ACCESS_READ},
    {"POST", "/v1/spaces/{}/drift/baseline", h_drift_baseline_pin, SD_ACCESS_ADMIN},
    {"GET", "/v1/jobs/{}", h_job, SD_ACCESS_READ},
    {"GET", "/v1/spaces/segments/outcomes", h_outcomes, SD_ACCESS_READ},
    {"POST", "/v1/experiments", h_experiment_create, SD_ACCESS_ADMIN},
    {"GET", "/v1/experiments", h_experiments_list, SD_ACCESS_READ},
    {"GET", "/v1/experiments/{}", h_experiment_get, SD_ACCESS_READ},
    {"DELETE", "/v1/experiments/{}", h_experiment_delete, SD_ACCESS_ADMIN},
    {"GET", "/v1/experiments/{}/assignment/{}", h_experiment_assignment, SD_ACCESS_READ},
    {"GET", "/v1/experiments/{}/results", h_experiment_results, SD_ACCESS_READ},
    {"GET", "/", h_dashboard, SD_ACCESS_OPEN},
    {"GET", "/assets/{}", h_asset, SD_ACCESS_OPEN},
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

/* Does the pattern match these path segments? Fills params. Walks the
 * pattern in place (no copy: this runs for every route of every request). */
static int route_match(const char *pattern, char **seg, int nseg,
                       const char **params, int *np) {
  const char *p = pattern;
  if (*p++ != '/') return 0;
  *np = 0;
  for (int i = 0; i < nseg; i++) {
    size_t len = strcspn(p, "/");
    if (len == 2 && p[0] == '{' && p[1] == '}') {
      if (!seg[i][0] || *np == SD_MAX_PARAMS) return 0;
      params[(*np)++] = seg[i];
    } else if (strncmp(p, seg[i], len) != 0 || seg[i][len] != 0) {
      return 0;
    }
    p += len;
    if (i + 1 < nseg && *p++ != '/') return 0;
  }
  return *p == 0;
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
      req->access = r->access;
      req->route = (int)i;
      return r->fn;
    }
    if (!strstr(allow, r->method)) {
      size_t l = strlen(allow);
      snprintf(allow + l, sizeof(allow) - l, "%s%s%s", l ? ", " : "", r->method,
               strcmp(r->method, "GET") ? "" : ", HEAD");
    }
  }
  req->access = !strncmp(req->path, "/v1/", 4) || !strcmp(req->path, "/v1")
                    ? SD_ACCESS_ANY_KEY
                    : SD_ACCESS_OPEN;
  if (allow[0]) {
    rep->allow = allow;
    sd_reply_error(rep, SD_EMETHOD, NULL, NULL);
  } else {
    sd_reply_error(rep, SD_ENOTFOUND, "no such route", NULL);
  }
  return NULL;
}

int sd_route_count(void) { return (int)(sizeof(routes) / sizeof(routes[0])); }

int sd_route_get(size_t i, const char **method, const char **pattern,
                 int *access) {
  if (i >= (size_t)sd_route_count()) return SD_EINVAL;
  *method = routes[i].method;
  *pattern = routes[i].pattern;
  *access = (int)routes[i].access;
  return 0;
}

const char *sd_route_method(int i) {
  return i >= 0 && i < sd_route_count() ? routes[i].method : "";
}

const char *sd_route_pattern(int i) {
  return i >= 0 && i < sd_route_count() ? routes[i].pattern : "unmatched";
}
