/*
 * watch.h -- drift checks on a schedule, and the alerts they raise.
 *
 * Owns: when the checks of drift.h run (every --drift-interval seconds on
 * the maintenance thread, or on GET /v1/drift?refresh=true), the last
 * report of each space, and turning reports into alerts: one open alert
 * per condition (space, kind, method, cluster; an emerging cluster is the
 * same condition while its centroid stays within cosine 0.8), opened,
 * escalated when its severity rises, cleared when its check passes again.
 * Alerts are written by the core writer (table alerts) in the same
 * transaction as their webhook events (notify.h), so both survive a
 * restart together. With --drift-recluster 1, an opened critical alert or
 * an emerging cluster asks for a re-cluster of its space, recorded in the
 * lineage with the alert.
 *
 * Threads: any thread may call sd_watch_check / sd_watch_json; checks of
 * a space are serialised by drift.h, the alert cache by the watch's mutex.
 * Memory: sd_watch_new allocates, sd_watch_free releases; JSON returned is
 * a new reference.
 */
#ifndef SEGMENTD_WATCH_H
#define SEGMENTD_WATCH_H

#include <jansson.h>
#include <stdint.h>

#include "segmentd/config.h"
#include "segmentd/core.h"
#include "segmentd/drift.h"
#include "segmentd/snapshot.h"

typedef struct sd_watch sd_watch;
struct sd_maint;
struct sd_notify;

/* Loads the open alerts (the calling thread's read connection). */
int sd_watch_new(const sd_config *cfg, sd_core *core, struct sd_maint *maint,
                 struct sd_notify *notify, sd_watch **out, char *msg,
                 size_t msglen);
void sd_watch_free(sd_watch *w);

/* The maintenance thread's tick: checks every space once the interval
 * has passed. */
void sd_watch_tick(void *w, int64_t now_ms);

/* Checks every space now and applies the alerts. 0 or a negative sd_err. */
int sd_watch_check(sd_watch *w);

/* GET /v1/drift: {"status", "spaces": [...], "open_alerts"}; each space
 * with its drift baseline as it is now (drift.h sd_drift_base_info_json). */
json_t *sd_watch_json(sd_watch *w);

/* GET /v1/alerts: newest first, created at or after since_ms, ids below
 * before (0: no bound), at most limit; *next gets the cursor of the next
 * page or 0. Reads with the calling thread's read connection. */
json_t *sd_watch_alerts_json(int64_t since_ms, int64_t before, int limit,
                             int64_t *next);

/* For /metrics: open alerts by space, kind (index into sd_drift_kinds;
 * the last slot counts any other kind) and severity (0 warning, 1
 * critical), alerts opened since start, when checks last ran (or the
 * watch started), and each space's drift baseline as it is now. */
typedef struct {
  int64_t open[SD_SPACES][SD_DRIFT_KINDS + 1][2];
  int64_t opened;
  int64_t last_check_ms;
  sd_drift_base_info base[SD_SPACES];
} sd_watch_stats;
void sd_watch_get_stats(sd_watch *w, sd_watch_stats *out);

#endif
