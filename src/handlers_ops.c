/* handlers_ops.c -- /healthz, /readyz, /v1/info. */
#include "handlers.h"
#include "segmentd/embed.h"
#include "segmentd/err.h"
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

int h_info(sd_req *req, sd_reply *rep) {
  int64_t now = sd_now_ms(), started = sd_core_started_at(req->core);
  const sd_encoder *enc = sd_core_encoder(req->core);
  json_t *o = json_pack(
      "{s:s,s:s,s:s,s:{s:s,s:s,s:i,s:I},s:o,s:o,s:I,s:{s:i}}", "version",
      SD_VERSION, "git_commit", SD_GIT_COMMIT, "build", SD_BUILD_TYPE,
      "embedder", "kind", "builtin", "model", SD_ENCODER_VERSION,
      "dimension", sd_encoder_dim(enc), "documents_seen",
      (json_int_t)sd_encoder_docs(enc), "config", sd_config_json(req->cfg),
      "started_at", h_time(started), "uptime_seconds",
      (json_int_t)((now - started) / 1000), "ingest", "queue_depth",
      sd_core_queue_depth(req->core));
  return sd_reply_json(rep, 200, o);
}
