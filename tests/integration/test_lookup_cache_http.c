/*
 * test_lookup_cache_http.c -- the segment answer cache seen from outside:
 * a repeated lookup is served from memory (same computed_at, counted in
 * /metrics), and nothing a client does leaves a stale answer behind:
 * new events for the user, a renamed segment, an erasure, a re-cluster,
 * the TTL. With --lookup-cache 0 every answer is computed afresh. The
 * database file is memory-mapped by default and not with
 * --sqlite-mmap-mb 0 (/proc/<pid>/maps).
 */
#include "check.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USERS 90

static json_t *lookup(sd_server *srv, const char *uid, long *st) {
  char path[96];
  snprintf(path, sizeof(path), "/v1/users/%s/segment", uid);
  return http_json(srv, "GET", path, NULL, st);
}

static const char *str(const json_t *o, const char *path) {
  return json_string_value(json_path(o, path));
}


static void wait_settled(sd_server *srv, long long users) {
  int tries = (int)(150 * harness_timeout_scale());
  for (int i = 0; i < tries; i++) {
    json_t *a = get_space(srv, "intents"), *b = get_space(srv, "segments");
    int done = !json_is_true(json_object_get(a, "reassigning")) &&
               !json_is_true(json_object_get(b, "reassigning")) &&
               json_path_int(b, "assigned", 0) == users;
    json_decref(a), json_decref(b);
    if (done) return;
    sleep_ms(100);
  }
  CHECK(!"spaces settled");
}

/* Repeats are served from memory, and the batch lookup agrees. */
static void test_hit(sd_server *srv) {
  long st;
  double hits = http_metric(srv, "segmentd_lookup_cache_hits_total");
  json_t *a = lookup(srv, "c1", &st), *b;
  CHECK_INT(st, 200);
  sleep_ms(5);
  b = lookup(srv, "c1", &st);
  CHECK_STR(str(b, "computed_at"), str(a, "computed_at"));
  CHECK(json_equal(a, b));
  CHECK(http_metric(srv, "segmentd_lookup_cache_hits_total") >= hits + 1);
  CHECK(http_metric(srv, "segmentd_lookup_cache_entries") >= 1);
  json_t *r = http_json(srv, "POST", "/v1/segments/lookup",
                        "{\"user_ids\":[\"c1\",\"nobody\"]}", &st);
  CHECK_INT(st, 200);
  CHECK(json_equal(json_array_get(json_object_get(r, "results"), 0), a));
  CHECK_STR(str(json_array_get(json_object_get(r, "results"), 1), "error"),
            "not_found");
  json_decref(a), json_decref(b), json_decref(r);
}

/* An acknowledged ingest shows in the very next lookup. */
static void test_ingest(sd_server *srv) {
  long st;
  json_t *a = lookup(srv, "c2", &st);
  json_t *ev = json_pack("[{s:s,s:s,s:s}]", "event_id", "late-1", "user_id",
                         "c2", "type", "purchase");
  sleep_ms(5);
  CHECK_INT(ingest(srv, "events", ev, NULL, NULL), 200);
  json_t *b = lookup(srv, "c2", &st);
  CHECK(strcmp(str(b, "updated_at"), str(a, "updated_at")) > 0);
  CHECK(strcmp(str(b, "computed_at"), str(a, "computed_at")) > 0);
  json_decref(ev), json_decref(a), json_decref(b);
}

/* A renamed segment shows at once in a cached answer. */
static void test_rename(sd_server *srv) {
  long st;
  json_t *a = lookup(srv, "c3", &st);
  long long id = json_path_int(a, "segment.id", -1);
  CHECK(id >= 0);
  char path[96];
  snprintf(path, sizeof(path), "/v1/spaces/segments/clusters/%lld", id);
  json_decref(http_json(srv, "PATCH", path, "{\"label\":\"loyal browsers\"}",
                        &st));
  CHECK_INT(st, 200);
  json_t *b = lookup(srv, "c3", &st);
  CHECK_STR(str(b, "segment.label"), "loyal browsers");
  CHECK_STR(str(b, "computed_at"), str(a, "computed_at")); /* still kept */
  json_decref(a), json_decref(b);
}

static void test_erase(sd_server *srv) {
  long st;
  json_decref(lookup(srv, "c4", &st));
  CHECK_INT(st, 200);
  json_decref(http_json(srv, "DELETE", "/v1/users/c4", NULL, &st));
  CHECK_INT(st, 200);
  json_decref(lookup(srv, "c4", &st));
  CHECK_INT(st, 404);
}

static void test_recluster(sd_server *srv) {
  long st;
  json_t *a = lookup(srv, "c5", &st);
  json_decref(http_json(srv, "POST", "/v1/spaces/segments/recluster",
                        "{\"k\":4,\"wait\":true,\"seed\":9}", &st));
  CHECK_INT(st, 200);
  wait_settled(srv, USERS - 1); /* c4 was erased */
  json_t *b = lookup(srv, "c5", &st);
  CHECK(json_path_int(b, "model_version", 0) >
        json_path_int(a, "model_version", 0));
  json_decref(a), json_decref(b);
}

static void test_ttl(sd_server *srv) {
  long st;
  json_t *a = lookup(srv, "c6", &st);
  sleep_ms(2100); /* --lookup-cache-ttl 2 */
  json_t *b = lookup(srv, "c6", &st);
  CHECK(strcmp(str(b, "computed_at"), str(a, "computed_at")) > 0);
  json_decref(a), json_decref(b);
}

/* Is the server's database file (not its -shm) mapped into its memory? */
static int db_mapped(const sd_server *srv) {
  char path[64], line[1024];
  snprintf(path, sizeof path, "/proc/%d/maps", (int)srv->pid);
  FILE *f = fopen(path, "r");
  CHECK(f != NULL);
  int found = 0;
  size_t n = strlen(srv->db);
  while (f && fgets(line, sizeof line, f)) {
    size_t len = strlen(line);
    found |= len > n && !strncmp(line + len - n - 1, srv->db, n) &&
             line[len - 1] == '\n';
  }
  if (f) fclose(f);
  return found;
}

static sd_server *start(const char *cache, const char *mmap_mb) {
  const char *args[] = {"--train-min", "60", "--dim", "64", "--k", "3",
                        "--stability-runs", "0", "--lookup-cache-ttl", "2",
                        "--lookup-cache", cache, "--sqlite-mmap-mb", mmap_mb,
                        NULL};
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (!srv) return NULL;
  static const char *const types[] = {"search", "view"};
  CHECK_INT(ingest_planted_users(srv, "c", USERS, types, 2), 200);
  CHECK_INT(wait_model(srv, "intents", 60), 0);
  CHECK_INT(wait_model(srv, "segments", 60), 0);
  wait_settled(srv, USERS);
  return srv;
}

static void stop(sd_server *srv) {
  CHECK_INT(srv_stop(srv), 0);
  if (check_failures) srv_dump_log(srv);
  srv_free(srv);
}

int main(void) {
  sd_server *srv = start("1000", "1024");
  if (!srv) return check_done("test_lookup_cache_http");
  test_hit(srv);
  CHECK(db_mapped(srv));
  test_ingest(srv);
  test_rename(srv);
  test_erase(srv);
  test_recluster(srv);
  test_ttl(srv);
  stop(srv);
  srv = start("0", "0"); /* off: every answer computed, no map */
  if (!srv) return check_done("test_lookup_cache_http");
  long st;
  json_t *a = lookup(srv, "c1", &st);
  sleep_ms(5);
  json_t *b = lookup(srv, "c1", &st);
  CHECK(strcmp(str(b, "computed_at"), str(a, "computed_at")) > 0);
  CHECK(http_metric(srv, "segmentd_lookup_cache_hits_total") == 0);
  CHECK(!db_mapped(srv));
  json_decref(a), json_decref(b);
  stop(srv);
  return check_done("test_lookup_cache_http");
}
