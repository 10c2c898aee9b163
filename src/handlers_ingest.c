/*
 * handlers_ingest.c -- POST /v1/events and POST /v1/texts.
 *
 * The whole batch is validated here, on the HTTP thread; only a wholly
 * valid batch becomes a job for the writer, and the client hears 200 only
 * after the job's transaction has committed.
 */
#include "handlers.h"
#include "segmentd/err.h"
#include "segmentd/metrics.h"
#include "segmentd/timeutil.h"

#include <stdlib.h>

static int ingest(sd_req *req, sd_reply *rep, sd_batch_kind kind) {
  const sd_config *cfg = req->cfg;
  sd_limits lim = {(size_t)cfg->max_batch, (size_t)cfg->max_text,
                   (size_t)cfg->max_props, (size_t)cfg->max_depth,
                   (int)cfg->dim, (size_t)cfg->max_id};
  sd_job *job = calloc(1, sizeof(*job));
  if (!job) return sd_reply_error(rep, SD_ENOMEM, NULL, NULL);
  json_t *details = NULL;
  char msg[256];
  int rc = sd_batch_parse(kind, req->body, req->body_len, &lim, sd_now_ms(),
                          &job->batch, &details, msg, sizeof(msg));
  if (rc < 0) {
    sd_batch_free(&job->batch);
    free(job);
    return sd_reply_error(rep, rc, msg, details);
  }
  rep->job = job; /* the server submits it and answers when it is done */
  return 0;
}

int h_events(sd_req *req, sd_reply *rep) {
  return ingest(req, rep, SD_BATCH_EVENTS);
}

int h_texts(sd_req *req, sd_reply *rep) {
  return ingest(req, rep, SD_BATCH_TEXTS);
}

/* Called by the server once the writer is done with the job (or the
 * queue refused it): the reply, and the batch is released. */
void h_ingest_done(sd_job *job, sd_reply *rep) {
  if (job->rc == 0)
    sd_metrics_ingest((int)job->batch.kind, job->accepted, job->duplicates);
  sd_batch_free(&job->batch);
  if (job->rc < 0) {
    sd_reply_error(rep, job->rc,
                   job->rc == SD_EBUSY ? "ingest queue is full; retry later"
                                       : NULL, NULL);
    return;
  }
  json_t *o = json_pack("{s:I,s:I}", "accepted", (json_int_t)job->accepted,
                        "duplicates", (json_int_t)job->duplicates);
  if (o && job->pending) /* texts left for the remote embedder */
    json_object_set_new(o, "pending", json_integer((json_int_t)job->pending));
  sd_reply_json(rep, 200, o);
}
