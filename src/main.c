/*
 * main.c -- the segmentd command: `segmentd serve [flags]`.
 *
 * Start order: configuration, HTTP listener (healthz answers, readyz says
 * 503), storage and models (core), then ready. Stop order on SIGTERM or
 * SIGINT: stop accepting connections, let the writer finish every queued
 * batch, persist models and checkpoint, stop HTTP, exit 0.
 */
#include "segmentd/config.h"
#include "segmentd/core.h"
#include "segmentd/err.h"
#include "segmentd/http.h"
#include "segmentd/log.h"
#include "segmentd/maint.h"

#include <cblas.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void openblas_set_num_threads(int n);

static int serve(const sd_config *cfg) {
  char msg[512] = "";
  sd_http *http = NULL;
  sd_core *core = NULL;
  sd_maint *maint = NULL;
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* every thread inherits this */
  signal(SIGPIPE, SIG_IGN);
  if (sd_http_start(cfg, NULL, &http, msg, sizeof(msg)) < 0 ||
      sd_core_start(cfg, &core, msg, sizeof(msg)) < 0 ||
      sd_maint_start(cfg, core, &maint) < 0) {
    sd_log_error("%s", msg[0] ? msg : "start failed");
    sd_http_stop(http);
    sd_core_free(core);
    return 1;
  }
  sd_core_set_maint(core, maint);
  sd_http_set_core(http, core, maint);
  sd_http_set_ready(1);
  sd_log_info("segmentd %s serving on %s (port %d), database %s%s", SD_VERSION,
              cfg->listen, sd_http_port(http), cfg->db,
              " -- no API keys configured: the API is open");
  int sig = 0;
  sigwait(&sigs, &sig);
  sd_log_info("signal %d: draining and stopping", sig);
  sd_http_quiesce(http);
  sd_maint_stop(maint); /* after the running job; queued ones fail */
  sd_core_stop(core);
  sd_http_stop(http);
  sd_maint_free(maint);
  sd_core_free(core);
  sd_log_info("stopped cleanly");
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "--version")) {
    printf("segmentd %s (%s)\n", SD_VERSION, SD_GIT_COMMIT);
    return 0;
  }
  if (argc < 2 || strcmp(argv[1], "serve") != 0) {
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
  if (!getenv("OPENBLAS_NUM_THREADS")) openblas_set_num_threads(1);
  return serve(&cfg);
}
