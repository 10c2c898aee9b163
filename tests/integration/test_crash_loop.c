/*
 * test_crash_loop.c -- "nothing acknowledged is lost" under a crash loop
 * (docs/API.md, Conventions: durability, atomic batches, idempotence).
 *
 * A model is trained first, so every restart must load it. Then
 * N_CLIENTS threads ingest batches of texts or events with distinct ids
 * (each client records which batches got a 200) while the main thread
 * SIGKILLs the server after random delays of 20-620 ms (fixed seed) and
 * restarts it on the same database, MIN_KILLS to MAX_KILLS times. A client retries a batch
 * until it is acknowledged (a retry of a batch stored before the kill
 * counts as duplicates); now and then it re-posts an acknowledged batch,
 * which must count as all duplicates. After every restart /readyz is 200
 * and the model version is the trained one. At the end every acknowledged
 * item is there exactly once -- through the API (assignments stream, user
 * counts) and in the SQLite file itself -- PRAGMA integrity_check is ok
 * and the server stops gracefully. Bounded to about 90 s.
 *
 * The main thread is the killer: servers are started from the main thread
 * (harness.h). Clients read the server's port, which changes with every
 * restart, from cur_port under port_mu.
 */
#include "check.h"
#include "harness.h"
#include "harness_db.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define N_CLIENTS 4
#define BATCH_N 8      /* items per batch */
#define N_USERS 4      /* users per client: lu-<client>-<u> */
#define MAX_BATCHES 4000
#define MIN_KILLS 20
#define MAX_KILLS 30
#define KILL_PHASE_S 60.0 /* no kill starts later (unless < MIN_KILLS) */
#define TIME_LIMIT_S 90.0
#define SEED 20261127u
#define TRAIN_TEXTS 60

static pthread_mutex_t port_mu = PTHREAD_MUTEX_INITIALIZER;
static int cur_port;
static atomic_int stop_clients;

typedef struct {
  int id;
  sd_server local; /* a copy of the server whose port follows cur_port */
  unsigned seed;
  int acked;       /* batches 0..acked-1 got a 200 */
  int first_try;   /* acknowledged at the first attempt */
  int stored_lost; /* retries that found the batch stored (200 lost) */
  int failed;      /* attempts without an answer or with 503 */
  int dup_checks, dup_bad; /* re-posts of acknowledged batches */
  int bad;         /* other answers: partial counts, 4xx, other 5xx */
  long long events[N_USERS], texts[N_USERS];
} client;

/* Batch b of client c: texts when (b + c) is even, else events. */
static int batch_is_texts(int c, int b) { return (b + c) % 2 == 0; }

static json_t *batch_items(int c, int b) {
  json_t *items = json_array();
  char id[64], uid[32];
  for (int i = 0; i < BATCH_N; i++) {
    snprintf(id, sizeof id, "%s-%d-%d-%d", batch_is_texts(c, b) ? "lt" : "le",
             c, b, i);
    snprintf(uid, sizeof uid, "lu-%d-%d", c, (b + i) % N_USERS);
    json_array_append_new(items, batch_is_texts(c, b)
                                     ? crash_text(id, uid, b * BATCH_N + i)
                                     : crash_event(id, uid, b * BATCH_N + i));
  }
  return items;
}

static long client_post(client *cl, const json_t *items, int texts,
                        long long *a, long long *d) {
  pthread_mutex_lock(&port_mu);
  cl->local.port = cur_port;
  pthread_mutex_unlock(&port_mu);
  return ingest(&cl->local, texts ? "texts" : "events", items, a, d);
}

/* Posts batch b until it gets a 200 (or the run is over). 0 when acked. */
static int client_batch(client *cl, int b, int final) {
  int texts = batch_is_texts(cl->id, b);
  json_t *items = batch_items(cl->id, b);
  int tries = 0, rc = -1;
  while (rc != 0 && (!final || tries < 500)) {
    long long a = -1, d = -1;
    long st = client_post(cl, items, texts, &a, &d);
    tries++;
    if (st == 200 && a == BATCH_N && d == 0) {
      rc = 0;
      cl->first_try += tries == 1;
    } else if (st == 200 && a == 0 && d == BATCH_N && tries > 1) {
      rc = 0; /* stored before the kill; its 200 was lost */
      cl->stored_lost++;
    } else if (st == 0 || st == 503) {
      cl->failed++;
      sleep_ms(10 + (long)(rand_r(&cl->seed) % 20));
    } else {
      cl->bad++;
      fprintf(stderr, "client %d batch %d: status %ld accepted %lld "
              "duplicates %lld (try %d)\n", cl->id, b, st, a, d, tries);
      sleep_ms(50);
    }
  }
  if (rc == 0 && rand_r(&cl->seed) % 4 == 0) { /* re-post: all duplicates */
    long long a = -1, d = -1;
    if (client_post(cl, items, texts, &a, &d) == 200) {
      cl->dup_checks++;
      cl->dup_bad += !(a == 0 && d == BATCH_N);
    }
  }
  json_decref(items);
  return rc;
}

static void client_count(client *cl, int b) {
  for (int i = 0; i < BATCH_N; i++) {
    long long *n = batch_is_texts(cl->id, b) ? cl->texts : cl->events;
    n[(b + i) % N_USERS]++;
  }
}

/* Ingests batches until stop_clients; the batch under way then is still
 * retried until acknowledged, so every attempted batch ends acknowledged. */
static void *client_main(void *p) {
  client *cl = p;
  http_set_quiet(1); /* connection failures are counted, not printed */
  for (int b = 0; b < MAX_BATCHES; b++) {
    int final = atomic_load(&stop_clients);
    if (final && b > 0)
      break;
    if (client_batch(cl, b, final) != 0)
      break;
    cl->acked = b + 1;
    client_count(cl, b);
  }
  http_thread_done();
  return NULL;
}

/* ---- the killer (main thread) ---- */

static json_t *model_version(sd_server *srv) {
  json_t *sp = get_space(srv, "intents");
  json_t *v = sp ? json_incref(json_object_get(sp, "model_version")) : NULL;
  json_decref(sp);
  return v;
}

/* After a restart: ready, and the trained model is the one loaded. */
static void check_restarted(sd_server *srv, const json_t *version) {
  http_resp r = http_req(srv, "GET", "/readyz", NULL, NULL, 0);
  CHECK_INT(r.status, 200);
  http_resp_free(&r);
  json_t *v = model_version(srv);
  int same = v && json_equal(v, version);
  CHECK(same);
  if (!same) {
    char *got = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
    fprintf(stderr, "model version after a restart: %s\n", got ? got : "none");
    free(got);
  }
  json_decref(v);
}

/* Kills and restarts the server after random delays; returns the kills
 * survived (restarted, ready, same model). */
static int kill_loop(sd_server *srv, const json_t *version, double t0) {
  unsigned seed = SEED;
  int kills = 0;
  while (kills < MAX_KILLS &&
         (now_s() - t0 < KILL_PHASE_S || kills < MIN_KILLS) &&
         now_s() - t0 < TIME_LIMIT_S - 20) {
    sleep_ms(20 + (long)(rand_r(&seed) % 600));
    srv_kill9(srv);
    if (srv_restart(srv) != 0) {
      CHECK(!"restart after SIGKILL");
      return kills;
    }
    pthread_mutex_lock(&port_mu);
    cur_port = srv->port;
    pthread_mutex_unlock(&port_mu);
    check_restarted(srv, version);
    kills++;
  }
  return kills;
}

/* ---- verification ---- */

/* Every id of the acknowledged batches of kind lt/le once in counts, and
 * no other id of that kind; returns the items checked. */
static long check_ids(const client *cls, const json_t *counts, int texts,
                      const char *where) {
  long n = 0;
  int reported = 0;
  char id[64];
  for (int c = 0; c < N_CLIENTS; c++)
    for (int b = 0; b < cls[c].acked; b++)
      for (int i = 0; i < BATCH_N && batch_is_texts(c, b) == texts; i++) {
        snprintf(id, sizeof id, "%s-%d-%d-%d", texts ? "lt" : "le", c, b, i);
        long long k = json_integer_value(json_object_get(counts, id));
        CHECK_INT(k, 1);
        if (k != 1 && reported++ < 10)
          fprintf(stderr, "  %s: %s seen %lld times\n", where, id, k);
        n++;
      }
  CHECK_INT((long)json_object_size(counts), n); /* nothing unacknowledged */
  return n;
}

static void check_users(sd_server *srv, const client *cls) {
  char uid[32];
  for (int c = 0; c < N_CLIENTS; c++)
    for (int u = 0; u < N_USERS; u++) {
      long long ne = -1, nt = -1;
      snprintf(uid, sizeof uid, "lu-%d-%d", c, u);
      CHECK_INT(get_user_counts(srv, uid, &ne, &nt), 0);
      CHECK_INT(ne, cls[c].events[u]);
      CHECK_INT(nt, cls[c].texts[u]);
    }
}

/* Through the API: the assignments stream (texts) and user counts. */
static long check_api(sd_server *srv, const client *cls) {
  long status = 0;
  int bad = 0;
  json_t *seen = assigned_id_counts(srv, "intents", &status, &bad);
  CHECK_INT(status, 200);
  CHECK_INT(bad, 0);
  json_t *ours = json_object(); /* the lt- ids only */
  const char *id;
  json_t *v;
  json_object_foreach(seen, id, v) {
    if (strncmp(id, "lt-", 3) == 0)
      json_object_set(ours, id, v);
  }
  long n = check_ids(cls, ours, 1, "assignments");
  json_decref(ours);
  json_decref(seen);
  check_users(srv, cls);
  return n;
}

/* In the SQLite file, with the server stopped. */
static long check_file(const sd_server *srv, const client *cls) {
  json_t *t = db_key_counts(srv->db, "SELECT text_id, COUNT(*) FROM texts "
                                     "WHERE text_id LIKE 'lt-%' GROUP BY 1");
  json_t *e = db_key_counts(srv->db, "SELECT event_id, COUNT(*) FROM events "
                                     "WHERE event_id LIKE 'le-%' GROUP BY 1");
  CHECK(t != NULL && e != NULL);
  long n = 0;
  if (t && e)
    n = check_ids(cls, t, 1, "texts table") + check_ids(cls, e, 0, "events table");
  json_decref(t);
  json_decref(e);
  char msg[256];
  int ok = db_integrity_ok(srv->db, msg, sizeof msg);
  CHECK(ok);
  fprintf(stderr, "PRAGMA integrity_check: %s\n", msg);
  return n;
}

/* ---- the run ---- */

static json_t *train_model(sd_server *srv) {
  json_t *tx = planted_texts("seed-", 0, TRAIN_TEXTS, "su-", 0);
  CHECK_INT(ingest(srv, "texts", tx, NULL, NULL), 200);
  json_decref(tx);
  CHECK_INT(wait_model(srv, "intents", 30), 0);
  json_t *v = model_version(srv);
  CHECK(v && model_present(v));
  return v;
}

static void report(const client *cls, int kills, long api_n, long file_n) {
  int acked = 0, lost = 0, failed = 0, dups = 0, dup_bad = 0, bad = 0;
  for (int c = 0; c < N_CLIENTS; c++) {
    acked += cls[c].acked;
    lost += cls[c].stored_lost;
    failed += cls[c].failed;
    dups += cls[c].dup_checks;
    dup_bad += cls[c].dup_bad;
    bad += cls[c].bad;
  }
  fprintf(stderr, "crash loop: %d kills survived; %d batches (%d items) "
          "acknowledged by %d clients; %d attempts failed during kills; %d "
          "retries found their batch stored; %d duplicate re-posts (%d not "
          "all duplicates); %d bad answers; items checked: %ld via the API "
          "(texts), %ld in the SQLite file\n", kills, acked, acked * BATCH_N,
          N_CLIENTS, failed, lost, dups, dup_bad, bad, api_n, file_n);
  CHECK_INT(dup_bad, 0);
  CHECK_INT(bad, 0);
}

static void run(sd_server *srv, client *cls, double t0) {
  json_t *version = train_model(srv);
  cur_port = srv->port;
  pthread_t th[N_CLIENTS];
  int started[N_CLIENTS];
  for (int c = 0; c < N_CLIENTS; c++) {
    cls[c].id = c;
    cls[c].seed = SEED + (unsigned)c;
    cls[c].local = *srv;
    started[c] = pthread_create(&th[c], NULL, client_main, &cls[c]) == 0;
    CHECK(started[c]);
  }
  int kills = kill_loop(srv, version, t0);
  atomic_store(&stop_clients, 1);
  for (int c = 0; c < N_CLIENTS; c++)
    if (started[c])
      pthread_join(th[c], NULL);
  CHECK(kills >= MIN_KILLS);
  long api_n = check_api(srv, cls);
  CHECK_INT(srv_stop(srv), 0); /* graceful */
  long file_n = check_file(srv, cls);
  report(cls, kills, api_n, file_n);
  json_decref(version);
}

int main(void) {
  double t0 = now_s();
  const char *const args[] = {"--train-min", "30", "--k", "3",
                              "--recluster-interval", "0", NULL};
  static client cls[N_CLIENTS];
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (srv) {
    run(srv, cls, t0);
    if (check_failures)
      srv_dump_log(srv);
    srv_free(srv);
  }
  double elapsed = now_s() - t0;
  fprintf(stderr, "test_crash_loop took %.1f s\n", elapsed);
  CHECK(elapsed < TIME_LIMIT_S + 15);
  http_thread_done();
  return check_done("test_crash_loop");
}
