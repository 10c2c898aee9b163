/*
 * test_auth_http.c -- API keys and scopes (README "Auth", docs/API.md).
 *
 * The matrix is generated from the server's own route table (`segmentd
 * routes`), so a new route is covered as soon as it exists: every route x
 * {no key, unknown key, malformed header, ingest key, read key, admin
 * key}. Each route's scope is first checked against the rules written
 * here independently (POST events/texts ingest; GETs, lookup and assign
 * read; PATCH, DELETE, recluster, evaluate and pinning a drift baseline
 * admin; /healthz and /readyz
 * open; /metrics as --metrics-scope), so a route given a surprising scope,
 * or one these rules do not cover, fails the test. Then: 401 carries
 * WWW-Authenticate and the JSON error, 403 likewise, unknown /v1 paths
 * need a key before 404/405, keys come from a file (with comments) and
 * from SEGMENTD_API_KEYS, a bad key file stops the start without echoing
 * the key, no key ever reaches the log, /v1/info tells whether auth is on,
 * and /metrics follows --metrics-scope.
 */
#include "check.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define K_INGEST "ingest-key-0123456789abcdef"
#define K_READ "read-key-0123456789abcdef"
#define K_ADMIN "admin-key-0123456789abcdef"
#define K_ALL "all-scopes-key-0123456789abcdef"
#define K_ENV "env-read-key-0123456789abcdef"
#define K_UNKNOWN "unknown-key-0123456789abcdef"

enum { C_NONE, C_UNKNOWN, C_MALFORMED, C_INGEST, C_READ, C_ADMIN, C_N };
static const char *const cred_name[C_N] = {"no key", "unknown key",
                                           "malformed", "ingest", "read",
                                           "admin"};
static const char *const cred_hdr[C_N] = {
    NULL, "Authorization: Bearer " K_UNKNOWN,
    "Authorization: Basic cmVhZDpzZWNyZXQ=",
    "Authorization: Bearer " K_INGEST, "Authorization: Bearer " K_READ,
    "Authorization: Bearer " K_ADMIN};

typedef struct {
  char method[8], pattern[128], access[16];
} route_row;

static int ends_with(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);
  return n >= m && !strcmp(s + n - m, suf);
}

/* The scope a route should need, by the documented rules; NULL when no
 * rule covers it (a new kind of route: extend the rules and the README). */
static const char *expected_access(const char *m, const char *p) {
  if (!strcmp(p, "/healthz") || !strcmp(p, "/readyz")) return "probe";
  if (!strcmp(p, "/metrics")) return "metrics";
  if (!strcmp(m, "POST") && (!strcmp(p, "/v1/events") || !strcmp(p, "/v1/texts")))
    return "ingest";
  if (!strcmp(m, "PATCH") || !strcmp(m, "DELETE")) return "admin";
  if (!strcmp(m, "POST") && (ends_with(p, "/recluster") || ends_with(p, "/evaluate") ||
                             ends_with(p, "/drift/baseline") ||
                             !strcmp(p, "/v1/experiments")))
    return "admin"; /* changing models and drift baselines, defining experiments */
  if (!strncmp(p, "/v1/", 4) && (!strcmp(m, "GET") || !strcmp(p, "/v1/segments/lookup") ||
                                 !strcmp(p, "/v1/assign")))
    return "read";
  if (!strcmp(m, "GET") && strncmp(p, "/v1", 3) != 0) return "open"; /* dashboard */
  return NULL;
}

/* Reads `segmentd routes`; the number of rows. */
static size_t load_routes(route_row *rows, size_t cap) {
  char cmd[1200], out[16384];
  snprintf(cmd, sizeof cmd, "'%s' routes", getenv("SD_BIN"));
  CHECK_INT(run_capture(cmd, out, sizeof out), 0);
  size_t n = 0;
  for (char *line = strtok(out, "\n"); line && n < cap; line = strtok(NULL, "\n"))
    if (sscanf(line, "%7s %127s %15s", rows[n].method, rows[n].pattern,
               rows[n].access) == 3)
      n++;
  return n;
}

/* A concrete path for a pattern: each "{}" by what the segment before names. */
static void fill_path(const char *pattern, char *out, size_t cap) {
  char prev[64] = "";
  size_t o = 0;
  out[0] = 0;
  for (const char *p = pattern; *p && o + 16 < cap;) {
    if (p[0] == '{' && p[1] == '}') {
      const char *v = !strcmp(prev, "spaces") ? "intents"
                      : !strcmp(prev, "clusters") || !strcmp(prev, "jobs") ? "0"
                                                                           : "auth-u";
      o += (size_t)snprintf(out + o, cap - o, "%s", v);
      p += 2;
      continue;
    }
    if (*p == '/') {
      const char *e = strchr(p + 1, '/');
      size_t l = e ? (size_t)(e - p - 1) : strlen(p + 1);
      snprintf(prev, sizeof prev, "%.*s", (int)l, p + 1);
    }
    out[o++] = *p++;
    out[o] = 0;
  }
}

static http_resp call(sd_server *srv, const route_row *r, const char *path,
                      const char *hdr) {
  const char *h[] = {hdr, NULL};
  int body = strcmp(r->method, "GET") != 0 && strcmp(r->method, "DELETE") != 0;
  return http_req_hdrs(srv, r->method, path, body ? "application/json" : NULL,
                       body ? "{}" : NULL, body ? 2 : 0, hdr ? h : NULL);
}

static int json_code_is(const http_resp *r, const char *code) {
  json_t *j = json_loads(r->body, 0, NULL);
  int ok = j && check_error_body(j, code);
  json_decref(j);
  return ok;
}

/* One cell of the matrix: the status must match what the scope says. */
static void check_cell(sd_server *srv, const route_row *r, int cred,
                       const char *need) {
  char path[256];
  fill_path(r->pattern, path, sizeof path);
  http_resp resp = call(srv, r, path, cred_hdr[cred]);
  int open = !strcmp(need, "probe") || !strcmp(need, "open");
  int scope_bit = !strcmp(need, "ingest") ? C_INGEST
                  : !strcmp(need, "read") ? C_READ : C_ADMIN;
  int want_401 = !open && cred <= C_MALFORMED;
  int want_403 = !open && cred > C_MALFORMED && cred != scope_bit;
  long s = resp.status;
  int ok = want_401 ? s == 401 && !strncmp(resp.www_authenticate, "Bearer", 6) &&
                          json_code_is(&resp, "unauthorized")
           : want_403 ? s == 403 && json_code_is(&resp, "forbidden")
                      : s != 401 && s != 403 && s > 0 && s < 500;
  if (!ok)
    fprintf(stderr, "auth matrix: %s %s with %s (needs %s) -> %ld %s %.200s\n",
            r->method, path, cred_name[cred], need, s, resp.www_authenticate,
            resp.body);
  CHECK(ok);
  http_resp_free(&resp);
}

static void test_matrix(sd_server *srv, const route_row *rows, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const char *want = expected_access(rows[i].method, rows[i].pattern);
    if (!want || strcmp(want, rows[i].access) != 0)
      fprintf(stderr, "route %s %s has scope %s, the rules say %s\n",
              rows[i].method, rows[i].pattern, rows[i].access,
              want ? want : "(no rule)");
    CHECK(want && !strcmp(want, rows[i].access));
    const char *need = !strcmp(rows[i].access, "metrics") ? "read" : rows[i].access;
    for (int c = 0; c < C_N; c++) check_cell(srv, &rows[i], c, need);
  }
}

/* Malformed and edge-case Authorization headers on a read route. */
static void test_headers(sd_server *srv) {
  static const struct {
    const char *hdr;
    long status;
  } cases[] = {
      {"Authorization: Bearer", 401},
      {"Authorization: Bearer ", 401},
      {"Authorization: Bearer " K_READ " extra", 401},
      {"Authorization: Bearer " K_READ "x", 401},
      {"Authorization: " K_READ, 401},
      {"Authorization: Token " K_READ, 401},
      {"Authorization: bearer " K_READ, 200}, /* the scheme is case-insensitive */
      {"Authorization: Bearer   " K_READ "  ", 200},
      {"Authorization: Bearer " K_ALL, 200},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *h[] = {cases[i].hdr, NULL};
    http_resp r = http_req_hdrs(srv, "GET", "/v1/spaces", NULL, NULL, 0, h);
    if (r.status != cases[i].status)
      fprintf(stderr, "header \"%s\" -> %ld\n", cases[i].hdr, r.status);
    CHECK_INT(r.status, cases[i].status);
    http_resp_free(&r);
  }
}

/* Unknown /v1 paths need a key before they are told 404 or 405. */
static void test_misses(sd_server *srv) {
  const char *rd[] = {"Authorization: Bearer " K_INGEST, NULL};
  http_resp r = http_req_hdrs(srv, "GET", "/v1/nope", NULL, NULL, 0, NULL);
  CHECK_INT(r.status, 401);
  http_resp_free(&r);
  r = http_req_hdrs(srv, "GET", "/v1/nope", NULL, NULL, 0, rd);
  CHECK_INT(r.status, 404);
  http_resp_free(&r);
  r = http_req_hdrs(srv, "PUT", "/v1/events", NULL, NULL, 0, NULL);
  CHECK_INT(r.status, 401);
  CHECK_INT(strlen(r.allow), 0); /* no Allow for a client without a key */
  http_resp_free(&r);
  r = http_req_hdrs(srv, "PUT", "/v1/events", NULL, NULL, 0, rd);
  CHECK_INT(r.status, 405);
  CHECK(strstr(r.allow, "POST") != NULL);
  http_resp_free(&r);
  r = http_req_hdrs(srv, "GET", "/nope", NULL, NULL, 0, NULL);
  CHECK_INT(r.status, 404); /* outside /v1: nothing to protect */
  http_resp_free(&r);
}

/* The server's log never holds a key, good or bad. */
static void test_log_clean(const sd_server *srv) {
  FILE *f = fopen(srv->log, "r");
  CHECK(f != NULL);
  if (!f) return;
  static char buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  fclose(f);
  const char *keys[] = {K_INGEST, K_READ, K_ADMIN, K_ALL, K_ENV, K_UNKNOWN,
                        "cmVhZDpzZWNyZXQ="};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    if (strstr(buf, keys[i])) fprintf(stderr, "key %zu is in the log\n", i);
    CHECK(strstr(buf, keys[i]) == NULL);
  }
  CHECK(strstr(buf, "auth on: 4 API keys") != NULL);
}

static void write_keys(const char *path) {
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  if (!f) return;
  fprintf(f, "# segmentd API keys: key:scope+scope\n\n"
             "  " K_INGEST ":ingest   # the event pipeline\n"
             K_READ ":read\n"
             "\t" K_ADMIN ":admin\n"
             K_ALL ":ingest+read+admin # ops\n");
  fclose(f);
}

static long get_status(sd_server *srv, const char *path, const char *hdr) {
  const char *h[] = {hdr, NULL};
  http_resp r = http_req_hdrs(srv, "GET", path, NULL, NULL, 0, hdr ? h : NULL);
  long s = r.status;
  http_resp_free(&r);
  return s;
}

/* --metrics-scope open and admin, and keys from the environment. */
static void test_metrics_scope_and_env(sd_server *srv, const char *keys) {
  const char *open[] = {"--api-keys-file", keys, "--metrics-scope", "open", NULL};
  CHECK_INT(srv_stop(srv), 0);
  CHECK_INT(srv_set_args(srv, open), 0);
  setenv("SEGMENTD_API_KEYS", K_ENV ":read, " "ingest-only-key-0123456789:ingest", 1);
  CHECK_INT(srv_restart(srv), 0);
  unsetenv("SEGMENTD_API_KEYS");
  CHECK_INT(get_status(srv, "/metrics", NULL), 200);
  CHECK_INT(get_status(srv, "/v1/spaces", "Authorization: Bearer " K_ENV), 200);
  CHECK_INT(get_status(srv, "/v1/spaces", "Authorization: Bearer " K_READ), 200);
  const char *admin[] = {"--api-keys-file", keys, "--metrics-scope", "admin", NULL};
  CHECK_INT(srv_stop(srv), 0);
  CHECK_INT(srv_set_args(srv, admin), 0);
  CHECK_INT(srv_restart(srv), 0);
  CHECK_INT(get_status(srv, "/metrics", NULL), 401);
  CHECK_INT(get_status(srv, "/metrics", "Authorization: Bearer " K_READ), 403);
  CHECK_INT(get_status(srv, "/metrics", "Authorization: Bearer " K_ADMIN), 200);
  CHECK_INT(get_status(srv, "/v1/spaces", "Authorization: Bearer " K_ENV), 401);
}

/* A bad keys file stops the start, naming the line but not the key. */
static void test_bad_file(const sd_server *srv) {
  char path[400], cmd[1600], out[4096];
  snprintf(path, sizeof path, "%s/bad-keys", srv->dir);
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  if (!f) return;
  fprintf(f, "# ok\n" K_READ ":read\nshort-secret-77:read\n");
  fclose(f);
  snprintf(cmd, sizeof cmd, "'%s' serve --listen 127.0.0.1:0 --db '%s/bad.db' "
           "--api-keys-file '%s' 2>&1", getenv("SD_BIN"), srv->dir, path);
  int rc = run_capture(cmd, out, sizeof out);
  CHECK(rc != 0);
  CHECK(strstr(out, "line 3") != NULL);
  CHECK(strstr(out, "short-secret-77") == NULL);
  f = fopen(path, "w");
  CHECK(f != NULL);
  if (!f) return;
  fprintf(f, K_READ ":read+write\n");
  fclose(f);
  rc = run_capture(cmd, out, sizeof out);
  CHECK(rc != 0);
  CHECK(strstr(out, "line 1") != NULL && strstr(out, K_READ) == NULL);
}

/* No keys: the API is open, the start log says so, /v1/info too. */
static void test_open(void) {
  sd_server *srv = srv_start(NULL);
  CHECK(srv != NULL);
  if (!srv) return;
  CHECK_INT(get_status(srv, "/v1/spaces", NULL), 200);
  CHECK_INT(get_status(srv, "/metrics", NULL), 200);
  long st;
  json_t *info = http_json(srv, "GET", "/v1/info", NULL, &st);
  CHECK_INT(st, 200);
  CHECK(json_is_false(json_path(info, "auth.enabled")));
  json_decref(info);
  char cmd[400], out[256];
  snprintf(cmd, sizeof cmd, "grep -c 'no API keys configured' '%s'", srv->log);
  CHECK_INT(run_capture(cmd, out, sizeof out), 0);
  CHECK_INT(srv_stop(srv), 0);
  srv_free(srv);
}

int main(void) {
  route_row rows[128];
  size_t n = load_routes(rows, 128);
  CHECK(n >= 20);
  char dir[] = "/tmp/sd-auth-XXXXXX", keys[64];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(keys, sizeof keys, "%s/keys", dir);
  write_keys(keys);
  const char *args[] = {"--api-keys-file", keys, NULL};
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (srv) {
    test_matrix(srv, rows, n);
    test_headers(srv);
    test_misses(srv);
    long st;
    snprintf(srv->bearer, sizeof srv->bearer, "%s", K_READ);
    json_t *info = http_json(srv, "GET", "/v1/info", NULL, &st);
    CHECK_INT(st, 200);
    CHECK(json_is_true(json_path(info, "auth.enabled")));
    CHECK_INT(json_path_int(info, "auth.keys", -1), 4);
    char *dump = json_dumps(info, JSON_COMPACT);
    CHECK(dump && !strstr(dump, K_READ) && !strstr(dump, K_ADMIN));
    free(dump);
    json_decref(info);
    srv->bearer[0] = 0;
    test_metrics_scope_and_env(srv, keys);
    test_log_clean(srv);
    test_bad_file(srv);
    CHECK_INT(srv_stop(srv), 0);
    if (check_failures) srv_dump_log(srv);
    srv_free(srv);
  }
  test_open();
  unlink(keys);
  rmdir(dir);
  http_thread_done();
  return check_done("test_auth_http");
}
