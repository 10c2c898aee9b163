/*
 * main.c -- the segmentd command: `segmentd serve [flags]`, `segmentd
 * reembed [flags]` (switching a database to another embedder), and the
 * dispatch table of the client subcommands (cli.h: import, export,
 * migrate, recluster, version).
 *
 * Start order: configuration, HTTP listener (healthz answers, readyz says
 * 503), storage and models (core), then ready. Stop order on SIGTERM or
 * SIGINT: stop accepting connections, let the writer finish every queued
 * batch, persist models and checkpoint, stop HTTP, exit 0.
 */
#include "segmentd/auth.h"
#include "segmentd/cli.h"
#include "segmentd/config.h"
#include "segmentd/core.h"
#include "segmentd/embed_queue.h"
#include "segmentd/err.h"
#include "segmentd/http.h"
#include "segmentd/log.h"
#include "segmentd/lookup_cache.h"
#include "segmentd/maint.h"
#include "segmentd/notify.h"
#include "segmentd/watch.h"
#include "segmentd/reembed.h"
#include "segmentd/retention.h"

#include <cblas.h>
#include <signal.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void openblas_set_num_threads(int n);

static void kick_notify(void *n) { sd_notify_kick(n); }

#define OUTBOX_KEEP_MS (7 * 86400000LL) /* finished webhook rows kept */
#define PRUNE_EVERY_MS 3600000LL
#define TRIM_EVERY_MS 30000LL     /* free heap pages handed back this often */
#define MMAP_THRESHOLD (256 * 1024) /* larger blocks: their own mappings */

/* The maintenance thread's idle tick: drift checks when due, hourly
 * removal of webhook rows delivered (or given up) over a week ago, and a
 * retention run every --retention-interval seconds (the first at the
 * first tick). */
typedef struct {
  sd_watch *watch;
  sd_core *core;
  int64_t pruned_at;
  const sd_config *cfg;
  int64_t retained_at;
  int64_t trimmed_at;
} housekeeping;

/* glibc keeps freed heap memory: big blocks (training buffers, reply
 * bodies) get their own mappings, returned when freed, at a fixed
 * threshold (the default one grows after the first such free and then
 * keeps them in the heap), and free pages are handed back periodically, so
 * RSS follows what is in use. */
static void heap_setup(void) {
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
#endif
}

static void heap_trim(housekeeping *h, int64_t now) {
#ifdef __GLIBC__
  if (now - h->trimmed_at < TRIM_EVERY_MS) return;
  h->trimmed_at = now;
  malloc_trim(0);
#else
  (void)h, (void)now;
#endif
}

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
  heap_trim(h, now);
  if (h->cfg->retention_days > 0 &&
      now - h->retained_at >= h->cfg->retention_interval * 1000) {
    sd_retention_stats st;
    h->retained_at = now;
    sd_retention_run(h->cfg, h->core, now, &st); /* logs its outcome */
  }
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
  heap_setup();
  if (sd_lookup_cache_init((size_t)cfg->lookup_cache,
                           cfg->lookup_cache_ttl * 1000) < 0) {
    sd_log_error("no memory for --lookup-cache %ld", cfg->lookup_cache);
    sd_log_async_stop();
    return 1;
  }
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
    sd_lookup_cache_free();
    sd_log_async_stop();
    return 1;
  }
  sd_core_set_maint(core, maint);
  housekeeping hk = {watch, core, 0, cfg, 0, 0};
  sd_maint_set_tick(maint, tick, &hk);
  sd_core_on_outbox(core, kick_notify, notify);
  sd_services svc = {core, maint, embedq, watch, notify};
  sd_http_set_services(http, &svc);
  sd_http_set_ready(1);
  sd_log_info("segmentd %s serving on %s (port %d), database %s", SD_VERSION,
              cfg->listen, sd_http_port(http), cfg->db);
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
  sd_lookup_cache_free();
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

/* `segmentd routes`: every route and the API key scope it needs. */
static int routes(int argc, char **argv) {
  (void)argv;
  if (argc > 1) {
    fprintf(stderr, "usage: segmentd routes\n");
    return 2;
  }
  const char *method, *pattern;
  int access;
  for (size_t i = 0; sd_route_get(i, &method, &pattern, &access) == 0; i++)
    printf("%-6s %-36s %s\n", method, pattern, sd_access_name(access));
  return 0;
}

/* `serve` and `reembed`: the server's flags (config.c). */
static int run_server(int argc, char **argv) {
  sd_config cfg;
  int help = 0;
  if (sd_config_parse(&cfg, argc - 1, argv + 1, stderr, &help) < 0) return 2;
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
  if (!strcmp(argv[0], "reembed")) return reembed(&cfg);
  if (!getenv("OPENBLAS_NUM_THREADS")) openblas_set_num_threads(1);
  return serve(&cfg);
}

/* The subcommands: argv[0] of run is the subcommand's name. */
static const struct {
  const char *name, *summary;
  int (*run)(int argc, char **argv);
} commands[] = {
    {"serve", "serve the HTTP API (flags below)", run_server},
    {"reembed", "re-embed every stored text with the embedder the flags name "
     "(server stopped)", run_server},
    {"import", "load events and texts from an NDJSON file into a running "
     "server", sd_cli_import},
    {"export", "write assignments or cluster summaries as NDJSON or CSV",
     sd_cli_export},
    {"migrate", "bring a database's schema up to date, then exit",
     sd_cli_migrate},
    {"recluster", "re-cluster a space on a running server and wait for it",
     sd_cli_recluster},
    {"version", "print the version of segmentd and of its libraries",
     sd_cli_version},
    {"routes", "list every route and the API key scope it needs", routes},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out, int full) {
  fprintf(out, "usage: segmentd <command> [options]\n\ncommands:\n");
  for (size_t i = 0; i < N_COMMANDS; i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\n`segmentd <command> --help` describes each command. "
               "Exit status: 0 ok, 1 failure, 2 usage error.\n");
  if (!full) return;
  fputc('\n', out);
  sd_config_usage(out);
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "--version")) {
    printf("segmentd %s (%s)\n", SD_VERSION, SD_GIT_COMMIT);
    return 0;
  }
  for (size_t i = 0; argc >= 2 && i < N_COMMANDS; i++)
    if (!strcmp(argv[1], commands[i].name))
      return commands[i].run(argc - 1, argv + 1);
  int help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
  if (argc >= 2 && !help)
    fprintf(stderr, "segmentd: unknown command \"%s\"\n\n", argv[1]);
  usage(help ? stdout : stderr, help);
  return help ? 0 : 2;
}
