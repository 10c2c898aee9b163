/*
 * metrics.h -- GET /metrics in the Prometheus text exposition format
 * (version 0.0.4), and the counters the hot paths feed it.
 *
 * Owns: the names, types and help texts of segmentd's metrics; their
 * rendering from the live state (snapshot, core counters, embedding queue,
 * drift watch, notifier, process); and the process-wide counters and
 * histograms of requests, ingest, writer commits and re-clusters. Names
 * follow Prometheus conventions: a segmentd_ prefix (process_* for the
 * standard process metrics), base units in the name (_seconds, _bytes),
 * _total on counters. Label values are bounded: routes are the router's
 * patterns, never raw paths.
 *
 * Threads: any. Recording is lock-free (relaxed atomic increments on
 * static tables, no allocation); rendering reads the same atomics.
 * Memory: the caller of sd_metrics_render frees *out.
 */
#ifndef SEGMENTD_METRICS_H
#define SEGMENTD_METRICS_H

#include <stddef.h>

#include "segmentd/services.h"

/* Renders every metric into a new malloc'd text; 0 or SD_ENOMEM. */
int sd_metrics_render(const sd_services *svc, char **out, size_t *len);

/* ---- recording (metrics_record.c) ---- */

/* Routes the request table has room for: the router's table must not be
 * larger (checked by the router's unit test). */
#define SD_METRICS_MAX_ROUTES 64

/* One finished request: route is the router's table index (-1: no route
 * took it; then method, normalised, is its label), status the HTTP status
 * sent (0: none), seconds from its first byte to its last. */
void sd_metrics_request(int route, const char *method, int status,
                        double seconds);
/* A committed ingest batch of kind (SD_BATCH_EVENTS or SD_BATCH_TEXTS). */
void sd_metrics_ingest(int kind, size_t accepted, size_t duplicates);
/* A writer job refused because the queue was full (429). */
void sd_metrics_queue_full(void);
/* One COMMIT of the writer's transaction took this long. */
void sd_metrics_commit(double seconds);
/* The WAL holds this many pages after a commit (the writer's WAL hook). */
void sd_metrics_wal_pages(int pages);
/* A WAL checkpoint ran: on the checkpoint thread, or (on_writer) the
 * writer's catch-up that lets the WAL be rewound (store_ckpt.c). */
void sd_metrics_checkpoint(int on_writer);
/* A re-cluster job of space (SD_SPACE_*) finished (ok or failed). */
void sd_metrics_recluster(int space, int ok, double seconds);

#endif
