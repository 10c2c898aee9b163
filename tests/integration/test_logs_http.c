/*
 * test_logs_http.c -- segmentd's stderr log and X-Request-Id, read from
 * the live server's captured log (harness: <dir>/server.log).
 *
 * Checks that every line the server writes is a JSON object with an RFC
 * 3339 millisecond time, a level and a message; that each request gets
 * one access line (request id, method, route pattern, path, status,
 * duration_ms, bytes) matching what the client saw, streamed bodies
 * included; that a valid client X-Request-Id is echoed and an invalid or
 * overlong one replaced by a generated id; that no secret (webhook
 * secret, Authorization header) reaches the log; and that --log-format
 * text keeps the same fields.
 */
#include "check.h"
#include "harness.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "whsec-obs-7f3a9c"
#define BEARER "tok-obs-1d2e3f"

static sd_server *srv;

static char *read_log(void) {
  FILE *f = fopen(srv->log, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *s = malloc((size_t)n + 1);
  size_t got = s ? fread(s, 1, (size_t)n, f) : 0;
  fclose(f);
  if (s) s[got] = 0;
  return s;
}

/* 1 when s is YYYY-MM-DDTHH:MM:SS.mmmZ. */
static int rfc3339_ms(const char *s) {
  static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
  if (!s || strlen(s) != strlen(shape)) return 0;
  for (size_t i = 0; shape[i]; i++)
    if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i])
      return 0;
  return 1;
}

/* The JSON access line of request id, waiting up to 5 s for it (the line
 * is written once the reply is sent). A new reference or NULL. */
static json_t *access_line(const char *id) {
  for (double end = now_s() + 5; now_s() < end; sleep_ms(20)) {
    char *log = read_log();
    for (char *l = log ? strtok(log, "\n") : NULL; l; l = strtok(NULL, "\n")) {
      json_t *j = json_loads(l, 0, NULL);
      const char *rid = json_string_value(json_object_get(j, "request_id"));
      const char *msg = json_string_value(json_object_get(j, "msg"));
      if (rid && msg && !strcmp(rid, id) && !strcmp(msg, "request")) {
        free(log);
        return j;
      }
      json_decref(j);
    }
    free(log);
  }
  fprintf(stderr, "no access line for request id %s\n", id);
  return NULL;
}

/* A request with an X-Request-Id header (value may be NULL: none); checks
 * its access line against the reply and returns the id the reply gave. */
static void request(const char *method, const char *path, const char *body,
                    const char *id, const char *route, char *got,
                    size_t cap) {
  char hdr[512];
  snprintf(hdr, sizeof(hdr), "X-Request-Id: %s", id ? id : "");
  http_resp r = http_req_hdr(srv, method, path,
                             body ? "application/json" : NULL, body,
                             body ? strlen(body) : 0, id ? hdr : NULL);
  CHECK(r.status > 0);
  CHECK(r.request_id[0] != 0);
  snprintf(got, cap, "%s", r.request_id);
  json_t *j = access_line(r.request_id);
  CHECK(j != NULL);
  CHECK_STR(json_string_value(json_object_get(j, "level")), "info");
  CHECK(rfc3339_ms(json_string_value(json_object_get(j, "time"))));
  CHECK_STR(json_string_value(json_object_get(j, "method")), method);
  CHECK_STR(json_string_value(json_object_get(j, "route")), route);
  CHECK_STR(json_string_value(json_object_get(j, "path")), path);
  CHECK_INT(json_integer_value(json_object_get(j, "status")), r.status);
  CHECK_INT(json_integer_value(json_object_get(j, "bytes")), r.len);
  json_t *d = json_object_get(j, "duration_ms");
  CHECK(json_is_number(d) && json_number_value(d) >= 0 &&
        json_number_value(d) < 60000);
  /* Server-Timing: the time to the reply, within the access line's */
  CHECK(!strncmp(r.server_timing, "app;dur=", 8));
  char *end;
  double st = strtod(r.server_timing + 8, &end);
  CHECK(end != r.server_timing + 8 && *end == 0 && st >= 0 &&
        st <= json_number_value(d) + 0.001);
  json_decref(j);
  http_resp_free(&r);
}

static int generated_id(const char *s) {
  return strlen(s) == 32 && strspn(s, "0123456789abcdef") == 32;
}

static void check_ids(void) {
  char got[256], first[256];
  request("GET", "/healthz", NULL, "it-obs.0042:a_b", "/healthz", got,
          sizeof(got));
  CHECK_STR(got, "it-obs.0042:a_b");
  request("GET", "/healthz", NULL, "bad id", "/healthz", got, sizeof(got));
  CHECK(generated_id(got));
  snprintf(first, sizeof(first), "%s", got);
  request("GET", "/healthz", NULL, NULL, "/healthz", got, sizeof(got));
  CHECK(generated_id(got) && strcmp(got, first) != 0);
  request("GET", "/healthz", NULL, "{\"x\":1}", "/healthz", got, sizeof(got));
  CHECK(generated_id(got));
  char id[200];
  memset(id, 'a', 129);
  id[129] = 0; /* one past the limit */
  request("GET", "/healthz", NULL, id, "/healthz", got, sizeof(got));
  CHECK(generated_id(got));
  id[128] = 0;
  request("GET", "/healthz", NULL, id, "/healthz", got, sizeof(got));
  CHECK_STR(got, id);
}

static void check_routes(void) {
  char got[256];
  request("GET", "/v1/users/u-1/segment", NULL, "it-obs-seg",
          "/v1/users/{}/segment", got, sizeof(got));
  request("GET", "/v1/no/such/route", NULL, "it-obs-404", "unmatched", got,
          sizeof(got));
  request("PUT", "/v1/events", "{}", "it-obs-405", "unmatched", got,
          sizeof(got));
  request("POST", "/v1/events",
          "{\"events\":[{\"event_id\":\"e-1\",\"user_id\":\"u-1\",\"type\":"
          "\"login\"}]}", "it-obs-ingest", "/v1/events", got, sizeof(got));
  request("POST", "/v1/events", "{\"events\": 3}", "it-obs-422",
          "/v1/events", got, sizeof(got));
  request("GET", "/v1/spaces/segments/assignments", NULL, "it-obs-stream",
          "/v1/spaces/{}/assignments", got, sizeof(got));
  request("HEAD", "/v1/spaces", NULL, "it-obs-head", "/v1/spaces", got,
          sizeof(got));
  request("GET", "/metrics", NULL, "it-obs-metrics", "/metrics", got,
          sizeof(got));
}

/* Every server line (not the harness's markers) is a JSON log object. */
static void check_all_lines(void) {
  char *log = read_log();
  int lines = 0, bad = 0;
  CHECK(log != NULL);
  for (char *l = log ? strtok(log, "\n") : NULL; l; l = strtok(NULL, "\n")) {
    if (!strncmp(l, "==== harness", 12)) continue;
    json_t *j = json_loads(l, 0, NULL);
    const char *lv = json_string_value(json_object_get(j, "level"));
    int ok = json_is_object(j) &&
             rfc3339_ms(json_string_value(json_object_get(j, "time"))) &&
             json_is_string(json_object_get(j, "msg")) && lv &&
             (!strcmp(lv, "info") || !strcmp(lv, "warn") ||
              !strcmp(lv, "error") || !strcmp(lv, "debug"));
    if (!ok && bad++ < 3) fprintf(stderr, "not a JSON log line: %s\n", l);
    lines++;
    json_decref(j);
  }
  CHECK(lines >= 10);
  CHECK_INT(bad, 0);
  free(log);
}

static void check_no_secrets(void) {
  http_resp r = http_req_hdr(srv, "GET", "/v1/spaces", NULL, NULL, 0,
                             "Authorization: Bearer " BEARER);
  CHECK_INT(r.status, 200);
  json_t *line = access_line(r.request_id);
  CHECK(line != NULL);
  json_decref(line);
  http_resp_free(&r);
  char *log = NULL;
  for (double end = now_s() + 10; now_s() < end; sleep_ms(50)) {
    free(log);
    log = read_log(); /* a signed delivery was tried and logged */
    if (log && strstr(log, "webhook delivery")) break;
  }
  CHECK(log && strstr(log, "webhook delivery") != NULL);
  CHECK(log && strstr(log, SECRET) == NULL);
  CHECK(log && strstr(log, BEARER) == NULL);
  free(log);
}

static void check_text_format(void) {
  const char *args[] = {"--log-format", "text", NULL};
  CHECK_INT(srv_stop(srv), 0);
  CHECK(srv_set_args(srv, args) == 0 && srv_restart(srv) == 0);
  http_resp r = http_req_hdr(srv, "GET", "/healthz", NULL, NULL, 0,
                             "X-Request-Id: it-obs-text");
  CHECK_STR(r.request_id, "it-obs-text");
  http_resp_free(&r);
  int found = 0;
  for (double end = now_s() + 5; !found && now_s() < end; sleep_ms(20)) {
    char *log = read_log();
    const char *l = log ? strstr(log, "request_id=it-obs-text") : NULL;
    const char *eol = l ? strchr(l, '\n') : NULL;
    if (l && eol) {
      char line[512];
      snprintf(line, sizeof(line), "%.*s", (int)(eol - l), l);
      found = 1;
      CHECK(strstr(line, " method=GET route=/healthz path=/healthz "
                         "status=200 duration_ms=") != NULL);
    }
    free(log);
  }
  CHECK(found);
}

int main(void) {
  setenv("SEGMENTD_WEBHOOK_SECRET", SECRET, 1);
  const char *args[] = {"--train-min", "20", "--k", "2",
                        "--segments-webhook-url", "http://127.0.0.1:9/hook",
                        "--webhook-backoff-ms", "20", NULL};
  srv = srv_start(args);
  CHECK(srv != NULL);
  if (!srv) return check_done("test_logs_http");
  json_t *tx = planted_texts("t-", 0, 24, "u-", 24);
  CHECK_INT(ingest(srv, "texts", tx, NULL, NULL), 200);
  json_decref(tx);
  CHECK(wait_model(srv, "segments", 60) == 0);
  check_ids();
  check_routes();
  check_no_secrets();
  check_all_lines();
  check_text_format();
  CHECK_INT(srv_stop(srv), 0);
  if (check_failures) srv_dump_log(srv);
  srv_free(srv);
  http_thread_done();
  return check_done("test_logs_http");
}
