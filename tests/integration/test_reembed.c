/*
 * test_reembed.c -- switching a database from the built-in encoder to a
 * remote embedder with `segmentd reembed`.
 *
 * A server with the built-in encoder stores planted texts and trains its
 * first intents model. While it runs, `segmentd reembed` is refused (the
 * database's lock). After a clean stop, starting with a remote embedder is
 * refused with a message naming `segmentd reembed`; the re-embed then
 * queues every text, and the server started with the remote flags embeds
 * them in the background (pending visible in /v1/info), trains intents
 * again with a model version above the old one and cluster ids past the
 * retired ones, and every text ends up
 * with exactly the fake embedder's vector (sent as base64) and an intent, each user with
 * the same text count. Bounded to well under a minute.
 */
#include "check.h"
#include "harness.h"
#include "harness_fake.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIM 48
#define N_TEXTS 300
#define USERS 30

/* Runs segmentd with a subcommand and flags; exit status, output in out. */
static int run_segmentd(const char *sub, const char *flags, char *out,
                        size_t cap) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s %s %s 2>&1", getenv("SD_BIN"), sub, flags);
  return run_capture(cmd, out, cap);
}

/* Every text holds the fake's vector and an intent. */
static void verify_vectors(const char *db_path) {
  sqlite3 *db;
  sqlite3_stmt *st;
  CHECK(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
  CHECK(sqlite3_prepare_v2(db, "SELECT text,embedding,cluster FROM texts", -1,
                           &st, NULL) == SQLITE_OK);
  int rows = 0, bad = 0, unassigned = 0;
  float want[DIM];
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *text = (const char *)sqlite3_column_text(st, 0);
    const float *got = sqlite3_column_blob(st, 1);
    fake_embedding(text, strlen(text), DIM, want);
    int ok = got && sqlite3_column_bytes(st, 1) == (int)sizeof(want);
    for (int j = 0; ok && j < DIM; j++) ok = fabsf(got[j] - want[j]) < 1e-6f;
    bad += !ok;
    unassigned += sqlite3_column_type(st, 2) == SQLITE_NULL;
    rows++;
  }
  sqlite3_finalize(st);
  CHECK_INT(rows, N_TEXTS);
  CHECK_INT(bad, 0);
  CHECK_INT(unassigned, 0);
  CHECK(sqlite3_prepare_v2(db, "SELECT count(*) FROM embed_queue", -1, &st,
                           NULL) == SQLITE_OK);
  CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

/* The smallest and largest cluster id of the live intents model. */
static void cluster_ids(sd_server *srv, long long *lo, long long *hi) {
  long st;
  json_t *r = http_json(srv, "GET", "/v1/spaces/intents/clusters", NULL, &st);
  size_t i;
  json_t *c;
  *lo = -1, *hi = -1;
  json_array_foreach(json_object_get(r, "clusters"), i, c) {
    long long id = json_path_int(c, "id", -1);
    if (*lo < 0 || id < *lo) *lo = id;
    if (id > *hi) *hi = id;
  }
  json_decref(r);
}

/* Waits for the queue to drain and a model above old_version. */
static long long wait_reembedded(sd_server *srv, long long old_version) {
  double t0 = now_s();
  long long v = -1, pending = -1;
  while (now_s() - t0 < 60) {
    long st;
    json_t *info = http_json(srv, "GET", "/v1/info", NULL, &st);
    pending = json_path_int(info, "embedder.queue.pending", -1);
    json_decref(info);
    json_t *sp = get_space(srv, "intents");
    v = json_path_int(sp, "model_version", -1);
    long long assigned = json_path_int(sp, "assigned", -1);
    json_decref(sp);
    if (pending == 0 && v > old_version && assigned == N_TEXTS) break;
    sleep_ms(100);
  }
  CHECK_INT(pending, 0);
  CHECK(v > old_version);
  return v;
}

int main(void) {
  fake_emb *fk = fake_start(DIM, NULL);
  const char *const builtin[] = {"--train-min", "100", NULL};
  sd_server *srv = fk ? srv_start(builtin) : NULL;
  CHECK(fk && srv);
  if (!fk || !srv) return check_done("reembed");
  json_t *items = planted_texts("re-", 0, N_TEXTS, "ru-", USERS);
  CHECK_INT(ingest(srv, "texts", items, NULL, NULL), 200);
  json_decref(items);
  CHECK(wait_model(srv, "intents", 30) == 0);
  json_t *sp = get_space(srv, "intents");
  long long old_version = json_path_int(sp, "model_version", -1);
  json_decref(sp);
  long long ev, tx_before, lo, old_hi, new_lo, hi;
  cluster_ids(srv, &lo, &old_hi);
  CHECK(old_hi >= 0);
  CHECK_INT(get_user_counts(srv, "ru-3", &ev, &tx_before), 0);

  char remote[1024], flags[1400], out[4096];
  snprintf(remote, sizeof remote, "--embedder openai --embed-url %s "
           "--embed-model fake-m --dim %d", fk->url, DIM);
  snprintf(flags, sizeof flags, "--db %s %s", srv->db, remote);
  CHECK(run_segmentd("reembed", flags, out, sizeof out) != 0); /* running */
  CHECK(strstr(out, "in use") != NULL);
  CHECK_INT(srv_stop(srv), 0);

  snprintf(flags, sizeof flags, "--db %s --listen 127.0.0.1:0 %s", srv->db, remote);
  CHECK(run_segmentd("serve", flags, out, sizeof out) != 0);
  CHECK(strstr(out, "segmentd reembed") != NULL);
  snprintf(flags, sizeof flags, "--db %s %s", srv->db, remote);
  CHECK_INT(run_segmentd("reembed", flags, out, sizeof out), 0);
  CHECK(strstr(out, "300 texts") != NULL);

  char dim[16];
  snprintf(dim, sizeof dim, "%d", DIM);
  const char *const args[] = {"--train-min", "100", "--embedder", "openai",
                              "--embed-url", fk->url, "--embed-model",
                              "fake-m", "--dim", dim, "--embed-encoding",
                              "base64", NULL};
  CHECK_INT(srv_set_args(srv, args), 0);
  CHECK_INT(srv_restart(srv), 0);
  wait_reembedded(srv, old_version);
  cluster_ids(srv, &new_lo, &hi);
  CHECK(new_lo > old_hi); /* ids of the old embedder's clusters never return */
  long long tx_after;
  CHECK_INT(get_user_counts(srv, "ru-3", &ev, &tx_after), 0);
  CHECK_INT(tx_after, tx_before);
  CHECK_INT(srv_stop(srv), 0);
  verify_vectors(srv->db);
  srv_free(srv);
  CHECK_INT(fake_stop(fk), 0);
  http_thread_done();
  return check_done("reembed");
}
