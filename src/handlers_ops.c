/* handlers_ops.c -- /healthz, /readyz, /v1/info, /metrics. */
#include "handlers.h"
#include "segmentd/auth.h"
#include "segmentd/embed.h"
#include "segmentd/embed_queue.h"
#include "segmentd/err.h"
#include "segmentd/metrics.h"
#include "segmentd/snapshot.h"

#include <stdio.h>
#include "segmentd/timeutil.h"

int h_healthz(sd_req *req, sd_reply *rep) {
  (void)req;
  return sd_reply_json(rep, 200, json_pack("{s:s}", "status", "ok"));
}

int h_readyz(sd_req *req, sd_reply *rep) {
  (void)req;
  if (!sd_http_ready())
    return sd_reply_error(rep, SD_ENOTREADY, "starting up", NULL);
  return sd_reply_json(rep, 200, json_pack("{s:s}", "status", "ready"));
}

/* The embedder: kind, model, dimension and its queue of texts waiting. */
static json_t *info_embedder(sd_req *req) {
  const sd_encoder *enc = sd_core_encoder(req->core);
  json_t *e;
  if (sd_core_remote(req->core)) {
    e = json_pack("{s:s,s:s,s:i,s:s}", "kind", "openai", "model",
                  req->cfg->embed_model, "dimension", (int)req->cfg->dim,
                  "url", req->cfg->embed_url);
  } else {
    sd_snapshot *snap = sd_snapshot_acquire();
    int64_t pv = snap && snap->proj ? snap->proj->version : 0;
    sd_snapshot_release(snap);
    char model[64];
    if (pv > 0)
      snprintf(model, sizeof(model), "%s-v%lld", SD_ENCODER_LSA_VERSION,
               (long long)pv);
    else
      snprintf(model, sizeof(model), "%s", SD_ENCODER_VERSION);
    e = json_pack("{s:s,s:s,s:i,s:I,s:I}", "kind", "builtin", "model", model,
                  "dimension", sd_encoder_dim(enc), "projection_version",
                  (json_int_t)pv, "documents_seen",
                  (json_int_t)sd_encoder_docs(enc));
  }
  if (e) json_object_set_new(e, "queue", sd_embedq_json(req->embedq, req->core));
  return e;
}

/* Whether keys are needed, how many there are, and what /metrics needs;
 * never a key. */
static json_t *info_auth(const sd_req *req) {
  size_t n = sd_auth_count(req->auth);
  return json_pack("{s:b,s:I,s:{s:I,s:I,s:I},s:s}", "enabled", n > 0, "keys",
                   (json_int_t)n, "keys_by_scope", "ingest",
                   (json_int_t)sd_auth_count_scope(req->auth, SD_SCOPE_INGEST),
                   "read", (json_int_t)sd_auth_count_scope(req->auth, SD_SCOPE_READ),
                   "admin", (json_int_t)sd_auth_count_scope(req->auth, SD_SCOPE_ADMIN),
                   "metrics", n > 0 ? req->cfg->metrics_scope : "open");
}

int h_info(sd_req *req, sd_reply *rep) {
  int64_t now = sd_now_ms(), started = sd_core_started_at(req->core);
  json_t *o = json_pack(
      "{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:I,s:{s:i}}", "version", SD_VERSION,
      "git_commit", SD_GIT_COMMIT, "build", SD_BUILD_TYPE, "embedder",
      info_embedder(req), "config", sd_config_json(req->cfg), "auth",
      info_auth(req), "started_at",
      h_time(started), "uptime_seconds", (json_int_t)((now - started) / 1000),
      "ingest", "queue_depth", sd_core_queue_depth(req->core));
  return sd_reply_json(rep, 200, o);
}

int h_metrics(sd_req *req, sd_reply *rep) {
  char *text;
  size_t len;
  sd_services svc = {req->core, req->maint, req->embedq, req->watch,
                     req->notify};
  int rc = sd_metrics_render(&svc, &text, &len);
  if (rc < 0) return sd_reply_error(rep, rc, NULL, NULL);
  return sd_reply_text(rep, 200, "text/plain; version=0.0.4; charset=utf-8",
                       text, len);
}
