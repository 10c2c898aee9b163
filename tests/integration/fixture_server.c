/*
 * fixture_server.c -- a real segmentd with data, for the browser and
 * OpenAPI tests (tests/browser/), built on the integration harness.
 *
 *   sd_fixture [--data] [-- <extra segmentd serve arguments>]
 *
 * Starts $SD_BIN on loopback (harness srv_start: temporary database, port
 * file). With --data it ingests planted users (events and texts of 4
 * segments), waits for the first model of both spaces, and drives the
 * intents space's drift checks (a baseline, then a new topic) until an
 * alert is open. Then it prints one line "READY <port>" on stdout and
 * serves until its stdin closes; then it stops the server (SIGTERM, exit
 * status checked) and removes the temporary directory. Exit status 0 only
 * when every step worked.
 */
#include "harness.h"
#include "harness_gen.h"

#include <stdio.h>
#include <string.h>

static const char *const NEW_WORDS[6] = {"crypto", "bitcoin", "wallet",
                                         "blockchain", "token", "mining"};
static int g_next;

/* n intents texts; one in `fresh` of them (0: none) about a new topic. */
static long ingest_texts(sd_server *srv, int n, int fresh) {
  json_t *items = json_array();
  for (int i = 0; i < n; i++, g_next++) {
    char id[32], text[128];
    snprintf(id, sizeof id, "fx-%d", g_next);
    if (fresh && i % fresh == 0) {
      unsigned s = (unsigned)g_next * 2654435761u;
      size_t used = 0;
      for (int w = 0; w < 6; w++, s = s * 1103515245u + 12345u)
        used += (size_t)snprintf(text + used, sizeof text - used, "%s%s",
                                 w ? " " : "", NEW_WORDS[(s >> 16) % 6]);
    } else {
      planted_text(g_next % PLANTED_TOPICS, (unsigned)g_next, text, sizeof text);
    }
    json_array_append_new(items, json_pack("{s:s,s:s}", "text_id", id, "text", text));
  }
  long st = ingest(srv, "texts", items, NULL, NULL);
  json_decref(items);
  return st;
}

static long long open_alerts(sd_server *srv) {
  long st;
  json_t *d = http_json(srv, "GET", "/v1/drift?refresh=true", NULL, &st);
  long long n = st == 200 ? json_path_int(d, "open_alerts", -1) : -1;
  json_decref(d);
  return n;
}

/* Planted users, both first models, then drift until an alert opens. */
static int load_data(sd_server *srv) {
  gen_conf c = {.n_users = 240, .n_segments = 4, .events_per_user = 8,
                .texts_per_user = 2, .noise_share = 0.05, .seed = 11,
                .prefix = "du"};
  if (gen_ingest(srv, &c) != 200) return fprintf(stderr, "fixture: ingest failed\n"), -1;
  if (wait_model(srv, "segments", 60) || wait_model(srv, "intents", 60))
    return fprintf(stderr, "fixture: no first model\n"), -1;
  sleep_ms(300);
  if (ingest_texts(srv, 300, 0) != 200 || open_alerts(srv) < 0) return -1;
  for (int round = 0; round < 6; round++) {
    if (ingest_texts(srv, 200, 3) != 200) return -1;
    long long n = open_alerts(srv);
    if (n < 0) return -1;
    if (n > 0) return 0;
  }
  return fprintf(stderr, "fixture: no drift alert after 6 rounds\n"), -1;
}

int main(int argc, char **argv) {
  int data = 0, i = 1;
  for (; i < argc && strcmp(argv[i], "--"); i++) {
    if (strcmp(argv[i], "--data")) {
      fprintf(stderr, "usage: sd_fixture [--data] [-- serve arguments]\n");
      return 2;
    }
    data = 1;
  }
  sd_server *srv = srv_start(i < argc ? (const char *const *)argv + i + 1 : NULL);
  if (!srv) return 1;
  int rc = data ? load_data(srv) : 0;
  if (rc == 0) {
    printf("READY %d\n", srv->port);
    fflush(stdout);
    char buf[256];
    while (fgets(buf, sizeof buf, stdin)) {
    }
  } else {
    srv_dump_log(srv);
  }
  if (srv_stop(srv) != 0) rc = -1;
  srv_free(srv);
  http_thread_done();
  return rc ? 1 : 0;
}
