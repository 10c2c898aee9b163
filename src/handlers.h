/*
 * handlers.h -- the request handlers, one file per resource:
 * handlers_ops.c (health, readiness, info), handlers_ingest.c (events,
 * texts), handlers_users.c (users, segments, assign), handlers_spaces.c
 * (spaces, clusters, assignments). Each fills an sd_reply and returns 0 or
 * the sd_err it replied with.
 */
#ifndef SEGMENTD_HANDLERS_H
#define SEGMENTD_HANDLERS_H

#include "segmentd/http.h"
#include "segmentd/snapshot.h"
#include "segmentd/json_out.h"

int h_healthz(sd_req *req, sd_reply *rep);
int h_readyz(sd_req *req, sd_reply *rep);
int h_info(sd_req *req, sd_reply *rep);
int h_metrics(sd_req *req, sd_reply *rep);
int h_events(sd_req *req, sd_reply *rep);
int h_texts(sd_req *req, sd_reply *rep);
int h_user(sd_req *req, sd_reply *rep);
int h_user_segment(sd_req *req, sd_reply *rep);
int h_segments_lookup(sd_req *req, sd_reply *rep);
int h_assign(sd_req *req, sd_reply *rep);
int h_spaces(sd_req *req, sd_reply *rep);
int h_clusters(sd_req *req, sd_reply *rep);
int h_cluster(sd_req *req, sd_reply *rep);
int h_assignments(sd_req *req, sd_reply *rep);
int h_recluster(sd_req *req, sd_reply *rep);
int h_job(sd_req *req, sd_reply *rep);
int h_lineage(sd_req *req, sd_reply *rep);
int h_evaluate(sd_req *req, sd_reply *rep);
/* handlers_clusters.c: a keyset page of a live cluster's members, and the
 * 2-D map of a space (centroid PCA axes, a stride sample of points). */
int h_cluster_members(sd_req *req, sd_reply *rep);
int h_map(sd_req *req, sd_reply *rep);
int h_cluster_patch(sd_req *req, sd_reply *rep);
int h_user_delete(sd_req *req, sd_reply *rep);
/* handlers_drift.c: drift checks and the alert history;
 * handlers_drift_baseline.c: a space's drift baseline, and pinning it. */
int h_drift(sd_req *req, sd_reply *rep);
int h_alerts(sd_req *req, sd_reply *rep);
int h_drift_baseline(sd_req *req, sd_reply *rep);
int h_drift_baseline_pin(sd_req *req, sd_reply *rep);
/* handlers_experiments.c: experiment definitions, stopping, assignment;
 * handlers_outcomes.c: conversion per segment and experiment results. */
int h_experiment_create(sd_req *req, sd_reply *rep);
int h_experiments_list(sd_req *req, sd_reply *rep);
int h_experiment_get(sd_req *req, sd_reply *rep);
int h_experiment_delete(sd_req *req, sd_reply *rep);
int h_experiment_assignment(sd_req *req, sd_reply *rep);
int h_experiment_results(sd_req *req, sd_reply *rep);
int h_outcomes(sd_req *req, sd_reply *rep);
/* handlers_dashboard.c: the dashboard page and its assets (web/). */
int h_dashboard(sd_req *req, sd_reply *rep);
int h_asset(sd_req *req, sd_reply *rep);
/* The reply of a finished (or refused) ingest job; frees its batch. */
void h_ingest_done(sd_job *job, sd_reply *rep);

/* Shared helpers (handlers_common.c). */

/* Parses a JSON object body under the configured depth limit; on failure
 * fills rep and returns NULL. */
json_t *h_body_object(sd_req *req, sd_reply *rep);
/* Parses an optional query value of decimal digits in [lo, hi] (dflt when
 * absent). 0, or -1 when present but not such a number. */
int h_query_int(const char *s, long long lo, long long hi, long long dflt,
                long long *out);
/* A 200 reply of the JSON text written into o (sd_jout, json_out.h),
 * which it takes over; 500 when o ran out of memory. */
int h_reply_jout(sd_reply *rep, sd_jout *o);
/* RFC 3339 string of an epoch-ms time (a new JSON string). */
json_t *h_time(int64_t ms);
/* The current snapshot's space named by the first path parameter, or a
 * 404 reply. The caller releases *snap. */
const sd_snap_space *h_space(sd_req *req, sd_reply *rep, sd_snapshot **snap);
/* Similarities of x to every centroid of sp (k floats into sims), and the
 * indexes of the n best in order (best[n], -1 past k). */
void h_rank(const sd_snap_space *sp, const float *x, float *sims, int *best,
            int n);
/* {"id","label","similarity"} of cluster index i of sp. */
json_t *h_cluster_ref(const sd_snap_space *sp, int i, float sim);

/* A 422 invalid_field whose message is problem and whose details name
 * the field; returns SD_EINVALID. */
int h_field_error(sd_reply *rep, const char *field, const char *problem);

/* A request answered after a job's fn has run on the core writer: the
 * handler's state starts with an h_writer, sets job.fn, fn_arg and done,
 * and h_writer_async makes rep suspend the request and queue the job
 * (SD_EBUSY: 429 when the queue is full). done gets the state as ud and
 * answers through a->rep, then calls sd_async_resume(a); free_fn releases
 * the state when the request ends. */
typedef struct {
  sd_job job;
  sd_core *core;
  sd_async *a;
} h_writer;
void h_writer_async(h_writer *w, sd_req *req, sd_reply *rep,
                    void (*free_fn)(void *));

#endif
