/*
 * loadgen.c -- the HTTP client of the benchmark suite (issue 7): posts
 * ingest batches to segmentd from C concurrent clients (libcurl, one
 * keep-alive connection each) and times batch lookups. Batches are built in
 * memory while running (a few hundred microseconds per 1,000 items), so the
 * client costs little of the machine the server runs on.
 *
 *   loadgen events URL ROWS USERS BATCH CLIENTS [RATE] [SEED]
 *     posts ROWS events (bench_events.h rows, stream SEED, users u0..uUSERS-1)
 *     to URL/v1/events in batches of BATCH; RATE > 0 paces the batches to
 *     RATE rows/s overall (0: as fast as the server answers).
 *   loadgen texts URL ROWS USERS BATCH CLIENTS TEXTFILE [SEED]
 *     posts ROWS texts to URL/v1/texts; TEXTFILE holds one JSON string
 *     literal per line (cycled), text ids "t<SEED>-<i>", random users.
 *   loadgen lookup URL USERS IDS REPS [SEED]
 *     POSTs {"user_ids": [IDS random known ids]} to URL/v1/segments/lookup
 *     REPS times on one connection (after one warm-up) and reports the
 *     median and p90 of the client-side time (request sent to answer read).
 *
 * Env LOADGEN_DEADLINE=S: no batch starts later than S seconds after the
 * first (the rows posted are reported), so a load phase stays bounded.
 *
 * A 429 or 503 answer to a batch is counted and the batch retried after
 * 20 ms; any other non-200 is counted and the batch dropped. Output: one
 * JSON line (rows accepted, seconds, rows/s, status counts, batch latency).
 */
#include "bench_events.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef enum { M_EVENTS, M_TEXTS } mode_t_;

static struct {
  mode_t_ mode;
  const char *url;
  long rows, users, batch, clients;
  double rate;
  uint64_t seed;
  char **texts;
  long ntexts;
  int64_t now_ms;
  double t0;
  double deadline; /* seconds after t0 after which no batch starts (0: none) */
} G;

static atomic_long next_batch, rows_ok, st_200, st_429, st_503, st_5xx,
    st_other, st_fail;
static double *lat; /* ms per batch, by batch index */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_s(double s) {
  if (s <= 0) return;
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
}

typedef struct {
  char *p;
  size_t len, cap;
} buf;

static void put(buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t nc = b->cap ? b->cap * 2 : 65536;
    while (nc < b->len + n + 1) nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np) abort();
    b->p = np, b->cap = nc;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

static size_t sink(char *p, size_t s, size_t n, void *ud) {
  buf *b = ud;
  if (b) put(b, p, s * n);
  return s * n;
}

static void build_events(buf *b, long first, long n) {
  char line[512];
  puts_(b, "{\"events\":[");
  for (long i = 0; i < n; i++) {
    bench_event e;
    bench_event_make(G.seed, (uint64_t)(first + i), (uint64_t)G.users,
                     G.now_ms, &e);
    int k = snprintf(line, sizeof line,
                     "%s{\"event_id\":\"%s\",\"user_id\":\"%s\",\"type\":\"%s\","
                     "\"ts\":%" PRId64 ",\"properties\":%s}",
                     i ? "," : "", e.event_id, e.user_id, e.type, e.ts, e.props);
    put(b, line, (size_t)k);
  }
  puts_(b, "]}");
}

static void build_texts(buf *b, long first, long n) {
  char head[160];
  puts_(b, "{\"texts\":[");
  for (long i = 0; i < n; i++) {
    long r = first + i;
    uint64_t u = bench_mix(G.seed * 31 + (uint64_t)r) % (uint64_t)G.users;
    int k = snprintf(head, sizeof head,
                     "%s{\"text_id\":\"t%" PRIu64 "-%ld\",\"user_id\":\"u%" PRIu64
                     "\",\"text\":",
                     i ? "," : "", G.seed, r, u);
    put(b, head, (size_t)k);
    puts_(b, G.texts[r % G.ntexts]);
    puts_(b, "}");
  }
  puts_(b, "]}");
}

static void *client(void *arg) {
  (void)arg;
  CURL *h = curl_easy_init();
  char url[512];
  snprintf(url, sizeof url, "%s/v1/%s", G.url,
           G.mode == M_EVENTS ? "events" : "texts");
  struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
  hd = curl_slist_append(hd, "Expect:");
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
  curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
  buf b = {0};
  long nb = (G.rows + G.batch - 1) / G.batch;
  for (;;) {
    if (G.deadline > 0 && now_s() - G.t0 > G.deadline) break;
    long k = atomic_fetch_add(&next_batch, 1);
    if (k >= nb) break;
    long first = k * G.batch, n = G.rows - first < G.batch ? G.rows - first : G.batch;
    b.len = 0;
    if (G.mode == M_EVENTS) build_events(&b, first, n);
    else build_texts(&b, first, n);
    if (G.rate > 0) sleep_s(G.t0 + (double)first / G.rate - now_s());
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, b.p);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b.len);
    for (;;) {
      double t = now_s();
      CURLcode rc = curl_easy_perform(h);
      long code = 0;
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
      if (rc != CURLE_OK) {
        atomic_fetch_add(&st_fail, 1);
        sleep_s(0.05);
        break;
      }
      if (code == 200) {
        lat[k] = 1e3 * (now_s() - t);
        atomic_fetch_add(&st_200, 1);
        atomic_fetch_add(&rows_ok, n);
        break;
      }
      if (code == 429 || code == 503) {
        atomic_fetch_add(code == 429 ? &st_429 : &st_503, 1);
        sleep_s(0.02);
        continue;
      }
      atomic_fetch_add(code >= 500 ? &st_5xx : &st_other, 1);
      break;
    }
  }
  free(b.p);
  curl_slist_free_all(hd);
  curl_easy_cleanup(h);
  return NULL;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double pct(double *v, long n, double p) {
  if (n <= 0) return 0;
  long i = (long)(p * (double)(n - 1) + 0.5);
  return v[i];
}

static int load_texts(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  long cap_t = 0;
  while ((n = getline(&line, &cap, f)) > 0) {
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    if (n == 0) continue;
    if (G.ntexts == cap_t) {
      cap_t = cap_t ? cap_t * 2 : 1024;
      G.texts = realloc(G.texts, (size_t)cap_t * sizeof(char *));
      if (!G.texts) return -1;
    }
    G.texts[G.ntexts++] = strdup(line);
  }
  free(line);
  fclose(f);
  return G.ntexts > 0 ? 0 : -1;
}

static int run_ingest(void) {
  struct timespec wall;
  clock_gettime(CLOCK_REALTIME, &wall);
  G.now_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
  long nb = (G.rows + G.batch - 1) / G.batch;
  lat = calloc((size_t)nb, sizeof(double));
  pthread_t *th = calloc((size_t)G.clients, sizeof(pthread_t));
  if (!lat || !th) return 1;
  G.t0 = now_s();
  for (long i = 0; i < G.clients; i++) pthread_create(&th[i], NULL, client, NULL);
  for (long i = 0; i < G.clients; i++) pthread_join(th[i], NULL);
  double secs = now_s() - G.t0;
  long ok = 0;
  for (long i = 0; i < nb; i++)
    if (lat[i] > 0) lat[ok++] = lat[i];
  qsort(lat, (size_t)ok, sizeof(double), cmp_d);
  printf("{\"mode\": \"%s\", \"rows\": %ld, \"batch\": %ld, \"clients\": %ld, "
         "\"rate\": %.0f, \"seconds\": %.3f, \"rows_per_s\": %.0f, "
         "\"s200\": %ld, \"s429\": %ld, \"s503\": %ld, \"s5xx\": %ld, "
         "\"other\": %ld, \"failed\": %ld, \"batch_ms_p50\": %.2f, "
         "\"batch_ms_p99\": %.2f}\n",
         G.mode == M_EVENTS ? "events" : "texts", atomic_load(&rows_ok),
         G.batch, G.clients, G.rate, secs, (double)atomic_load(&rows_ok) / secs,
         atomic_load(&st_200), atomic_load(&st_429), atomic_load(&st_503),
         atomic_load(&st_5xx), atomic_load(&st_other), atomic_load(&st_fail),
         pct(lat, ok, 0.5), pct(lat, ok, 0.99));
  free(lat), free(th);
  return atomic_load(&st_fail) || atomic_load(&st_5xx) || atomic_load(&st_other);
}

/* CURLOPT_HEADERFUNCTION: the app;dur= of a Server-Timing header (ms). */
static size_t timing_header(char *p, size_t size, size_t n, void *ud) {
  size_t len = size * n;
  static const char key[] = "server-timing: app;dur=";
  if (len > sizeof(key) - 1 && !strncasecmp(p, key, sizeof(key) - 1))
    *(double *)ud = strtod(p + sizeof(key) - 1, NULL);
  return len;
}

/* The body of lookup batch r: ids random known ids. */
static void lookup_body(buf *b, long users, long ids, long r) {
  char tmp[48];
  b->len = 0;
  puts_(b, "{\"user_ids\":[");
  for (long i = 0; i < ids; i++) {
    uint64_t u = bench_mix(G.seed * 977 + (uint64_t)((r + 1) * ids + i)) %
                 (uint64_t)users;
    int k = snprintf(tmp, sizeof tmp, "%s\"u%" PRIu64 "\"", i ? "," : "", u);
    put(b, tmp, (size_t)k);
  }
  puts_(b, "]}");
}

typedef struct {
  double *client, *server; /* ms per batch */
  long bad, found;
  size_t bytes;
} lookup_pass;

/* POSTs batch r once; its times into pass slot `slot` (-1: not kept). */
static void lookup_once(CURL *h, buf *b, buf *resp, long ids, lookup_pass *ps,
                        long slot) {
  double server = -1;
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, b->p);
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->len);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &server);
  resp->len = 0;
  double t0 = now_s();
  CURLcode rc = curl_easy_perform(h);
  double ms = 1e3 * (now_s() - t0);
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  if (rc != CURLE_OK || code != 200) ps->bad++;
  if (slot < 0) return;
  ps->client[slot] = ms;
  ps->server[slot] = server;
  ps->bytes = resp->len;
  /* answers with an error member are users the server did not find */
  long errs = 0;
  for (const char *p = resp->p; p && (p = strstr(p, "\"error\"")); p++) errs++;
  ps->found += ids - errs;
}

/* Batch lookups: each of reps batches of new random ids is sent twice in
 * a row: the first answer is computed or cached as the server's state has
 * it, the second comes from the lookup cache (when it is on). Client and
 * server (Server-Timing) times, medians. */
static int run_lookup(long users, long ids, long reps) {
  buf b = {0}, resp = {0};
  CURL *h = curl_easy_init();
  char url[512];
  snprintf(url, sizeof url, "%s/v1/segments/lookup", G.url);
  struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
  hd = curl_slist_append(hd, "Expect:");
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, timing_header);
  curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
  lookup_pass ps[2] = {{0}};
  for (int p = 0; p < 2; p++) {
    ps[p].client = calloc((size_t)reps, sizeof(double));
    ps[p].server = calloc((size_t)reps, sizeof(double));
  }
  for (long r = -1; r < reps; r++) { /* r = -1: warm-up */
    lookup_body(&b, users, ids, r);
    lookup_once(h, &b, &resp, ids, &ps[0], r);
    lookup_once(h, &b, &resp, ids, &ps[1], r);
  }
  for (int p = 0; p < 2; p++) {
    qsort(ps[p].client, (size_t)reps, sizeof(double), cmp_d);
    qsort(ps[p].server, (size_t)reps, sizeof(double), cmp_d);
  }
  printf("{\"mode\": \"lookup\", \"ids\": %ld, \"reps\": %ld, \"ms_median\": "
         "%.3f, \"ms_p90\": %.3f, \"ms_min\": %.3f, \"server_ms_median\": %.3f, "
         "\"repeat_ms_median\": %.3f, \"repeat_server_ms_median\": %.3f, "
         "\"bad\": %ld, \"found_share\": %.4f, \"answer_bytes\": %zu}\n",
         ids, reps, pct(ps[0].client, reps, 0.5), pct(ps[0].client, reps, 0.9),
         ps[0].client[0], pct(ps[0].server, reps, 0.5),
         pct(ps[1].client, reps, 0.5), pct(ps[1].server, reps, 0.5),
         ps[0].bad + ps[1].bad, (double)ps[0].found / (double)(ids * reps),
         ps[0].bytes);
  for (int p = 0; p < 2; p++) free(ps[p].client), free(ps[p].server);
  free(b.p), free(resp.p);
  curl_slist_free_all(hd);
  curl_easy_cleanup(h);
  return ps[0].bad + ps[1].bad != 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: see the head of bench/loadgen.c\n");
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (getenv("LOADGEN_DEADLINE")) G.deadline = atof(getenv("LOADGEN_DEADLINE"));
  G.url = argv[2];
  G.seed = 1;
  int rc;
  if (!strcmp(argv[1], "lookup") && argc >= 6) {
    if (argc > 6) G.seed = strtoull(argv[6], NULL, 10);
    rc = run_lookup(atol(argv[3]), atol(argv[4]), atol(argv[5]));
  } else if ((!strcmp(argv[1], "events") || !strcmp(argv[1], "texts")) &&
             argc >= 7) {
    G.mode = !strcmp(argv[1], "events") ? M_EVENTS : M_TEXTS;
    G.rows = atol(argv[3]), G.users = atol(argv[4]);
    G.batch = atol(argv[5]), G.clients = atol(argv[6]);
    if (G.rows <= 0 || G.users <= 0 || G.batch <= 0 || G.clients <= 0) return 2;
    if (G.mode == M_EVENTS) {
      if (argc > 7) G.rate = atof(argv[7]);
      if (argc > 8) G.seed = strtoull(argv[8], NULL, 10);
    } else {
      if (argc < 8 || load_texts(argv[7]) < 0) {
        fprintf(stderr, "loadgen: cannot read texts\n");
        return 2;
      }
      if (argc > 8) G.seed = strtoull(argv[8], NULL, 10);
    }
    rc = run_ingest();
  } else {
    fprintf(stderr, "usage: see the head of bench/loadgen.c\n");
    return 2;
  }
  curl_global_cleanup();
  return rc;
}
