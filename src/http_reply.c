/* http_reply.c -- building replies and the JSON error body (see http.h). */
#include "segmentd/err.h"
#include "segmentd/http.h"

#include <stdlib.h>
#include <string.h>

int sd_reply_error(sd_reply *rep, int err, const char *message,
                   json_t *details) {
  json_decref(rep->body);
  rep->body = NULL;
  free(rep->text);
  rep->text = NULL;
  rep->status = sd_err_status(err);
  json_t *e = json_pack("{s:s,s:s}", "code", sd_err_code(err), "message",
                        message ? message : sd_err_message(err));
  if (e && details) json_object_set(e, "details", details);
  json_decref(details);
  rep->body = e ? json_pack("{s:o}", "error", e) : NULL;
  if (err == SD_EBUSY || err == SD_ENOTREADY || err == SD_ESHUTDOWN)
    rep->retry_after = 1;
  return err;
}

int sd_reply_json(sd_reply *rep, int status, json_t *body) {
  if (!body) return sd_reply_error(rep, SD_ENOMEM, NULL, NULL);
  json_decref(rep->body);
  rep->status = status;
  rep->body = body;
  return 0;
}

int sd_reply_text(sd_reply *rep, int status, const char *content_type,
                  char *text, size_t len) {
  json_decref(rep->body);
  rep->body = NULL;
  free(rep->text);
  rep->status = status;
  rep->content_type = content_type;
  rep->text = text;
  rep->text_len = len;
  return 0;
}

int sd_reply_header(sd_reply *rep, const char *name, const char *value) {
  if (rep->n_headers == SD_MAX_REPLY_HEADERS) return SD_EINTERNAL;
  rep->headers[2 * rep->n_headers] = name;
  rep->headers[2 * rep->n_headers + 1] = value;
  rep->n_headers++;
  return 0;
}

void sd_reply_free(sd_reply *rep) {
  json_decref(rep->body);
  rep->body = NULL;
  free(rep->text);
  rep->text = NULL;
  if (rep->stream_free) rep->stream_free(rep->stream_cls);
  rep->stream_free = NULL;
  rep->stream_cls = NULL;
}
