/*
 * handlers_admin.c -- PATCH /v1/spaces/{space}/clusters/{id} (a manual
 * label and description) and DELETE /v1/users/{user_id} (erasure).
 *
 * Both are writes, so both run on the core writer as a job (core.h); the
 * connection is suspended meanwhile and answered once the change is
 * committed and visible to readers.
 */
#include "handlers.h"
#include "segmentd/err.h"
#include "segmentd/ingest.h"
#include "segmentd/snapshot.h"

#include <stdlib.h>
#include <string.h>

#define LABEL_MAX 200
#define DESCRIPTION_MAX 2000

typedef struct {
  h_writer w;         /* first: the job's ud is the request's state */
  json_t *body;       /* keeps the label strings alive */
  char *user_id;
  sd_label_op label;
  sd_erase_op erase;
} admin_req;

static void admin_free(void *p) {
  admin_req *r = p;
  if (!r) return;
  json_decref(r->body);
  free(r->user_id);
  free(r);
}

static void label_done(sd_job *job, void *ud) {
  admin_req *r = ud;
  sd_reply *rep = r->w.a->rep;
  if (job->rc < 0) sd_reply_error(rep, job->rc, NULL, NULL);
  else if (!r->label.found) sd_reply_error(rep, SD_ENOTFOUND, "no such cluster", NULL);
  else sd_reply_json(rep, 200, json_pack("{s:I,s:s}", "id", (json_int_t)r->label.id,
                                         "status", "updated"));
  sd_async_resume(r->w.a);
}

static void erase_done(sd_job *job, void *ud) {
  admin_req *r = ud;
  sd_reply *rep = r->w.a->rep;
  if (job->rc < 0) sd_reply_error(rep, job->rc, NULL, NULL);
  else if (!r->erase.found) sd_reply_error(rep, SD_ENOTFOUND, "unknown user", NULL);
  else sd_reply_json(rep, 200, json_pack("{s:s,s:{s:I,s:I,s:I}}", "user_id", r->user_id,
                                         "deleted", "events", (json_int_t)r->erase.events,
                                         "texts", (json_int_t)r->erase.texts,
                                         "experiment_assignments",
                                         (json_int_t)r->erase.assignments));
  sd_async_resume(r->w.a);
}

static admin_req *admin_new(sd_req *req, sd_reply *rep) {
  admin_req *r = calloc(1, sizeof(*r));
  if (!r) {
    sd_reply_error(rep, SD_ENOMEM, NULL, NULL);
    return NULL;
  }
  h_writer_async(&r->w, req, rep, admin_free);
  return r;
}

/* A label/description field: absent, null (clear), or a bounded string. */
static int text_field(json_t *b, const char *name, size_t max, int *set,
                      const char **val, sd_reply *rep) {
  json_t *v = json_object_get(b, name);
  *set = v != NULL;
  *val = json_is_string(v) ? json_string_value(v) : NULL;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_string(v) || json_string_length(v) == 0)
    return h_field_error(rep, name, "must be a non-empty string or null");
  if (json_string_length(v) > max)
    return h_field_error(rep, name, max == LABEL_MAX ? "longer than 200 bytes"
                                                     : "longer than 2000 bytes");
  if (memchr(*val, 0, json_string_length(v)))
    return h_field_error(rep, name, "must not contain NUL");
  return 0;
}

int h_cluster_patch(sd_req *req, sd_reply *rep) {
  sd_snapshot *snap;
  const sd_snap_space *sp = h_space(req, rep, &snap);
  if (!sp) return SD_ENOTFOUND;
  int space = sp == &snap->spaces[SD_SPACE_INTENTS] ? SD_SPACE_INTENTS : SD_SPACE_SEGMENTS;
  sd_snapshot_release(snap);
  char *end;
  long long id = strtoll(req->params[1], &end, 10);
  if (*end || id < 0)
    return sd_reply_error(rep, SD_ENOTFOUND, "cluster ids are non-negative integers", NULL);
  json_t *b = h_body_object(req, rep);
  if (!b) return SD_EINVALID;
  sd_label_op op = {space, id, 0, 0, NULL, NULL, 0};
  int rc = text_field(b, "label", LABEL_MAX, &op.set_label, &op.label, rep);
  if (rc == 0)
    rc = text_field(b, "description", DESCRIPTION_MAX, &op.set_description,
                    &op.description, rep);
  if (rc == 0 && !op.set_label && !op.set_description)
    rc = h_field_error(rep, "label", "give label and/or description");
  admin_req *r = rc == 0 ? admin_new(req, rep) : NULL;
  if (!r) {
    json_decref(b);
    return rc < 0 ? rc : SD_ENOMEM;
  }
  r->body = b;
  r->label = op;
  r->w.job.fn = sd_core_op_label;
  r->w.job.fn_arg = &r->label;
  r->w.job.done = label_done;
  return 0;
}

int h_user_delete(sd_req *req, sd_reply *rep) {
  admin_req *r = admin_new(req, rep);
  if (!r) return SD_ENOMEM;
  if (!(r->user_id = strdup(req->params[0]))) {
    rep->async = NULL;
    return sd_reply_error(rep, SD_ENOMEM, NULL, NULL);
  }
  r->erase.user_id = r->user_id;
  r->w.job.fn = sd_core_op_erase;
  r->w.job.fn_arg = &r->erase;
  r->w.job.done = erase_done;
  return 0;
}
