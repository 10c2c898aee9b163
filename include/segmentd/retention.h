/*
 * retention.h -- deleting events and texts older than --retention-days.
 *
 * Owns: one retention run, on the maintenance thread: finding the old
 * rows by rowid on the thread's read-only connection (one pass over each
 * table, --retention-batch ids at a time), handing each batch to the
 * writer (core.h sd_core_op_retain: the delete, the users' views
 * recomputed, in one transaction between ingest groups), and recording
 * the run in the audit table. When runs are due is the caller's (main.c:
 * the maintenance tick, every --retention-interval seconds).
 */
#ifndef SEGMENTD_RETENTION_H
#define SEGMENTD_RETENTION_H

#include <stdint.h>

#include "segmentd/config.h"
#include "segmentd/core.h"

typedef struct {
  int64_t events, texts, users_recomputed, users_removed, ms;
} sd_retention_stats;

/* One run at time now (epoch ms): deletes what is older than
 * cfg->retention_days (nothing when 0) and records it. 0, or the error
 * that stopped it (SD_ESHUTDOWN when stopping: what was committed
 * stays). */
int sd_retention_run(const sd_config *cfg, sd_core *core, int64_t now,
                     sd_retention_stats *out);

#endif
