/*
 * harness_sd.c -- segmentd-specific helpers of the integration harness.
 *
 * Ingest a batch and read its counts, read a user's stored counts, find a
 * space, wait for a space's first model, and read the NDJSON assignments
 * stream (whole or counted per id), all as docs/API.md describes them, and
 * build the texts and events items of the crash tests. The contract is in
 * harness.h.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long ingest(sd_server *srv, const char *kind, const json_t *items,
            long long *accepted, long long *duplicates) {
  char path[64];
  long status = 0;
  snprintf(path, sizeof path, "/v1/%s", kind);
  json_t *req = json_object();
  if (!req || json_object_set(req, kind, (json_t *)items) != 0) {
    json_decref(req);
    return 0;
  }
  json_t *resp = http_json_obj(srv, "POST", path, req, &status);
  json_decref(req);
  long long a = -1, d = -1;
  if (status == 200) {
    a = json_path_int(resp, "accepted", -1);
    d = json_path_int(resp, "duplicates", -1);
  }
  if (accepted)
    *accepted = a;
  if (duplicates)
    *duplicates = d;
  json_decref(resp);
  return status;
}

long long user_count(const json_t *user, const char *kind) {
  char key[64], singular[32];
  snprintf(singular, sizeof singular, "%s", kind);
  size_t n = strlen(singular);
  if (n > 1 && singular[n - 1] == 's')
    singular[n - 1] = '\0';
  const char *fmts[] = {"counts.%s", "%s", "%s_count", "n_%s"};
  for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
    snprintf(key, sizeof key, fmts[i], kind);
    long long v = json_path_int(user, key, -1);
    if (v >= 0)
      return v;
  }
  snprintf(key, sizeof key, "%s_count", singular);
  return json_path_int(user, key, -1);
}

long get_user_counts(sd_server *srv, const char *user_id, long long *events,
                     long long *texts) {
  char path[600];
  long status = 0;
  snprintf(path, sizeof path, "/v1/users/%s", user_id);
  json_t *u = http_json(srv, "GET", path, NULL, &status);
  if (events)
    *events = status == 200 ? user_count(u, "events") : -1;
  if (texts)
    *texts = status == 200 ? user_count(u, "texts") : -1;
  json_decref(u);
  return status == 200 ? 0 : status;
}

double metrics_series(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
    if (!strncmp(p, series, n) && p[n] == ' ') {
      char *end;
      double v = strtod(p + n + 1, &end);
      return end == p + n + 1 ? -1 : v;
    }
  return -1;
}

double http_metric(sd_server *srv, const char *series) {
  http_resp r = http_req(srv, "GET", "/metrics", NULL, NULL, 0);
  double v = r.status == 200 ? metrics_series(r.body, series) : -1;
  http_resp_free(&r);
  return v;
}

json_t *get_space(sd_server *srv, const char *space) {
  long status = 0;
  json_t *all = http_json(srv, "GET", "/v1/spaces", NULL, &status);
  json_t *found = NULL;
  const json_t *arr = json_object_get(all, "spaces");
  for (size_t i = 0; status == 200 && i < json_array_size(arr); i++) {
    json_t *s = json_array_get(arr, i);
    const char *name = json_string_value(json_object_get(s, "name"));
    if (name && strcmp(name, space) == 0) {
      found = json_incref(s);
      break;
    }
  }
  json_decref(all);
  return found;
}

long long space_points(sd_server *srv, const char *space) {
  json_t *s = get_space(srv, space);
  long long n = json_path_int(s, "points", -1);
  json_decref(s);
  return n;
}

int model_present(const json_t *v) {
  if (json_is_integer(v))
    return json_integer_value(v) >= 1;
  return json_is_string(v) && json_string_length(v) > 0;
}

int wait_model(sd_server *srv, const char *space, double timeout_s) {
  char path[128];
  snprintf(path, sizeof path, "/v1/spaces/%s/clusters", space);
  timeout_s *= harness_timeout_scale(); /* slower under valgrind */
  double deadline = now_s() + timeout_s;
  do {
    long status = 0;
    json_t *c = http_json(srv, "GET", path, NULL, &status);
    int ok = status == 200 &&
             json_array_size(json_object_get(c, "clusters")) > 0 &&
             model_present(json_object_get(c, "model_version"));
    json_decref(c);
    if (ok)
      return 0;
    sleep_ms(100);
  } while (now_s() < deadline);
  fprintf(stderr, "wait_model: space %s has no model after %.0f s\n", space,
          timeout_s);
  return -1;
}

int wait_space_settled(sd_server *srv, const char *space, double timeout_s) {
  if (wait_model(srv, space, timeout_s) < 0) return -1;
  double deadline = now_s() + timeout_s * harness_timeout_scale();
  do {
    json_t *sp = get_space(srv, space);
    int busy = !sp || json_is_true(json_object_get(sp, "reassigning"));
    json_decref(sp);
    if (!busy) return 0;
    sleep_ms(100);
  } while (now_s() < deadline);
  fprintf(stderr, "wait_space_settled: space %s still re-assigning\n", space);
  return -1;
}

/* Parses one NDJSON line into arr (null when it does not parse). */
static void ndjson_line(json_t *arr, const char *p, size_t n, int *bad) {
  json_error_t err;
  json_t *j = json_loadb(p, n, 0, &err);
  if (!j) {
    (*bad)++;
    fprintf(stderr, "ndjson: bad line (%s): %.*s\n", err.text,
            (int)(n > 200 ? 200 : n), p);
    j = json_null();
  }
  json_array_append_new(arr, j);
}

json_t *get_assignments(sd_server *srv, const char *space, long *status,
                        char *ctype, size_t cap, int *bad_lines) {
  char path[128];
  snprintf(path, sizeof path, "/v1/spaces/%s/assignments", space);
  http_resp r = http_req(srv, "GET", path, NULL, NULL, 0);
  *status = r.status;
  *bad_lines = 0;
  if (ctype && cap)
    snprintf(ctype, cap, "%s", r.content_type);
  json_t *arr = r.status ? json_array() : NULL;
  const char *p = r.body, *end = r.body + r.len;
  while (arr && p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (n > 0 && !(n == 1 && p[0] == '\r'))
      ndjson_line(arr, p, n, bad_lines);
    p += n + (nl != NULL);
  }
  http_resp_free(&r);
  return arr;
}

json_t *assigned_id_counts(sd_server *srv, const char *space, long *status,
                           int *bad) {
  json_t *arr = get_assignments(srv, space, status, NULL, 0, bad);
  if (!arr)
    return NULL;
  json_t *seen = json_object();
  size_t i;
  json_t *line;
  json_array_foreach(arr, i, line) {
    const char *id = json_string_value(json_object_get(line, "id"));
    if (!id) {
      (*bad)++;
      continue;
    }
    long long n = json_integer_value(json_object_get(seen, id));
    json_object_set_new(seen, id, json_integer(n + 1));
  }
  json_decref(arr);
  return seen;
}

/* ---- crash-test items ---- */

static const char *const CRASH_WORDS[3][6] = {
    {"refund", "card", "payment", "charge", "bank", "fee"},
    {"weather", "rain", "sunny", "forecast", "storm", "wind"},
    {"football", "match", "goal", "score", "team", "league"}};

json_t *crash_text(const char *id, const char *uid, int i) {
  char text[128];
  const char *const *w = CRASH_WORDS[i % 3];
  snprintf(text, sizeof text, "%s %s my %s %s %d", w[i % 6], w[(i + 1) % 6],
           w[(i + 2) % 6], w[(i + 4) % 6], i);
  return json_pack("{s:s, s:s, s:s}", "text_id", id, "user_id", uid, "text",
                   text);
}

json_t *crash_event(const char *id, const char *uid, int i) {
  return json_pack("{s:s, s:s, s:s, s:I}", "event_id", id, "user_id", uid,
                   "type", i % 2 ? "view" : "buy", "ts",
                   (json_int_t)1764237600000LL + i * 60000);
}

json_t *json_padded(const char *prefix, size_t n) {
  char *s = malloc(n + 1);
  if (!s)
    return NULL;
  size_t k = strlen(prefix);
  if (k > n)
    k = n;
  memcpy(s, prefix, k);
  memset(s + k, 'x', n - k);
  s[n] = '\0';
  json_t *j = json_string(s);
  free(s);
  return j;
}

/* ---- planted topics ---- */

const char *const planted_words[PLANTED_TOPICS][8] = {
    {"refund", "card", "payment", "charge", "bank", "fee", "declined", "money"},
    {"weather", "rain", "sunny", "forecast", "cloud", "storm", "wind", "snow"},
    {"football", "match", "goal", "score", "team", "player", "league", "referee"}};

void planted_text(int t, unsigned seed, char *out, size_t cap) {
  unsigned s = seed * 2654435761u + (unsigned)t;
  size_t used = 0;
  out[0] = 0;
  for (int w = 0; w < 6 && used < cap; w++) {
    s = s * 1103515245u + 12345u;
    used += (size_t)snprintf(out + used, cap - used, "%s%s", w ? " " : "",
                             planted_words[t][(s >> 16) % 8]);
  }
}

json_t *planted_texts(const char *prefix, int from, int n,
                      const char *user_prefix, int users) {
  json_t *items = json_array();
  char id[64], user[64], text[128];
  for (int i = from; items && i < from + n; i++) {
    snprintf(id, sizeof(id), "%s%d", prefix, i);
    planted_text(i % PLANTED_TOPICS, (unsigned)i, text, sizeof(text));
    json_t *o = json_pack("{s:s,s:s}", "text_id", id, "text", text);
    if (user_prefix) {
      snprintf(user, sizeof(user), "%s%d", user_prefix, users ? i % users : i);
      json_object_set_new(o, "user_id", json_string(user));
    }
    json_array_append_new(items, o);
  }
  return items;
}

long ingest_planted_users(sd_server *srv, const char *prefix, int n,
                          const char *const *types, int n_types) {
  json_t *texts = planted_texts(prefix, 0, n, prefix, 0);
  json_t *events = json_array();
  char id[64], ev[32];
  for (int i = 0; events && i < n; i++) {
    snprintf(id, sizeof(id), "%s%d", prefix, i);
    snprintf(ev, sizeof(ev), "e%d", i);
    json_array_append_new(events, json_pack("{s:s,s:s,s:s}", "event_id", ev,
                                            "user_id", id, "type",
                                            types[i % n_types]));
  }
  long st = ingest(srv, "texts", texts, NULL, NULL);
  if (st == 200) st = ingest(srv, "events", events, NULL, NULL);
  json_decref(texts);
  json_decref(events);
  return st;
}
