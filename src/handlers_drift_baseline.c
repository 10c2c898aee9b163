/*
 * handlers_drift_baseline.c -- GET /v1/spaces/{space}/drift/baseline (what
 * a space's drift checks compare with) and POST on the same path (pin the
 * current window as the baseline, or collect a new one from the next
 * assignments; drift.h, "pinning a baseline by hand").
 *
 * A pin is a write: it runs on the core writer as a job (core.h,
 * sd_core_op_drift_pin), which stores it with an audit row before it
 * installs it; the request is answered once that has committed. Checks
 * in order: the space (404), the body (400, then 422: a JSON object whose
 * only field is source, "current" or "next"), then on the writer the
 * model and the window (409: no model, no drift reference, or too few
 * points to pin). GET always describes the baseline: model_version 0
 * while the space has no drift reference.
 */
#include "handlers.h"

#include "segmentd/drift.h"
#include "segmentd/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  h_writer w; /* first: the job's ud is the request's state */
  char by[96];
  sd_drift_pin_op op;
} pin_req;

static const char *const SPACE_NAMES[SD_SPACES] = {"intents", "segments"};

/* The space of the path; 0, or the 404 filled into rep. */
static int space_of(sd_req *req, sd_reply *rep, int *space) {
  sd_snapshot *snap;
  const sd_snap_space *sp = h_space(req, rep, &snap);
  if (!sp) return SD_ENOTFOUND;
  *space = sp == &snap->spaces[SD_SPACE_INTENTS] ? SD_SPACE_INTENTS
                                                 : SD_SPACE_SEGMENTS;
  sd_snapshot_release(snap);
  return 0;
}

int h_drift_baseline(sd_req *req, sd_reply *rep) {
  int space;
  if (space_of(req, rep, &space) < 0) return SD_ENOTFOUND;
  sd_drift_base_info b;
  sd_drift_base_describe(sd_core_drift(req->core), space, &b);
  return sd_reply_json(rep, 200, sd_drift_base_info_json(&b, SPACE_NAMES[space]));
}

/* The body's source (no body, or no field: current); 0, or the 400/422
 * filled into rep. */
static int pin_source(sd_req *req, sd_reply *rep, int *source) {
  *source = SD_DRIFT_BASE_CURRENT;
  if (req->body_len == 0) return 0;
  json_t *b = h_body_object(req, rep), *v;
  if (!b) return SD_EINVALID;
  const char *k, *s = json_string_value(json_object_get(b, "source"));
  int rc = 0;
  json_object_foreach(b, k, v)
    if (rc == 0 && strcmp(k, "source"))
      rc = h_field_error(rep, k, "unknown field (the body takes only source)");
  if (rc == 0 && json_object_get(b, "source")) {
    if (s && !strcmp(s, "next")) *source = SD_DRIFT_BASE_NEXT;
    else if (!s || strcmp(s, "current"))
      rc = h_field_error(rep, "source", "must be \"current\" or \"next\"");
  }
  json_decref(b);
  return rc;
}

static void pin_done(sd_job *job, void *ud) {
  pin_req *r = ud;
  sd_reply *rep = r->w.a->rep;
  if (job->rc < 0)
    sd_reply_error(rep, job->rc, r->op.msg[0] ? r->op.msg : NULL, NULL);
  else
    sd_reply_json(rep, 200, sd_drift_base_info_json(&r->op.info,
                                                    SPACE_NAMES[r->op.space]));
  sd_async_resume(r->w.a);
}

int h_drift_baseline_pin(sd_req *req, sd_reply *rep) {
  int space, source;
  if (space_of(req, rep, &space) < 0) return SD_ENOTFOUND;
  int rc = pin_source(req, rep, &source);
  if (rc < 0) return rc;
  pin_req *r = calloc(1, sizeof(*r));
  if (!r) return sd_reply_error(rep, SD_ENOMEM, NULL, NULL);
  if (req->key_name) snprintf(r->by, sizeof(r->by), "%s", req->key_name);
  r->op.space = space;
  r->op.source = source;
  r->op.pinned_by = req->key_name ? r->by : NULL;
  r->w.job.fn = sd_core_op_drift_pin;
  r->w.job.fn_arg = &r->op;
  r->w.job.done = pin_done;
  r->w.job.quiet = 1; /* readers' snapshot does not change */
  h_writer_async(&r->w, req, rep, free);
  return 0;
}
