/*
 * services.h -- the running parts of a server that request handlers and
 * /metrics reach: the core writer, the maintenance thread, the embedding
 * queue, the drift watch and the webhook notifier. Borrowed pointers: main
 * owns them all; any may be NULL until set (or when the part is off).
 */
#ifndef SEGMENTD_SERVICES_H
#define SEGMENTD_SERVICES_H

#include "segmentd/core.h"

struct sd_maint;
struct sd_embedq;
struct sd_watch;
struct sd_notify;

typedef struct {
  sd_core *core;
  struct sd_maint *maint;
  struct sd_embedq *embedq;
  struct sd_watch *watch;
  struct sd_notify *notify;
} sd_services;

#endif
