/*
 * main.c -- the segmentd command: `segmentd serve [flags]` and
 * `segmentd reembed [flags]` (switching a database to another embedder).
 *
 * Start order: configuration, HTTP listener (healthz answers, readyz says
 * 503), storage and models (core), then ready. Stop order on SIGTERM or
 * SIGINT: stop accepting connections, let the writer finish every queued
 * batch, persist models and checkpoint, stop HTTP, exit 0.
 */
#include "segmentd/config.h"
#include "segmentd/core.h"
#include "segmentd/embed_queue.h"
#include "segmentd/err.h"
#include "segmentd/http.h"
#include "segmentd/log.h"
#include "segmentd/maint.h"
#include "segmentd/notify.h"
#include "segmentd/watch.h"
#include "segmentd/reembed.h"

#include <cblas.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void openblas_set_num_threads(int n);

static void kick_notify(void *n) { sd_notify_kick(n); }

#define OUTBOX_KEEP_MS (7 * 86400000LL) /* finished webhook rows kept */
#define PRUNE_EVERY_MS 3600000LL

/* The maintenance thread's idle tick: drift checks when due, and hourly
 * removal of webhook rows delivered (or given up) over a week ago. */
typedef struct {
  sd_watch *watch;
  sd_core *core;
  int64_t pruned_at;
} housekeeping;

static int prune_outbox(sd_core *c, void *arg) {
  int64_t deleted = 0;
  int rc = sd_outbox_prune(sd_core_db(c), *(int64_t *)arg, &deleted);
  if (rc == 0 && deleted > 0)
    sd_log_info("pruned %lld delivered webhook events", (long long)deleted);
  return rc;
}

static void tick(void *ud, int64_t now) {
  housekeeping *h = ud;
  sd_watch_tick(h->watch, now);
  if (now - h->pruned_at < PRUNE_EVERY_MS) return;
  h->pruned_at = now;
  int64_t before = now - OUTBOX_KEEP_MS;
  if (sd_core_run(h->core, prune_outbox, &before, 1) < 0)
    sd_log_warn("pruning the webhook outbox failed");
}

static int serve(const sd_config *cfg) {
  char msg[512] = "";
  sd_http *http = NULL;
  sd_core *core = NULL;
  sd_maint *maint = NULL;
  sd_embedq *embedq = NULL;
  sd_notify *notify = NULL;
  sd_watch *watch = NULL;
  int lock = -1;
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* every thread inherits this */
  signal(SIGPIPE, SIG_IGN);
  sd_log_async_start(); /* on failure, lines are written synchronously */
  if (sd_db_lock(cfg->db, &lock, msg, sizeof(msg)) < 0 ||
      sd_http_start(cfg, NULL, &http, msg, sizeof(msg)) < 0 ||
      sd_core_start(cfg, &core, msg, sizeof(msg)) < 0 ||
      sd_maint_start(cfg, core, &maint) < 0 ||
      sd_embedq_start(cfg, core, &embedq, msg, sizeof(msg)) < 0 ||
      sd_notify_start(cfg, core, &notify, msg, sizeof(msg)) < 0 ||
      sd_watch_new(cfg, core, maint, notify, &watch, msg, sizeof(msg)) < 0) {
    sd_log_error("%s", msg[0] ? msg : "start failed");
    sd_http_stop(http);
    sd_notify_free(notify);
    sd_embedq_free(embedq);
    sd_maint_stop(maint);
    sd_core_stop(core);
    sd_maint_free(maint);
    sd_core_free(core);
    sd_db_unlock(lock);
    sd_log_async_stop();
    return 1;
  }
  sd_core_set_maint(core, maint);
  housekeeping hk = {watch, core, 0};
  sd_maint_set_tick(maint, tick, &hk);
  sd_core_on_outbox(core, kick_notify, notify);
  sd_services svc = {core, maint, embedq, watch, notify};
  sd_http_set_services(http, &svc);
  sd_http_set_ready(1);
  sd_log_info("segmentd %s serving on %s (port %d), database %s%s", SD_VERSION,
              cfg->listen, sd_http_port(http), cfg->db,
              " -- no API keys configured: the API is open");
  int sig = 0;
  sigwait(&sigs, &sig);
  sd_log_info("signal %d: draining and stopping", sig);
  sd_http_quiesce(http);
  sd_embedq_stop(embedq); /* before the core: it waits for its writer jobs */
  sd_notify_stop(notify); /* likewise */
  sd_maint_stop(maint);   /* after the running job; queued ones fail */
  sd_core_stop(core);
  sd_http_stop(http);
  sd_embedq_free(embedq);
  sd_notify_free(notify);
  sd_maint_free(maint); /* its tick used the watch: freed after it */
  sd_watch_free(watch);
  sd_core_free(core);
  sd_db_unlock(lock);
  sd_log_info("stopped cleanly");
  sd_log_async_stop();
  return 0;
}

/* `segmentd reembed`: queues every stored text for the configured
 * embedder; the server started with the same flags does the work. */
static int reembed(const sd_config *cfg) {
  char msg[512] = "";
  int lock = -1;
  int64_t queued = 0;
  char key[600];
  sd_embedder_key(cfg, key, sizeof(key));
  if (sd_db_lock(cfg->db, &lock, msg, sizeof(msg)) < 0 ||
      sd_reembed_prepare(cfg, &queued, msg, sizeof(msg)) < 0) {
    fprintf(stderr, "segmentd reembed: %s\n", msg);
    sd_db_unlock(lock);
    return 1;
  }
  sd_db_unlock(lock);
  printf("%lld texts of %s queued for embedder %s (dimension %ld).\n"
         "Start `segmentd serve` with the same flags: it embeds them in the "
         "background (progress: GET /v1/info, \"embedder.queue.pending\") and "
         "re-clusters both spaces when done.\n",
         (long long)queued, cfg->db, key, cfg->dim);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "--version")) {
    printf("segmentd %s (%s)\n", SD_VERSION, SD_GIT_COMMIT);
    return 0;
  }
  int is_reembed = argc >= 2 && !strcmp(argv[1], "reembed");
  if (argc < 2 || (strcmp(argv[1], "serve") != 0 && !is_reembed)) {
    int help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
    sd_config_usage(help ? stdout : stderr);
    return help ? 0 : 2;
  }
  sd_config cfg;
  int help = 0;
  if (sd_config_parse(&cfg, argc - 2, argv + 2, stderr, &help) < 0) return 2;
  if (help) {
    sd_config_usage(stdout);
    return 0;
  }
  if (sd_log_set_level(cfg.log_level) < 0) {
    fprintf(stderr, "segmentd: unknown log level \"%s\"\n", cfg.log_level);
    return 2;
  }
  if (sd_log_set_format(cfg.log_format) < 0) {
    fprintf(stderr, "segmentd: unknown log format \"%s\" (json | text)\n",
            cfg.log_format);
    return 2;
  }
  if (is_reembed) return reembed(&cfg);
  if (!getenv("OPENBLAS_NUM_THREADS")) openblas_set_num_threads(1);
  return serve(&cfg);
}
