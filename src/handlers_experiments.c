/*
 * handlers_experiments.c -- POST /v1/experiments, GET /v1/experiments,
 * GET and DELETE /v1/experiments/{name}, and
 * GET /v1/experiments/{name}/assignment/{user_id}.
 *
 * Definitions are checked here (422 with details, nothing written); the
 * writes (create, stop, a user's first assignment) run on the core writer
 * as quiet jobs while the connection is suspended, and are answered once
 * committed. A repeat assignment lookup is a read: one statement on the
 * thread's read-only connection, no writer involved. Results and
 * outcomes are in handlers_outcomes.c.
 */
#include "handlers.h"
#include "segmentd/err.h"
#include "segmentd/experiments.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writer jobs ---- */

typedef struct exp_req exp_req;
struct exp_req {
  h_writer w; /* first: the job's ud is the request */
  void (*answer)(exp_req *r, sd_reply *rep); /* after a committed job */
  sd_exp_def def;
  char name[SD_EXP_NAME_MAX + 1];
  char user_id[SD_MAX_ID + 1];
  sd_exp_create_op create;
  sd_exp_stop_op stop;
  sd_exp_assign_op assign;
};

static void exp_done(sd_job *job, void *ud) {
  exp_req *r = ud;
  if (job->rc < 0) sd_reply_error(r->w.a->rep, job->rc, NULL, NULL);
  else r->answer(r, r->w.a->rep);
  sd_async_resume(r->w.a);
}

/* A request whose job runs fn(op) on the writer, then answer(). */
static exp_req *exp_job(sd_req *req, sd_reply *rep, int (*fn)(sd_core *, void *),
                        void (*answer)(exp_req *, sd_reply *)) {
  exp_req *r = calloc(1, sizeof(*r));
  if (!r) {
    sd_reply_error(rep, SD_ENOMEM, NULL, NULL);
    return NULL;
  }
  r->answer = answer;
  r->w.job.fn = fn;
  r->w.job.quiet = 1; /* nothing a snapshot holds changes */
  r->w.job.done = exp_done;
  h_writer_async(&r->w, req, rep, free);
  return r;
}

/* ---- JSON of definitions and assignments ---- */

static json_t *def_json(const sd_exp_def *d, int64_t users) {
  json_t *v = json_array(), *w = json_array();
  for (int i = 0; i < d->n_variants; i++) {
    json_array_append_new(v, json_string(d->variants[i]));
    json_array_append_new(w, json_real(d->weights[i]));
  }
  int slots[SD_EXP_VARIANTS_MAX];
  int block = sd_exp_block(d->weights, d->n_variants, slots);
  return json_pack("{s:s,s:o,s:o,s:s,s:{s:s,s:i},s:s,s:o,s:o,s:I,s:o}", "name",
                   d->name, "variants", v, "weights", w, "stratify",
                   d->stratify ? "segments" : "none", "outcome", "event_type",
                   d->event_type, "window_days", d->window_days, "status",
                   d->stopped_at ? "stopped" : "running", "created_at",
                   h_time(d->created_at), "stopped_at",
                   d->stopped_at ? h_time(d->stopped_at) : json_null(), "users",
                   (json_int_t)users, "block_size",
                   d->stratify && block > 0 ? json_integer(block) : json_null());
}

static json_t *assignment_json(const char *name, const char *user_id,
                               const char *variant, const sd_exp_assignment *a) {
  return json_pack("{s:s,s:s,s:s,s:o,s:o}", "experiment", name, "user_id",
                   user_id, "variant", variant, "segment",
                   a->has_segment ? json_integer(a->segment) : json_null(),
                   "assigned_at", h_time(a->assigned_at));
}

/* ---- POST /v1/experiments: checking a definition ---- */

static int bad(sd_reply *rep, const char *field, const char *problem) {
  return sd_reply_error(rep, SD_EINVALID, problem,
                        json_pack("[{s:s,s:s}]", "field", field, "problem", problem));
}

/* A non-empty string of at most max bytes without NUL, or NULL. */
static const char *short_string(json_t *v, size_t max) {
  const char *s = json_string_value(v);
  size_t n = json_string_length(v);
  return s && n > 0 && n <= max && !memchr(s, 0, n) ? s : NULL;
}

static int check_name(json_t *b, sd_exp_def *d, sd_reply *rep) {
  const char *s = short_string(json_object_get(b, "name"), SD_EXP_NAME_MAX);
  if (!s || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789._-") != strlen(s))
    return bad(rep, "name", "must be 1..64 characters of A-Z a-z 0-9 . _ -");
  snprintf(d->name, sizeof(d->name), "%s", s);
  return 0;
}

static int check_variants(json_t *b, sd_exp_def *d, sd_reply *rep) {
  json_t *v = json_object_get(b, "variants");
  size_t n = json_array_size(v);
  if (!json_is_array(v) || n < 2 || n > SD_EXP_VARIANTS_MAX)
    return bad(rep, "variants", "must be an array of 2..8 variant names, control first");
  for (size_t i = 0; i < n; i++) {
    const char *s = short_string(json_array_get(v, i), SD_EXP_VARIANT_MAX);
    if (!s) return bad(rep, "variants", "every variant must be a string of 1..64 bytes");
    for (size_t j = 0; j < i; j++)
      if (!strcmp(s, d->variants[j])) return bad(rep, "variants", "variant names must be unique");
    snprintf(d->variants[i], sizeof(d->variants[i]), "%s", s);
  }
  d->n_variants = (int)n;
  return 0;
}

static int check_weights(json_t *b, sd_exp_def *d, sd_reply *rep) {
  json_t *w = json_object_get(b, "weights");
  int slots[SD_EXP_VARIANTS_MAX];
  double sum = 0;
  for (int i = 0; !w && i < d->n_variants; i++) d->weights[i] = 1.0 / d->n_variants;
  if (w && (!json_is_array(w) || json_array_size(w) != (size_t)d->n_variants))
    return bad(rep, "weights", "must be an array with one weight per variant");
  for (int i = 0; w && i < d->n_variants; i++) {
    json_t *x = json_array_get(w, (size_t)i);
    d->weights[i] = json_is_number(x) ? json_number_value(x) : -1;
    if (!(d->weights[i] > 0 && d->weights[i] <= 1))
      return bad(rep, "weights", "every weight must be a number in (0, 1]");
    sum += d->weights[i];
  }
  if (w && fabs(sum - 1.0) > SD_EXP_WEIGHT_TOL)
    return bad(rep, "weights", "weights must sum to 1 (within 0.001)");
  if (sd_exp_block(d->weights, d->n_variants, slots) < 0)
    return bad(rep, "weights", "weights must be multiples of 0.001");
  return 0;
}

static int check_outcome(json_t *b, sd_exp_def *d, sd_reply *rep) {
  json_t *s = json_object_get(b, "stratify"), *o = json_object_get(b, "outcome");
  const char *st = s ? json_string_value(s) : "segments";
  if (!st || (strcmp(st, "segments") && strcmp(st, "none")))
    return bad(rep, "stratify", "must be \"segments\" or \"none\"");
  d->stratify = !strcmp(st, "segments");
  if (!json_is_object(o))
    return bad(rep, "outcome", "must be an object {\"event_type\", \"window_days\"}");
  const char *et = short_string(json_object_get(o, "event_type"), SD_MAX_ID);
  if (!et) return bad(rep, "outcome.event_type", "must be an event type of 1..256 bytes");
  snprintf(d->event_type, sizeof(d->event_type), "%s", et);
  json_t *wd = json_object_get(o, "window_days");
  json_int_t days = wd ? (json_is_integer(wd) ? json_integer_value(wd) : -1) : 7;
  if (days < 1 || days > SD_EXP_WINDOW_MAX)
    return bad(rep, "outcome.window_days", "must be an integer of 1..365 days");
  d->window_days = (int)days;
  const char *key;
  json_t *val;
  json_object_foreach(o, key, val) if (strcmp(key, "event_type") && strcmp(key, "window_days"))
    return bad(rep, "outcome", "unknown field (event_type, window_days)");
  return 0;
}

static int check_def(json_t *b, sd_exp_def *d, sd_reply *rep) {
  static const char *const known[] = {"name", "variants", "weights", "stratify", "outcome"};
  const char *key;
  json_t *val;
  json_object_foreach(b, key, val) {
    size_t i = 0;
    while (i < 5 && strcmp(key, known[i])) i++;
    if (i == 5) return bad(rep, key, "unknown field (name, variants, weights, stratify, outcome)");
  }
  int rc = check_name(b, d, rep);
  if (rc == 0) rc = check_variants(b, d, rep);
  if (rc == 0) rc = check_weights(b, d, rep);
  if (rc == 0) rc = check_outcome(b, d, rep);
  return rc;
}

static void create_answer(exp_req *r, sd_reply *rep) {
  if (r->create.unknown_event)
    bad(rep, "outcome.event_type", "unknown outcome: no event of this type has been ingested");
  else if (r->create.duplicate)
    sd_reply_error(rep, SD_ECONFLICT, "an experiment with this name exists", NULL);
  else {
    r->def.id = r->create.id;
    r->def.created_at = r->create.created_at;
    sd_reply_json(rep, 201, def_json(&r->def, 0));
  }
}

int h_experiment_create(sd_req *req, sd_reply *rep) {
  json_t *b = h_body_object(req, rep);
  if (!b) return SD_EINVALID;
  sd_exp_def d;
  memset(&d, 0, sizeof(d));
  int rc = check_def(b, &d, rep);
  json_decref(b);
  if (rc < 0) return rc;
  exp_req *r = exp_job(req, rep, sd_exp_op_create, create_answer);
  if (!r) return SD_ENOMEM;
  r->def = d;
  r->create.def = &r->def;
  r->w.job.fn_arg = &r->create;
  return 0;
}

/* ---- reads and the stop ---- */

int h_experiments_list(sd_req *req, sd_reply *rep) {
  (void)req;
  sd_exp_def *defs;
  int64_t *users;
  size_t n;
  int rc = sd_exp_read_list(&defs, &users, &n);
  if (rc < 0) return sd_reply_error(rep, rc, NULL, NULL);
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) json_array_append_new(a, def_json(&defs[i], users[i]));
  free(defs);
  free(users);
  return sd_reply_json(rep, 200, json_pack("{s:o}", "experiments", a));
}

int h_experiment_get(sd_req *req, sd_reply *rep) {
  sd_exp_def d;
  int64_t users = 0;
  int rc = sd_exp_read_def(req->params[0], &d, &users);
  if (rc < 0)
    return sd_reply_error(rep, rc, rc == SD_ENOTFOUND ? "no such experiment" : NULL, NULL);
  return sd_reply_json(rep, 200, def_json(&d, users));
}

static void stop_answer(exp_req *r, sd_reply *rep) {
  if (!r->stop.found) sd_reply_error(rep, SD_ENOTFOUND, "no such experiment", NULL);
  else sd_reply_json(rep, 200, def_json(&r->stop.def, r->stop.users));
}

int h_experiment_delete(sd_req *req, sd_reply *rep) {
  if (strlen(req->params[0]) > SD_EXP_NAME_MAX)
    return sd_reply_error(rep, SD_ENOTFOUND, "no such experiment", NULL);
  exp_req *r = exp_job(req, rep, sd_exp_op_stop, stop_answer);
  if (!r) return SD_ENOMEM;
  snprintf(r->name, sizeof(r->name), "%s", req->params[0]);
  r->stop.name = r->name;
  r->w.job.fn_arg = &r->stop;
  return 0;
}

/* ---- assignment ---- */

static void assign_answer(exp_req *r, sd_reply *rep) {
  const sd_exp_assign_op *op = &r->assign;
  if (!op->found_exp) sd_reply_error(rep, SD_ENOTFOUND, "no such experiment", NULL);
  else if (op->stopped)
    sd_reply_error(rep, SD_ECONFLICT, "the experiment is stopped: it assigns no new users", NULL);
  else if (!op->found_user) sd_reply_error(rep, SD_ENOTFOUND, "unknown user", NULL);
  else sd_reply_json(rep, 200, assignment_json(r->name, r->user_id, op->variant, &op->a));
}

int h_experiment_assignment(sd_req *req, sd_reply *rep) {
  const char *name = req->params[0], *user = req->params[1];
  if (strlen(name) > SD_EXP_NAME_MAX)
    return sd_reply_error(rep, SD_ENOTFOUND, "no such experiment", NULL);
  if (strlen(user) > SD_MAX_ID) return sd_reply_error(rep, SD_ENOTFOUND, "unknown user", NULL);
  sd_exp_def d;
  sd_exp_assignment a;
  int assigned = 0;
  int rc = sd_exp_read_assignment(name, user, &d, &assigned, &a);
  if (rc < 0)
    return sd_reply_error(rep, rc, rc == SD_ENOTFOUND ? "no such experiment" : NULL, NULL);
  if (assigned) /* the fast path: a read */
    return sd_reply_json(rep, 200, assignment_json(name, user,
                                                   d.variants[a.variant < d.n_variants ? a.variant : 0], &a));
  if (d.stopped_at)
    return sd_reply_error(rep, SD_ECONFLICT, "the experiment is stopped: it assigns no new users", NULL);
  exp_req *r = exp_job(req, rep, sd_exp_op_assign, assign_answer);
  if (!r) return SD_ENOMEM;
  snprintf(r->name, sizeof(r->name), "%s", name);
  snprintf(r->user_id, sizeof(r->user_id), "%s", user);
  r->assign.name = r->name;
  r->assign.user_id = r->user_id;
  r->w.job.fn_arg = &r->assign;
  return 0;
}
