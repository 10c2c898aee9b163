/*
 * retention.c -- a retention run (retention.h), on the maintenance thread.
 *
 * Each table is walked once by rowid: `id > cursor AND ts < cutoff ORDER
 * BY id LIMIT batch` on this thread's read-only connection (no index on
 * ts: one sequential pass a run costs less than an index every insert
 * would), and each batch of ids goes to the writer as one job of its own,
 * so ingest waits for at most one batch. The writer deletes only rows
 * still older than the cut-off. A row that arrives with an old timestamp
 * after the walk passed its rowid goes at the next run.
 */
#include "segmentd/retention.h"

#include "segmentd/err.h"
#include "segmentd/log.h"
#include "segmentd/store.h"
#include "segmentd/timeutil.h"

#include <stdlib.h>

#define DAY_MS 86400000LL

static const char SQL_OLD_EVENTS[] =
    "SELECT id FROM events WHERE id>?1 AND ts<?2 ORDER BY id LIMIT ?3";
static const char SQL_OLD_TEXTS[] =
    "SELECT id FROM texts WHERE id>?1 AND ts<?2 ORDER BY id LIMIT ?3";

/* Up to cap old ids after `after` into ids; their number, or an sd_err. */
static long scan(int texts, int64_t after, int64_t cutoff, int64_t *ids,
                 long cap) {
  sd_store *rd = sd_store_reader();
  sqlite3_stmt *st = rd ? sd_store_stmt(rd, texts ? SQL_OLD_TEXTS : SQL_OLD_EVENTS)
                        : NULL;
  if (!st) return SD_EDB;
  sqlite3_bind_int64(st, 1, after);
  sqlite3_bind_int64(st, 2, cutoff);
  sqlite3_bind_int64(st, 3, cap);
  long n = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) ids[n++] = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? n : SD_EDB;
}

/* Deletes one table's old rows, batch by batch; totals go into run. */
static int retain_table(sd_core *core, int texts, long batch, int64_t *ids,
                        sd_retain_op *run) {
  int64_t after = 0;
  for (;;) {
    long n = scan(texts, after, run->cutoff, ids, batch);
    if (n <= 0) return (int)n;
    sd_retain_op op = {.texts = texts, .ids = ids, .n = (size_t)n,
                       .cutoff = run->cutoff};
    int rc = sd_core_run(core, sd_core_op_retain, &op, 0);
    if (rc < 0) return rc;
    run->events += op.events;
    run->texts_deleted += op.texts_deleted;
    run->users_recomputed += op.users_recomputed;
    run->users_removed += op.users_removed;
    after = ids[n - 1];
    if (n < batch) return 0;
  }
}

int sd_retention_run(const sd_config *cfg, sd_core *core, int64_t now,
                     sd_retention_stats *out) {
  *out = (sd_retention_stats){0};
  if (cfg->retention_days <= 0) return 0;
  int64_t t0 = sd_mono_ns();
  int64_t *ids = malloc(sizeof(int64_t) * (size_t)cfg->retention_batch);
  if (!ids) return SD_ENOMEM;
  sd_retain_op run = {.cutoff = now - cfg->retention_days * DAY_MS,
                      .days = cfg->retention_days, .audit = 1};
  int rc = retain_table(core, 0, cfg->retention_batch, ids, &run);
  if (rc == 0) rc = retain_table(core, 1, cfg->retention_batch, ids, &run);
  free(ids);
  run.ms = (sd_mono_ns() - t0) / 1000000;
  *out = (sd_retention_stats){run.events, run.texts_deleted,
                              run.users_recomputed, run.users_removed, run.ms};
  if (rc == 0) rc = sd_core_run(core, sd_core_op_retain, &run, 1);
  if (rc < 0 && rc != SD_ESHUTDOWN)
    sd_log_warn("retention run stopped: %s (%lld events, %lld texts deleted "
                "so far)", sd_err_message(rc), (long long)run.events,
                (long long)run.texts_deleted);
  else if (rc == 0 && run.events + run.texts_deleted > 0)
    sd_log_info("retention: deleted %lld events and %lld texts older than %ld "
                "days; %lld users recomputed, %lld removed, in %lld ms",
                (long long)run.events, (long long)run.texts_deleted,
                cfg->retention_days, (long long)run.users_recomputed,
                (long long)run.users_removed, (long long)run.ms);
  return rc;
}
