/*
 * maint.h -- the maintenance thread: re-cluster jobs off the hot path.
 *
 * Owns: a small queue of re-cluster jobs (on request, on schedule, a
 * space's first model, and the segments re-cluster that follows an
 * encoder refit), their status table (the last 64 jobs, readable by id),
 * running sd_recluster_run on this thread's read connection, and handing
 * each proposal to the core writer to install (core.h). One job runs at a
 * time, so a job always sees the model its predecessor installed.
 *
 * Threads: sd_maint_submit / sd_maint_job_json may be called from any
 * thread. A job's done callback runs on the maintenance thread once the
 * new model is live (or the job failed). Memory: sd_maint_start allocates,
 * sd_maint_free releases after sd_maint_stop.
 */
#ifndef SEGMENTD_MAINT_H
#define SEGMENTD_MAINT_H

#include <jansson.h>
#include <stdint.h>

#include "segmentd/core.h"
#include "segmentd/recluster.h"

typedef struct sd_maint sd_maint;

typedef void (*sd_maint_done)(int64_t job_id, int rc, json_t *summary,
                              const char *msg, void *ud);

int sd_maint_start(const sd_config *cfg, sd_core *core, sd_maint **out);
void sd_maint_stop(sd_maint *m);
void sd_maint_free(sd_maint *m);

/* Queues a re-cluster. done (may be NULL) is called with the job's result,
 * summary and error message (borrowed: valid during the call only). A
 * request identical to a queued one (space, family, k, refit, seed) joins
 * it. 0 with *job_id, or SD_EBUSY /
 * SD_ESHUTDOWN. */
int sd_maint_submit(sd_maint *m, const sd_recluster_req *req,
                    sd_maint_done done, void *ud, int64_t *job_id);

/* fn(ud, now) runs on the maintenance thread at each idle tick (every
 * MAINT_TICK_MS), before the scheduled re-clusters; NULL removes it. */
void sd_maint_set_tick(sd_maint *m, void (*fn)(void *ud, int64_t now),
                       void *ud);

/* Status of a job as JSON (new reference), or NULL if unknown. */
json_t *sd_maint_job_json(sd_maint *m, int64_t job_id);

#endif
