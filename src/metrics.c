/*
 * metrics.c -- the Prometheus text exposition of segmentd (metrics.h).
 */
#include "segmentd/metrics.h"

#include "segmentd/embed_queue.h"
#include "segmentd/err.h"
#include "segmentd/notify.h"
#include "segmentd/watch.h"
#include "segmentd/snapshot.h"
#include "segmentd/timeutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  char *p;
  size_t len, cap;
  int oom;
} mbuf;

static void mb_printf(mbuf *b, const char *fmt, ...) {
  for (int tries = 0; tries < 2 && !b->oom; tries++) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = 1;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = (b->cap + (size_t)n + 1) * 2;
    char *np = realloc(b->p, cap);
    if (!np) b->oom = 1;
    else b->p = np, b->cap = cap;
  }
}

/* # HELP and # TYPE lines of one metric family. */
static void family(mbuf *b, const char *name, const char *type,
                   const char *help) {
  mb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric(mbuf *b, const char *name, const char *type,
                   const char *help, double v) {
  family(b, name, type, help);
  mb_printf(b, "%s %.17g\n", name, v);
}

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
    family(b, fam[f].name, "gauge", fam[f].help);
    for (int s = 0; s < SD_SPACES && snap; s++) {
      const sd_snap_space *sp = &snap->spaces[s];
      double v = f == 0   ? (double)sp->points
                 : f == 1 ? (double)sp->assigned
                 : f == 2 ? (double)sp->version
                 : f == 3 ? (double)(sp->has_model ? sp->k : 0)
                          : (double)sp->trained_at / 1e3;
      mb_printf(b, "%s{space=\"%s\"} %.17g\n", fam[f].name, sp->name, v);
    }
  }
}

static void embed_failures(mbuf *b, const sd_embedq_stats *s) {
  static const char *const reasons[] = {"timeout", "busy", "http", "bad_reply",
                                        "transport"};
  const int64_t v[] = {s->timeouts, s->busy, s->http_errors, s->bad_replies,
                       s->transport};
  family(b, "segmentd_embed_request_failures_total", "counter",
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
  metric(b, "segmentd_embed_pending_texts", "gauge",
         "Texts stored and waiting for their embedding.", (double)pending);
  metric(b, "segmentd_embed_oldest_pending_seconds", "gauge",
         "How long the oldest waiting text has waited.", age > 0 ? age : 0);
  metric(b, "segmentd_embed_failed_texts", "gauge",
         "Texts the embedder rejected for good (kept, not embedded).",
         (double)failed);
  metric(b, "segmentd_embed_in_flight_requests", "gauge",
         "Embedding requests in flight.", s.in_flight);
  metric(b, "segmentd_embed_requests_total", "counter",
         "Embedding requests sent.", (double)s.requests);
  embed_failures(b, &s);
  metric(b, "segmentd_embed_retries_total", "counter",
         "Embedding batches scheduled again after a failure.", (double)s.retries);
  metric(b, "segmentd_embed_batch_splits_total", "counter",
         "Rejected batches split to isolate the rejected text.", (double)s.splits);
  metric(b, "segmentd_embed_texts_total", "counter",
         "Texts embedded and stored since start.", (double)s.texts_embedded);
  metric(b, "segmentd_embed_breaker_open", "gauge",
         "1 while the embedder's circuit breaker is open or probing.",
         s.breaker != SD_BREAKER_CLOSED);
  metric(b, "segmentd_embed_breaker_opens_total", "counter",
         "Times the circuit breaker opened.", (double)s.breaker_opens);
}

/* Open drift alerts and webhook deliveries. */
static void alerts(mbuf *b, const sd_services *svc) {
  int64_t warning = 0, critical = 0, opened = 0;
  if (svc->watch) sd_watch_counts(svc->watch, &warning, &critical, &opened);
  family(b, "segmentd_drift_open_alerts", "gauge", "Open drift alerts by severity.");
  mb_printf(b, "segmentd_drift_open_alerts{severity=\"warning\"} %lld\n"
            "segmentd_drift_open_alerts{severity=\"critical\"} %lld\n",
            (long long)warning, (long long)critical);
  metric(b, "segmentd_drift_alerts_opened_total", "counter",
         "Drift alerts opened since start.", (double)opened);
  sd_notify_stats n;
  sd_notify_get_stats(svc->notify, &n);
  metric(b, "segmentd_webhook_outbox_pending", "gauge",
         "Webhook events not yet delivered (nor given up).",
         (double)n.outbox_pending);
  metric(b, "segmentd_webhook_oldest_pending_seconds", "gauge",
         "Age of the oldest undelivered webhook event.", n.oldest_pending_seconds);
  metric(b, "segmentd_webhook_deliveries_total", "counter",
         "Webhook events delivered (2xx).", (double)n.delivered_total);
  metric(b, "segmentd_webhook_failed_attempts_total", "counter",
         "Webhook delivery attempts that failed.", (double)n.attempts_failed_total);
  metric(b, "segmentd_webhook_given_up_total", "counter",
         "Webhook events given up after --webhook-max-attempts.",
         (double)n.given_up_total);
}

int sd_metrics_render(const sd_services *svc, char **out, size_t *len) {
  sd_core *core = svc->core;
  sd_embedq *q = svc->embedq;
  mbuf b = {malloc(8192), 0, 8192, 0};
  if (!b.p) return SD_ENOMEM;
  int64_t now = sd_now_ms();
  metric(&b, "segmentd_uptime_seconds", "gauge", "Seconds since start.",
         (double)(now - sd_core_started_at(core)) / 1e3);
  metric(&b, "process_resident_memory_bytes", "gauge",
         "Resident memory size in bytes.", resident_bytes());
  metric(&b, "segmentd_ingest_queue_depth", "gauge",
         "Batches waiting for the writer.", sd_core_queue_depth(core));
  sd_snapshot *snap = sd_snapshot_acquire();
  spaces(&b, snap);
  sd_snapshot_release(snap);
  embed(&b, core, q);
  alerts(&b, svc);
  if (b.oom) {
    free(b.p);
    return SD_ENOMEM;
  }
  *out = b.p;
  *len = b.len;
  return 0;
}
