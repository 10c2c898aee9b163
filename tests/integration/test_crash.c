/*
 * test_crash.c -- "a 200 on ingest means durable" under kill -9
 * (docs/API.md, Conventions: durability, atomic batches, idempotence).
 *
 * Ingests batches of texts and events with distinct ids, kills the server
 * with SIGKILL at varying moments (right after a 200, a few ms after one,
 * and while a large batch is in flight from another thread) and restarts
 * it on the same database each time. Retries of acknowledged batches must
 * count as duplicates. At the end every acknowledged text appears exactly
 * once in the intents assignments stream, every user's stored counts equal
 * what was acknowledged, an in-flight batch is all there or not at all, and
 * the server still answers and stops gracefully. Bounded to under 60 s.
 */
#include "check.h"
#include "harness.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define N_BATCHES 24
#define BATCH_N 10 /* texts and events per batch */
#define N_USERS 8
#define N_INFLIGHT 3
#define INFLIGHT_N 1500
#define TIME_LIMIT_S 60.0

typedef struct {
  json_t *acked;             /* text id -> true, every acknowledged text */
  long long events[N_USERS]; /* acknowledged events per user cu-<i> */
  long long texts[N_USERS];  /* acknowledged texts per user cu-<i> */
  json_t *last_texts;        /* the last acknowledged texts batch */
  long inflight_status[N_INFLIGHT];
  int restarts;
} crash_state;

/* Kills the server and starts it again on the same database. */
static int crash_restart(sd_server *srv, crash_state *st) {
  srv_kill9(srv);
  st->restarts++;
  int rc = srv_restart(srv);
  CHECK_INT(rc, 0);
  return rc;
}

/* Right after a restart: the last acknowledged texts are all duplicates. */
static void crash_retry(sd_server *srv, const crash_state *st) {
  long long a = -1, d = -1;
  if (!st->last_texts)
    return;
  CHECK_INT(ingest(srv, "texts", st->last_texts, &a, &d), 200);
  CHECK_INT(a, 0);
  CHECK_INT(d, (long long)json_array_size(st->last_texts));
}

static int post_texts(sd_server *srv, crash_state *st, int b) {
  json_t *tx = json_array();
  char id[64], uid[32];
  for (int i = 0; i < BATCH_N; i++) {
    int u = (b + i) % N_USERS;
    snprintf(id, sizeof id, "ct-%d-%d", b, i);
    snprintf(uid, sizeof uid, "cu-%d", u);
    json_array_append_new(tx, crash_text(id, uid, b * BATCH_N + i));
  }
  long long a = -1, d = -1;
  long status = ingest(srv, "texts", tx, &a, &d);
  CHECK_INT(status, 200);
  CHECK_INT(a, BATCH_N);
  if (status != 200) {
    json_decref(tx);
    return -1;
  }
  for (int i = 0; i < BATCH_N; i++) {
    snprintf(id, sizeof id, "ct-%d-%d", b, i);
    json_object_set_new(st->acked, id, json_true());
    st->texts[(b + i) % N_USERS]++;
  }
  json_decref(st->last_texts);
  st->last_texts = tx;
  return 0;
}

static int post_events(sd_server *srv, crash_state *st, int b) {
  json_t *ev = json_array();
  char id[64], uid[32];
  for (int i = 0; i < BATCH_N; i++) {
    snprintf(id, sizeof id, "ce-%d-%d", b, i);
    snprintf(uid, sizeof uid, "cu-%d", i % N_USERS);
    json_array_append_new(ev, crash_event(id, uid, b * BATCH_N + i));
  }
  long long a = -1, d = -1;
  long status = ingest(srv, "events", ev, &a, &d);
  json_decref(ev);
  CHECK_INT(status, 200);
  CHECK_INT(a, BATCH_N);
  if (status != 200)
    return -1;
  for (int i = 0; i < BATCH_N; i++)
    st->events[i % N_USERS]++;
  return 0;
}

/* ---- a batch in flight from another thread while the server dies ---- */

typedef struct {
  sd_server *srv;
  const char *kind;
  json_t *items;
  long status;
} inflight_arg;

static void *inflight_main(void *p) {
  inflight_arg *a = p;
  a->status = ingest(a->srv, a->kind, a->items, NULL, NULL);
  http_thread_done();
  return NULL;
}

/* Batch k of INFLIGHT_N items for user cf-<k>: texts when k is even. */
static json_t *inflight_items(int k) {
  json_t *items = json_array();
  char id[64], uid[32];
  snprintf(uid, sizeof uid, "cf-%d", k);
  for (int i = 0; i < INFLIGHT_N; i++) {
    snprintf(id, sizeof id, "cf-%d-%d", k, i);
    json_array_append_new(items, k % 2 == 0 ? crash_text(id, uid, i)
                                            : crash_event(id, uid, i));
  }
  return items;
}

static int kill_inflight(sd_server *srv, crash_state *st, int k) {
  static const long delay_ms[N_INFLIGHT] = {150, 30, 400};
  inflight_arg a = {srv, k % 2 == 0 ? "texts" : "events", inflight_items(k),
                    -1};
  pthread_t t;
  int started = pthread_create(&t, NULL, inflight_main, &a) == 0;
  CHECK(started);
  sleep_ms(delay_ms[k]);
  srv_kill9(srv);
  if (started)
    pthread_join(t, NULL);
  st->inflight_status[k] = a.status;
  fprintf(stderr, "in-flight batch %d (%s): status %ld\n", k, a.kind, a.status);
  json_decref(a.items);
  st->restarts++;
  int rc = srv_restart(srv);
  CHECK_INT(rc, 0);
  return rc;
}

/* ---- the run ---- */

static int run_batches(sd_server *srv, crash_state *st, double t0) {
  int k = 0;
  for (int b = 0; b < N_BATCHES; b++) {
    if (now_s() - t0 > TIME_LIMIT_S * harness_timeout_scale()) {
      fprintf(stderr, "time limit reached at batch %d\n", b);
      CHECK(!"time limit");
      return -1;
    }
    if (post_texts(srv, st, b) != 0)
      return -1;
    if (b % 3 == 0) { /* kill right after the texts' 200 */
      if (crash_restart(srv, st) != 0)
        return -1;
      crash_retry(srv, st);
    }
    if (post_events(srv, st, b) != 0)
      return -1;
    if (b % 6 == 4) { /* kill a few ms after the events' 200 */
      sleep_ms(2L * b);
      if (crash_restart(srv, st) != 0)
        return -1;
      crash_retry(srv, st);
    }
    if (b % 8 == 7 && k < N_INFLIGHT) {
      if (kill_inflight(srv, st, k++) != 0)
        return -1;
      crash_retry(srv, st);
    }
  }
  return 0;
}

/* The assignment lines per id (id -> count) of the intents space. */
static json_t *count_assigned(sd_server *srv) {
  long status = 0;
  int bad = 0;
  json_t *seen = assigned_id_counts(srv, "intents", &status, &bad);
  CHECK_INT(status, 200);
  CHECK_INT(bad, 0);
  return seen ? seen : json_object();
}

/* Each in-flight texts batch: all there (required after a 200) or none. */
static void verify_inflight_texts(const crash_state *st, const json_t *seen) {
  long long n[N_INFLIGHT] = {0};
  const char *id;
  json_t *v;
  json_object_foreach((json_t *)seen, id, v) {
    int k = -1;
    if (sscanf(id, "cf-%d-", &k) == 1 && k >= 0 && k < N_INFLIGHT)
      n[k]++;
  }
  for (int k = 0; k < N_INFLIGHT; k += 2) {
    fprintf(stderr, "in-flight texts batch %d: %lld of %d stored\n", k, n[k],
            INFLIGHT_N);
    if (st->inflight_status[k] == 200)
      CHECK_INT(n[k], INFLIGHT_N);
    else
      CHECK(n[k] == 0 || n[k] == INFLIGHT_N);
  }
}

static void verify_texts(sd_server *srv, const crash_state *st) {
  CHECK_INT(wait_model(srv, "intents", 30), 0);
  json_t *seen = count_assigned(srv);
  int reported = 0;
  const char *id;
  json_t *v;
  json_object_foreach(st->acked, id, v) {
    long long n = json_path_int(seen, id, 0);
    CHECK_INT(n, 1); /* every acknowledged text exactly once */
    if (n != 1 && reported++ < 10)
      fprintf(stderr, "  acknowledged text %s seen %lld times\n", id, n);
  }
  json_object_foreach(seen, id, v) {
    CHECK_INT(json_integer_value(v), 1); /* no line twice */
    int known = json_object_get(st->acked, id) || strncmp(id, "cf-", 3) == 0;
    CHECK(known);
    if (!known && reported++ < 10)
      fprintf(stderr, "  unknown id %s\n", id);
  }
  verify_inflight_texts(st, seen);
  json_decref(seen);
}

static void verify_users(sd_server *srv, const crash_state *st) {
  char uid[32];
  for (int u = 0; u < N_USERS; u++) {
    long long ne = -1, nt = -1;
    snprintf(uid, sizeof uid, "cu-%d", u);
    CHECK_INT(get_user_counts(srv, uid, &ne, &nt), 0);
    CHECK_INT(ne, st->events[u]);
    CHECK_INT(nt, st->texts[u]);
  }
  for (int k = 0; k < N_INFLIGHT; k++) {
    long long ne = -1, nt = -1;
    snprintf(uid, sizeof uid, "cf-%d", k);
    long status = get_user_counts(srv, uid, &ne, &nt);
    long long n = k % 2 == 0 ? nt : ne;
    if (st->inflight_status[k] == 200)
      CHECK(status == 0 && n == INFLIGHT_N);
    else
      CHECK(status == 404 || (status == 0 && n == INFLIGHT_N));
  }
}

static void run(sd_server *srv, crash_state *st, double t0) {
  if (run_batches(srv, st, t0) == 0) {
    verify_texts(srv, st);
    verify_users(srv, st);
  }
  http_resp r = http_req(srv, "GET", "/healthz", NULL, NULL, 0);
  CHECK_INT(r.status, 200); /* the server still answers */
  http_resp_free(&r);
  CHECK_INT(srv_stop(srv), 0);
  fprintf(stderr, "%d restarts, %zu acknowledged texts\n", st->restarts,
          json_object_size(st->acked));
}

int main(void) {
  double t0 = now_s();
  const char *const args[] = {"--train-min", "30", "--k", "3", NULL};
  crash_state st;
  memset(&st, 0, sizeof st);
  st.acked = json_object();
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (srv) {
    run(srv, &st, t0);
    if (check_failures)
      srv_dump_log(srv);
    srv_free(srv);
  }
  double elapsed = now_s() - t0;
  fprintf(stderr, "test_crash took %.1f s\n", elapsed);
  CHECK(elapsed < TIME_LIMIT_S * harness_timeout_scale()); /* x30 under valgrind */
  json_decref(st.acked);
  json_decref(st.last_texts);
  http_thread_done();
  return check_done("test_crash");
}
