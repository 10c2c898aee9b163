/*
 * metrics_record.c -- the counters and histograms that requests, ingest,
 * the writer and re-clusters feed (see metrics.h), and their families.
 *
 * Everything lives in static tables of relaxed atomics: recording is two
 * or three uncontended-in-the-common-case atomic adds, with no lock and
 * no allocation. Requests are kept per (route slot, status slot): a route
 * slot is the router's table index, or one of the normalised methods of
 * requests no route took; a status slot is one of the statuses segmentd
 * sends, or "other". Only request series that have seen a request are
 * rendered; the fixed families (ingest kinds, spaces) always are.
 */
#include "metrics_int.h"

#include "segmentd/http.h"
#include "segmentd/ingest.h"
#include "segmentd/lookup_cache.h"
#include "segmentd/metrics.h"
#include "segmentd/snapshot.h"

#include <stdio.h>
#include <string.h>

/* ---- bucket bounds ---- */

static const double LE_SECONDS[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                    0.005,  0.01,    0.025,  0.05,  0.1,
                                    0.25,   0.5,     1,      2.5,   5,
                                    10,     30};
static const mhist_spec SPEC_SECONDS = {
    LE_SECONDS, sizeof(LE_SECONDS) / sizeof(*LE_SECONDS), 1e9};
static const double LE_ITEMS[] = {1,    10,   50,    100,   250,   500,
                                  1000, 2500, 5000, 10000, 50000, 100000};
static const mhist_spec SPEC_ITEMS = {
    LE_ITEMS, sizeof(LE_ITEMS) / sizeof(*LE_ITEMS), 1};
static const double LE_RECLUSTER[] = {0.1, 0.5, 1,   2.5, 5,    10,  30,
                                      60,  120, 300, 600, 1800, 3600};
static const mhist_spec SPEC_RECLUSTER = {
    LE_RECLUSTER, sizeof(LE_RECLUSTER) / sizeof(*LE_RECLUSTER), 1e9};

/* ---- requests ---- */

static const char *const METHODS[] = {"GET",   "HEAD",   "POST",   "PUT",
                                      "PATCH", "DELETE", "OPTIONS", "other"};
#define N_METHODS ((int)(sizeof(METHODS) / sizeof(*METHODS)))
static const int CODES[] = {200, 201, 202, 204, 304, 400, 401, 403, 404,
                            405, 409, 413, 415, 422, 429, 500, 503};
#define N_CODES ((int)(sizeof(CODES) / sizeof(*CODES)))
#define ROUTE_SLOTS (SD_METRICS_MAX_ROUTES + N_METHODS)

static mhist requests[ROUTE_SLOTS][N_CODES + 1];

static int method_slot(const char *m) {
  for (int i = 0; i < N_METHODS - 1; i++)
    if (!strcmp(m, METHODS[i])) return i;
  return N_METHODS - 1;
}

static int code_slot(int status) {
  for (int i = 0; i < N_CODES; i++)
    if (CODES[i] == status) return i;
  return N_CODES;
}

void sd_metrics_request(int route, const char *method, int status,
                        double seconds) {
  int slot = route >= 0 && route < SD_METRICS_MAX_ROUTES
                 ? route
                 : SD_METRICS_MAX_ROUTES + method_slot(method ? method : "");
  mh_observe(&requests[slot][code_slot(status)], &SPEC_SECONDS, seconds);
}

/* The labels of a request series: method, route, code. */
static void request_labels(int slot, int code, char *out, size_t cap) {
  static const char *const keys[] = {"method", "route", "code"};
  char num[16];
  const char *v[3];
  int matched = slot < SD_METRICS_MAX_ROUTES;
  v[0] = matched ? sd_route_method(slot)
                 : METHODS[slot - SD_METRICS_MAX_ROUTES];
  v[1] = matched ? sd_route_pattern(slot) : "unmatched";
  if (code < N_CODES) snprintf(num, sizeof(num), "%d", CODES[code]);
  else snprintf(num, sizeof(num), "other");
  v[2] = num;
  mt_labels(out, cap, keys, v, 3);
}

static void render_requests(mbuf *b) {
  static const char *const total = "segmentd_http_requests_total";
  static const char *const dur = "segmentd_http_request_duration_seconds";
  int routes = sd_route_count();
  char labels[512];
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 0)
      mt_family(b, total, "counter",
                "HTTP requests answered, by method, route pattern (unmatched: "
                "no route) and status code (HEAD counts with GET).");
    else
      mt_family(b, dur, "histogram",
                "Time from a request's headers to its reply's last byte.");
    for (int s = 0; s < ROUTE_SLOTS; s++) {
      if (s >= routes && s < SD_METRICS_MAX_ROUTES) continue;
      for (int c = 0; c <= N_CODES; c++) {
        uint64_t n = mh_count(&requests[s][c], &SPEC_SECONDS);
        if (!n) continue;
        request_labels(s, c, labels, sizeof(labels));
        if (pass == 0) mt_sample(b, total, labels, (double)n);
        else mh_render(b, dur, labels, &requests[s][c], &SPEC_SECONDS);
      }
    }
  }
}

/* ---- ingest, the writer, re-clusters ---- */

static const char *const KINDS[2] = {"events", "texts"};
static mhist ingest_batches[2];
static _Atomic uint64_t ingest_items[2][2]; /* [kind][accepted, duplicate] */
static _Atomic uint64_t queue_full;
static mhist commits;
static _Atomic int64_t wal_pages;
static _Atomic uint64_t checkpoints[2]; /* [thread, writer] */
static const char *const SPACES[SD_SPACES] = {"intents", "segments"};
static mhist reclusters[SD_SPACES][2]; /* [space][done, failed] */

void sd_metrics_ingest(int kind, size_t accepted, size_t duplicates) {
  if (kind != SD_BATCH_EVENTS && kind != SD_BATCH_TEXTS) return;
  int k = kind == SD_BATCH_TEXTS;
  mh_observe(&ingest_batches[k], &SPEC_ITEMS, (double)(accepted + duplicates));
  atomic_fetch_add_explicit(&ingest_items[k][0], accepted,
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&ingest_items[k][1], duplicates,
                            memory_order_relaxed);
}

void sd_metrics_queue_full(void) {
  atomic_fetch_add_explicit(&queue_full, 1, memory_order_relaxed);
}

void sd_metrics_commit(double seconds) {
  mh_observe(&commits, &SPEC_SECONDS, seconds);
}

void sd_metrics_wal_pages(int pages) {
  atomic_store_explicit(&wal_pages, pages, memory_order_relaxed);
}

void sd_metrics_checkpoint(int on_writer) {
  atomic_fetch_add_explicit(&checkpoints[on_writer != 0], 1, memory_order_relaxed);
}

void sd_metrics_recluster(int space, int ok, double seconds) {
  if (space < 0 || space >= SD_SPACES) return;
  mh_observe(&reclusters[space][!ok], &SPEC_RECLUSTER, seconds);
}

static void render_ingest(mbuf *b) {
  static const char *const keys[] = {"kind", "result"};
  static const char *const results[] = {"accepted", "duplicate"};
  char labels[128];
  mt_family(b, "segmentd_ingest_items_total", "counter",
            "Items of committed ingest batches, by kind and result "
            "(duplicate: an id already stored).");
  for (int k = 0; k < 2; k++)
    for (int r = 0; r < 2; r++) {
      const char *v[] = {KINDS[k], results[r]};
      mt_labels(labels, sizeof(labels), keys, v, 2);
      mt_sample(b, "segmentd_ingest_items_total", labels,
                (double)atomic_load_explicit(&ingest_items[k][r],
                                             memory_order_relaxed));
    }
  mt_family(b, "segmentd_ingest_batch_items", "histogram",
            "Items per committed ingest batch, by kind.");
  for (int k = 0; k < 2; k++) {
    mt_labels(labels, sizeof(labels), keys, &KINDS[k], 1);
    mh_render(b, "segmentd_ingest_batch_items", labels, &ingest_batches[k],
              &SPEC_ITEMS);
  }
}

static void render_writer(mbuf *b) {
  mt_metric(b, "segmentd_writer_queue_full_total", "counter",
            "Writer jobs (ingest batches, label and erasure writes) refused "
            "with 429 because the queue held --queue-max jobs.",
            (double)atomic_load_explicit(&queue_full, memory_order_relaxed));
  mt_family(b, "segmentd_sqlite_commit_duration_seconds", "histogram",
            "Duration of the writer's SQLite COMMIT (group commits of ingest, "
            "model installs, re-assignment steps, other writes).");
  mh_render(b, "segmentd_sqlite_commit_duration_seconds", "", &commits,
            &SPEC_SECONDS);
  mt_metric(b, "segmentd_sqlite_wal_pages", "gauge",
            "Pages in the WAL file after the writer's last commit (rewound to "
            "0 once a checkpoint has copied every page back and no reader "
            "needs them).",
            (double)atomic_load_explicit(&wal_pages, memory_order_relaxed));
  static const char *const key[] = {"by"};
  static const char *const by[] = {"thread", "writer"};
  char labels[64];
  mt_family(b, "segmentd_sqlite_checkpoints_total", "counter",
            "WAL checkpoints that ran: every 1,000 WAL pages on the checkpoint "
            "thread; past --sqlite-wal-mb the writer's catch-up that lets the WAL be "
            "rewound.");
  for (int i = 0; i < 2; i++) {
    mt_labels(labels, sizeof(labels), key, &by[i], 1);
    mt_sample(b, "segmentd_sqlite_checkpoints_total", labels,
              (double)atomic_load_explicit(&checkpoints[i], memory_order_relaxed));
  }
}

static void render_reclusters(mbuf *b) {
  static const char *const keys[] = {"space", "result"};
  static const char *const results[] = {"done", "failed"};
  char labels[128];
  mt_family(b, "segmentd_recluster_duration_seconds", "histogram",
            "Duration of re-cluster jobs (sample, fit, install and "
            "re-assignment), by space and result.");
  for (int s = 0; s < SD_SPACES; s++)
    for (int r = 0; r < 2; r++) {
      const char *v[] = {SPACES[s], results[r]};
      mt_labels(labels, sizeof(labels), keys, v, 2);
      mh_render(b, "segmentd_recluster_duration_seconds", labels,
                &reclusters[s][r], &SPEC_RECLUSTER);
    }
}

static void render_lookup_cache(mbuf *b) {
  sd_lookup_cache_stats st;
  sd_lookup_cache_stats_get(&st);
  mt_metric(b, "segmentd_lookup_cache_hits_total", "counter",
            "Segment answers served from the lookup cache.", (double)st.hits);
  mt_metric(b, "segmentd_lookup_cache_misses_total", "counter",
            "Segment answers computed from the database (not kept, changed "
            "since, older than --lookup-cache-ttl, or a new model).",
            (double)st.misses);
  mt_metric(b, "segmentd_lookup_cache_evictions_total", "counter",
            "Answers dropped to make room (--lookup-cache entries).",
            (double)st.evictions);
  mt_metric(b, "segmentd_lookup_cache_entries", "gauge",
            "Segment answers kept in the lookup cache.", (double)st.entries);
}

void metrics_render_recorded(mbuf *b) {
  render_requests(b);
  render_ingest(b);
  render_writer(b);
  render_reclusters(b);
  render_lookup_cache(b);
}
