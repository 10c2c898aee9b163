/*
 * test_admin_http.c -- PATCH a cluster's label and description (kept
 * across a re-cluster that keeps the id) and DELETE a user (every event,
 * text and assignment gone, counts follow, the audit kept), with their bad
 * requests.
 */
#include "check.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *cluster_of_text(sd_server *srv, const char *text_id) {
  long st;
  char ct[64];
  int bad;
  json_t *asg = get_assignments(srv, "intents", &st, ct, sizeof(ct), &bad);
  json_t *found = NULL;
  size_t i;
  json_t *o;
  json_array_foreach(asg, i, o)
    if (!strcmp(json_string_value(json_object_get(o, "id")), text_id))
      found = json_incref(json_object_get(o, "cluster"));
  json_decref(asg);
  return found;
}

static void test_label(sd_server *srv) {
  json_t *c = cluster_of_text(srv, "a0");
  CHECK(json_is_integer(c));
  char path[96];
  snprintf(path, sizeof(path), "/v1/spaces/intents/clusters/%lld",
           (long long)json_integer_value(c));
  long st;
  json_decref(http_json(srv, "PATCH", path,
                        "{\"label\":\"refund questions\",\"description\":\"money back\"}", &st));
  CHECK_INT(st, 200);
  json_t *g = http_json(srv, "GET", path, NULL, &st);
  CHECK_STR(json_string_value(json_object_get(g, "label")), "refund questions");
  CHECK_STR(json_string_value(json_object_get(g, "label_source")), "manual");
  CHECK_STR(json_string_value(json_object_get(g, "description")), "money back");
  json_decref(g);
  json_decref(http_json(srv, "POST", "/v1/spaces/intents/recluster",
                        "{\"k\":3,\"wait\":true,\"seed\":5}", &st));
  CHECK_INT(st, 200);
  g = http_json(srv, "GET", path, NULL, &st); /* the id survived: the label too */
  CHECK_INT(st, 200);
  CHECK_STR(json_string_value(json_object_get(g, "label")), "refund questions");
  json_decref(g);
  json_decref(http_json(srv, "PATCH", path, "{\"label\":null}", &st));
  CHECK_INT(st, 200);
  g = http_json(srv, "GET", path, NULL, &st);
  CHECK_STR(json_string_value(json_object_get(g, "label_source")), "auto");
  CHECK_STR(json_string_value(json_object_get(g, "description")), "money back");
  json_decref(g), json_decref(c);
}

/* One integer from a query, run with the sqlite3 command on the server's
 * database file (a WAL reader beside the server); -1 on failure. */
static long sql_long(sd_server *srv, const char *sql) {
  char cmd[768], out[64] = "";
  snprintf(cmd, sizeof(cmd), "sqlite3 %s \"%s\"", srv->db, sql);
  FILE *f = popen(cmd, "r");
  if (!f) return -1;
  char *got = fgets(out, sizeof(out), f);
  int rc = pclose(f);
  return got && rc == 0 ? atol(out) : -1;
}

/* Rows of user a4 left in any table. */
static long rows_of_user(sd_server *srv) {
  return sql_long(srv, "SELECT (SELECT count(*) FROM events WHERE user_id='a4')"
                       " + (SELECT count(*) FROM texts WHERE user_id='a4' OR text_id='a4')"
                       " + (SELECT count(*) FROM users WHERE user_id='a4')");
}

static void test_erase(sd_server *srv, int n) {
  long st;
  long long pts = space_points(srv, "intents");
  CHECK_INT(rows_of_user(srv), 3); /* an event, a text, the user */
  json_t *d = http_json(srv, "DELETE", "/v1/users/a4", NULL, &st);
  CHECK_INT(st, 200);
  CHECK_INT(json_path_int(d, "deleted.events", -1), 1);
  CHECK_INT(json_path_int(d, "deleted.texts", -1), 1);
  json_decref(d);
  long long ev, tx;
  CHECK_INT(get_user_counts(srv, "a4", &ev, &tx), 404);
  CHECK_INT(rows_of_user(srv), 0); /* no row of the user in any table */
  /* the erasure is in the audit table, with its counts but not the id */
  CHECK_INT(sql_long(srv, "SELECT count(*) FROM audit WHERE action='user_erased'"
                          " AND json_extract(detail,'$.events')=1 AND"
                          " json_extract(detail,'$.texts')=1 AND target LIKE"
                          " 'user:%' AND length(target)=21"), 1);
  json_t *c = cluster_of_text(srv, "a4");
  CHECK(c == NULL); /* the text and its assignment are gone */
  CHECK_INT(space_points(srv, "intents"), pts - 1);
  json_t *sp = get_space(srv, "intents");
  CHECK_INT(json_path_int(sp, "assigned", -1), n - 1);
  json_decref(sp);
  json_decref(http_json(srv, "DELETE", "/v1/users/a4", NULL, &st));
  CHECK_INT(st, 404);
  json_t *again = json_pack("[{s:s,s:s,s:s}]", "text_id", "a4", "user_id", "a4",
                            "text", "refund my card");
  long long acc = -1, dup = -1;
  CHECK_INT(ingest(srv, "texts", again, &acc, &dup), 200);
  CHECK_INT(acc, 1); /* erased ids are new again */
  CHECK_INT(dup, 0);
  json_decref(again);
}

static void test_bad(sd_server *srv) {
  char long_label[300];
  memset(long_label, 'x', 250);
  long_label[250] = 0;
  char body[400];
  snprintf(body, sizeof(body), "{\"label\":\"%s\"}", long_label);
  static const struct { const char *path, *body; long status; const char *code; } cases[] = {
      {"/v1/spaces/intents/clusters/0", "{\"label\":5}", 422, "invalid_field"},
      {"/v1/spaces/intents/clusters/0", "{\"label\":\"\"}", 422, "invalid_field"},
      {"/v1/spaces/intents/clusters/0", "{}", 422, "invalid_field"},
      {"/v1/spaces/intents/clusters/0", "[1]", 422, "invalid_field"},
      {"/v1/spaces/intents/clusters/0", "{", 400, "malformed_json"},
      {"/v1/spaces/intents/clusters/9999", "{\"label\":\"x\"}", 404, "not_found"},
      {"/v1/spaces/intents/clusters/x", "{\"label\":\"x\"}", 404, "not_found"},
      {"/v1/spaces/nope/clusters/0", "{\"label\":\"x\"}", 404, "not_found"},
  };
  long st;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    json_t *r = http_json(srv, "PATCH", cases[i].path, cases[i].body, &st);
    CHECK_INT(st, cases[i].status);
    CHECK(check_error_body(r, cases[i].code));
    json_decref(r);
  }
  json_t *r = http_json(srv, "PATCH", "/v1/spaces/intents/clusters/0", body, &st);
  CHECK_INT(st, 422);
  json_decref(r);
  http_resp h = http_req(srv, "PATCH", "/v1/spaces/intents/clusters/0",
                         "text/plain", "{\"label\":\"x\"}", 13);
  CHECK_INT(h.status, 415);
  http_resp_free(&h);
  json_decref(http_json(srv, "DELETE", "/v1/users/nobody", NULL, &st));
  CHECK_INT(st, 404);
}

/* GET /v1/users/{id} says which views are stored and the intents mix;
 * every cluster says whether it is actionable. */
static void test_user_and_flags(sd_server *srv) {
  long st;
  json_t *u = http_json(srv, "GET", "/v1/users/a1", NULL, &st);
  CHECK_INT(st, 200);
  CHECK(json_is_true(json_path(u, "views.text")));
  CHECK(json_is_true(json_path(u, "views.behaviour")));
  CHECK_INT(json_array_size(json_object_get(u, "intents")), 1);
  CHECK(json_path_int(u, "model_version", 0) >= 1);
  json_decref(u);
  json_t *cl = http_json(srv, "GET", "/v1/spaces/intents/clusters", NULL, &st);
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(cl, "clusters"), i, c) {
    json_t *a = json_object_get(c, "actionable");
    CHECK(json_is_boolean(a));
    /* 90 texts in 3 clusters of ~30 (>= 20 members), stability unmeasured */
    CHECK(json_is_true(a));
  }
  json_decref(cl);
}

int main(void) {
  const char *args[] = {"--train-min", "60", "--dim", "64", "--k", "3",
                        "--stability-runs", "0", NULL};
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (!srv) return check_done("test_admin_http");
  static const char *const view[] = {"view"};
  CHECK_INT(ingest_planted_users(srv, "a", 90, view, 1), 200);
  CHECK_INT(wait_model(srv, "intents", 60), 0);
  CHECK_INT(wait_model(srv, "segments", 60), 0); /* a user's model_version */
  int tries = (int)(100 * harness_timeout_scale()); /* 10 s, more under valgrind */
  for (int i = 0; i < tries; i++) { /* wait for the re-assignment to end */
    json_t *sp = get_space(srv, "intents");
    int done = !json_is_true(json_object_get(sp, "reassigning")) &&
               json_path_int(sp, "assigned", 0) == 90;
    json_decref(sp);
    if (done) break;
    sleep_ms(100);
  }
  test_user_and_flags(srv);
  test_label(srv);
  test_erase(srv, 90);
  test_bad(srv);
  CHECK_INT(srv_stop(srv), 0);
  if (check_failures) srv_dump_log(srv);
  srv_free(srv);
  return check_done("test_admin_http");
}
