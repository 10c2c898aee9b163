/*
 * metrics.c -- the Prometheus text exposition of segmentd (metrics.h): the
 * gauges read from the live state at each scrape, then the recorded
 * counters and histograms (metrics_record.c).
 */
#include "segmentd/metrics.h"

#include "metrics_int.h"

#include "segmentd/embed_queue.h"
#include "segmentd/err.h"
#include "segmentd/notify.h"
#include "segmentd/watch.h"
#include "segmentd/snapshot.h"
#include "segmentd/timeutil.h"

#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static double resident_bytes(void) {
  long pages = 0, rss = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f && fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
  if (f) fclose(f);
  return (double)rss * (double)sysconf(_SC_PAGESIZE);
}

static void spaces(mbuf *b, const sd_snapshot *snap) {
  static const struct {
    const char *name, *help;
  } fam[] = {
      {"segmentd_space_points", "Entities with a vector in the space."},
      {"segmentd_space_assigned", "Entities assigned to a cluster."},
      {"segmentd_model_version", "Version of the space's live model (0: none)."},
      {"segmentd_model_clusters", "Clusters of the space's live model."},
      {"segmentd_model_trained_timestamp_seconds",
       "When the live model was trained (Unix time, 0: none)."},
  };
  for (size_t f = 0; f < sizeof(fam) / sizeof(*fam); f++) {
    mt_family(b, fam[f].name, "gauge", fam[f].help);
    for (int s = 0; s < SD_SPACES && snap; s++) {
      const sd_snap_space *sp = &snap->spaces[s];
      double v = f == 0   ? (double)sp->points
                 : f == 1 ? (double)sp->assigned
                 : f == 2 ? (double)sp->version
                 : f == 3 ? (double)(sp->has_model ? sp->k : 0)
                          : (double)sp->trained_at / 1e3;
      char labels[64];
      mt_labels(labels, sizeof(labels), (const char *[]){"space"}, &sp->name,
                1);
      mt_sample(b, fam[f].name, labels, v);
    }
  }
}

static void embed_failures(mbuf *b, const sd_embedq_stats *s) {
  static const char *const reasons[] = {"timeout", "busy", "http", "bad_reply",
                                        "transport"};
  const int64_t v[] = {s->timeouts, s->busy, s->http_errors, s->bad_replies,
                       s->transport};
  mt_family(b, "segmentd_embed_request_failures_total", "counter",
            "Failed embedding requests by reason (busy: HTTP 429/503).");
  for (size_t i = 0; i < 5; i++)
    mb_printf(b, "segmentd_embed_request_failures_total{reason=\"%s\"} %lld\n",
              reasons[i], (long long)v[i]);
}

static void embed(mbuf *b, sd_core *core, sd_embedq *q) {
  int64_t pending, failed;
  sd_embedq_stats s;
  sd_core_embed_counts(core, &pending, &failed);
  sd_embedq_get_stats(q, &s);
  double age = pending > 0 ? sd_embedq_oldest_pending() : 0;
  mt_metric(b, "segmentd_embed_pending_texts", "gauge",
            "Texts stored and waiting for their embedding.", (double)pending);
  mt_metric(b, "segmentd_embed_oldest_pending_seconds", "gauge",
            "How long the oldest waiting text has waited.", age > 0 ? age : 0);
  mt_metric(b, "segmentd_embed_failed_texts", "gauge",
            "Texts the embedder rejected for good (kept, not embedded).",
            (double)failed);
  mt_metric(b, "segmentd_embed_in_flight_requests", "gauge",
            "Embedding requests in flight.", s.in_flight);
  mt_metric(b, "segmentd_embed_requests_total", "counter",
            "Embedding requests sent.", (double)s.requests);
  embed_failures(b, &s);
  mt_metric(b, "segmentd_embed_retries_total", "counter",
            "Embedding batches scheduled again after a failure.",
            (double)s.retries);
  mt_metric(b, "segmentd_embed_batch_splits_total", "counter",
            "Rejected batches split to isolate the rejected text.",
            (double)s.splits);
  mt_metric(b, "segmentd_embed_texts_total", "counter",
            "Texts embedded and stored since start.", (double)s.texts_embedded);
  mt_metric(b, "segmentd_embed_breaker_open", "gauge",
            "1 while the embedder's circuit breaker is open or probing.",
            s.breaker != SD_BREAKER_CLOSED);
  mt_metric(b, "segmentd_embed_breaker_opens_total", "counter",
            "Times the circuit breaker opened.", (double)s.breaker_opens);
}

/* One gauge family with a sample per space. */
static void per_space(mbuf *b, const char *name, const char *help,
                      const char *const spaces[SD_SPACES],
                      const double v[SD_SPACES]) {
  static const char *const keys[] = {"space"};
  char labels[96];
  mt_family(b, name, "gauge", help);
  for (int s = 0; s < SD_SPACES; s++) {
    mt_labels(labels, sizeof(labels), keys, &spaces[s], 1);
    mt_sample(b, name, labels, v[s]);
  }
}

/* Each space's drift baseline: its size, whether it is complete, where it
 * comes from (one series per source, 1 for the current one) and when it
 * was pinned (0: not pinned). */
static void baselines(mbuf *b, const sd_watch_stats *w,
                      const char *const spaces[SD_SPACES]) {
  static const char *const keys[] = {"space", "source"};
  double points[SD_SPACES], complete[SD_SPACES], pinned[SD_SPACES];
  for (int s = 0; s < SD_SPACES; s++) {
    points[s] = (double)w->base[s].points;
    complete[s] = w->base[s].complete;
    pinned[s] = (double)w->base[s].pinned_at / 1e3;
  }
  per_space(b, "segmentd_drift_baseline_points",
            "Points of the space's vector drift baseline held so far.", spaces,
            points);
  per_space(b, "segmentd_drift_baseline_complete",
            "1 when the space's drift baseline is complete (every check runs).",
            spaces, complete);
  char labels[128];
  mt_family(b, "segmentd_drift_baseline_source", "gauge",
            "1 for where the space's drift baseline comes from: model (the "
            "first assignments after it), current or next (pinned by hand).");
  for (int s = 0; s < SD_SPACES; s++)
    for (int k = 0; k < SD_DRIFT_BASE_SOURCES; k++) {
      const char *lv[] = {spaces[s], sd_drift_base_sources[k]};
      mt_labels(labels, sizeof(labels), keys, lv, 2);
      mt_sample(b, "segmentd_drift_baseline_source", labels,
                w->base[s].version && w->base[s].source == k);
    }
  per_space(b, "segmentd_drift_baseline_pinned_timestamp_seconds",
            "When the space's drift baseline was pinned by hand (Unix time; "
            "0: not pinned).", spaces, pinned);
}

/* Drift status per space and open alerts (all combinations, zeros too). */
static void drift(mbuf *b, const sd_watch_stats *w) {
  static const char *const keys[] = {"space", "kind", "severity"};
  static const char *const sev[] = {"warning", "critical"};
  static const char *const spaces[SD_SPACES] = {"intents", "segments"};
  char labels[256];
  mt_family(b, "segmentd_drift_status", "gauge",
            "Worst open drift alert of the space: 0 none, 1 warning, 2 "
            "critical.");
  for (int s = 0; s < SD_SPACES; s++) {
    int worst = 0;
    for (int k = 0; k <= SD_DRIFT_KINDS; k++)
      for (int v = 0; v < 2; v++)
        if (w->open[s][k][v] > 0 && v + 1 > worst) worst = v + 1;
    mt_labels(labels, sizeof(labels), keys, &spaces[s], 1);
    mt_sample(b, "segmentd_drift_status", labels, worst);
  }
  mt_family(b, "segmentd_drift_open_alerts", "gauge",
            "Open drift alerts by space, kind (other: a kind this version "
            "does not raise) and severity.");
  for (int s = 0; s < SD_SPACES; s++)
    for (int k = 0; k <= SD_DRIFT_KINDS; k++)
      for (int v = 0; v < 2; v++) {
        const char *lv[] = {spaces[s],
                            k < SD_DRIFT_KINDS ? sd_drift_kinds[k] : "other",
                            sev[v]};
        mt_labels(labels, sizeof(labels), keys, lv, 3);
        mt_sample(b, "segmentd_drift_open_alerts", labels,
                  (double)w->open[s][k][v]);
      }
  baselines(b, w, spaces);
  mt_metric(b, "segmentd_drift_alerts_opened_total", "counter",
            "Drift alerts opened since start.", (double)w->opened);
  mt_metric(b, "segmentd_drift_last_check_timestamp_seconds", "gauge",
            "When the drift checks last ran (Unix time; the start time "
            "before the first round).", (double)w->last_check_ms / 1e3);
}

/* Drift alerts and webhook deliveries. */
static void alerts(mbuf *b, const sd_services *svc) {
  sd_watch_stats w;
  memset(&w, 0, sizeof(w));
  if (svc->watch) sd_watch_get_stats(svc->watch, &w);
  drift(b, &w);
  sd_notify_stats n;
  sd_notify_get_stats(svc->notify, &n);
  mt_metric(b, "segmentd_webhook_outbox_pending", "gauge",
            "Webhook events not yet delivered (nor given up).",
            (double)n.outbox_pending);
  mt_metric(b, "segmentd_webhook_oldest_pending_seconds", "gauge",
            "Age of the oldest undelivered webhook event.",
            n.oldest_pending_seconds);
  mt_metric(b, "segmentd_webhook_deliveries_total", "counter",
            "Webhook events delivered (2xx).", (double)n.delivered_total);
  mt_metric(b, "segmentd_webhook_failed_attempts_total", "counter",
            "Webhook delivery attempts that failed.",
            (double)n.attempts_failed_total);
  mt_metric(b, "segmentd_webhook_given_up_total", "counter",
            "Webhook events given up after --webhook-max-attempts.",
            (double)n.given_up_total);
}

/* The process: uptime, start time, CPU and resident memory. */
static void process(mbuf *b, sd_core *core) {
  int64_t started = sd_core_started_at(core);
  struct timespec cpu = {0, 0};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
  mt_metric(b, "segmentd_uptime_seconds", "gauge", "Seconds since start.",
            (double)(sd_now_ms() - started) / 1e3);
  mt_metric(b, "process_start_time_seconds", "gauge",
            "Start time of the process since the Unix epoch in seconds.",
            (double)started / 1e3);
  mt_metric(b, "process_cpu_seconds_total", "counter",
            "Total user and system CPU time spent in seconds.",
            (double)cpu.tv_sec + (double)cpu.tv_nsec / 1e9);
  mt_metric(b, "process_resident_memory_bytes", "gauge",
            "Resident memory size in bytes.", resident_bytes());
}

static void writer(mbuf *b, sd_core *core) {
  mt_metric(b, "segmentd_ingest_queue_depth", "gauge",
            "Jobs (mostly ingest batches) waiting for the writer.",
            sd_core_queue_depth(core));
  mt_metric(b, "segmentd_ingest_queue_capacity", "gauge",
            "Jobs the writer's queue holds before ingest gets 429 "
            "(--queue-max).", (double)sd_core_config(core)->queue_max);
}

int sd_metrics_render(const sd_services *svc, char **out, size_t *len) {
  mbuf b = {malloc(16384), 0, 16384, 0};
  if (!b.p) return SD_ENOMEM;
  process(&b, svc->core);
  writer(&b, svc->core);
  sd_snapshot *snap = sd_snapshot_acquire();
  spaces(&b, snap);
  sd_snapshot_release(snap);
  embed(&b, svc->core, svc->embedq);
  alerts(&b, svc);
  metrics_render_recorded(&b);
  if (b.oom) {
    free(b.p);
    return SD_ENOMEM;
  }
  *out = b.p;
  *len = b.len;
  return 0;
}
