/* harness_drift.c -- drift helpers of the integration tests (harness_drift.h). */
#include "harness_drift.h"

#include <stdio.h>
#include <string.h>

const char *const drift_new_words[DRIFT_NEW_WORDS] = {
    "crypto", "bitcoin", "wallet", "blockchain",
    "token",  "mining",  "ledger", "exchange"};

static int g_next;

int drift_is_new_word(const char *w) {
  for (int i = 0; i < DRIFT_NEW_WORDS; i++)
    if (strstr(w, drift_new_words[i])) return 1;
  return 0;
}

/* A 6-word text of the new topic, varied by seed. */
static void new_topic_text(unsigned seed, char *text, size_t cap) {
  unsigned s = seed * 2654435761u;
  size_t used = 0;
  for (int w = 0; w < 6; w++, s = s * 1103515245u + 12345u)
    used += (size_t)snprintf(text + used, cap - used, "%s%s", w ? " " : "",
                             drift_new_words[(s >> 16) % DRIFT_NEW_WORDS]);
}

long drift_ingest_mix(sd_server *srv, int n, double fresh) {
  json_t *items = json_array();
  for (int i = 0; i < n; i++, g_next++) {
    char id[32], user[32], text[128];
    snprintf(id, sizeof id, "dt-%d", g_next);
    snprintf(user, sizeof user, "du-%d", g_next % 40);
    if (i % 10 < (int)(fresh * 10 + 0.5))
      new_topic_text((unsigned)g_next, text, sizeof text);
    else
      planted_text(g_next % PLANTED_TOPICS, (unsigned)g_next, text, sizeof text);
    json_array_append_new(items, json_pack("{s:s,s:s,s:s}", "text_id", id,
                                           "user_id", user, "text", text));
  }
  long st = ingest(srv, "texts", items, NULL, NULL);
  json_decref(items);
  return st;
}

json_t *drift_check(sd_server *srv, int index, long *status, json_t **all) {
  json_t *d = http_json(srv, "GET", "/v1/drift?refresh=true", NULL, status);
  if (all) *all = NULL;
  if (*status != 200) {
    json_decref(d);
    return NULL;
  }
  json_t *out = json_array(), *c;
  size_t i;
  json_array_foreach(json_path(json_array_get(json_object_get(d, "spaces"), (size_t)index),
                               "checks"), i, c)
    if (json_is_true(json_object_get(c, "drifted"))) json_array_append(out, c);
  if (all) *all = d;
  else json_decref(d);
  return out;
}

json_t *drift_check_of(const json_t *drift, int index, const char *kind,
                       const char *method) {
  json_t *c;
  size_t i;
  json_array_foreach(json_path(json_array_get(json_object_get(drift, "spaces"), (size_t)index),
                               "checks"), i, c)
    if (!strcmp(json_string_value(json_object_get(c, "kind")), kind) &&
        !strcmp(json_string_value(json_object_get(c, "method")), method))
      return c;
  return NULL;
}

int drift_has_kind(const json_t *checks, const char *kind, const char *method) {
  size_t i;
  json_t *c;
  json_array_foreach(checks, i, c)
    if (!strcmp(json_string_value(json_object_get(c, "kind")), kind) &&
        (!method || !strcmp(json_string_value(json_object_get(c, "method")), method)))
      return 1;
  return 0;
}

json_t *drift_alerts_of(sd_server *srv, const char *kind, long *status) {
  json_t *r = http_json(srv, "GET", "/v1/alerts?limit=1000", NULL, status);
  if (*status != 200) {
    json_decref(r);
    return NULL;
  }
  json_t *out = json_array(), *a;
  size_t i;
  json_array_foreach(json_object_get(r, "alerts"), i, a)
    if (!strcmp(json_string_value(json_object_get(a, "kind")), kind))
      json_array_append(out, a);
  json_decref(r);
  return out;
}

int drift_wait_version(sd_server *srv, const char *space, long long version,
                       double timeout_s) {
  char path[128];
  snprintf(path, sizeof path, "/v1/spaces/%s/clusters", space);
  double deadline = now_s() + timeout_s * harness_timeout_scale();
  do {
    long status = 0;
    json_t *c = http_json(srv, "GET", path, NULL, &status);
    long long v = status == 200 ? json_path_int(c, "model_version", 0) : 0;
    json_decref(c);
    if (v >= version) return 0;
    sleep_ms(100);
  } while (now_s() < deadline);
  fprintf(stderr, "drift_wait_version: %s has no model v%lld\n", space, version);
  return -1;
}
