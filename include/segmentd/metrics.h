/*
 * metrics.h -- GET /metrics in the Prometheus text exposition format
 * (version 0.0.4).
 *
 * Owns: the names, types and help texts of segmentd's metrics and their
 * rendering from the live state (snapshot, core counters, embedding queue,
 * process). Names follow Prometheus conventions: a segmentd_ prefix, base
 * units in the name (_seconds, _bytes), _total on counters.
 *
 * Threads: any HTTP thread. Memory: the caller frees *out.
 */
#ifndef SEGMENTD_METRICS_H
#define SEGMENTD_METRICS_H

#include <stddef.h>

#include "segmentd/services.h"

/* Renders every metric into a new malloc'd text; 0 or SD_ENOMEM. */
int sd_metrics_render(const sd_services *svc, char **out, size_t *len);

#endif
