/*
 * handlers_outcomes.c -- GET /v1/spaces/segments/outcomes (conversion
 * per segment) and GET /v1/experiments/{name}/results (per variant,
 * pooled and per pinned segment, with the effect and the heterogeneity
 * test). Counts come from experiments_read.c, intervals from stats_ci.c.
 *
 * Every interval is 95%: Wilson for a rate, Newcombe's hybrid score
 * interval for a difference (treatment - control). The heterogeneity test
 * is Cochran's Q over the strata with at least HET_MIN_USERS users in
 * both arms, each stratum's effect weighted by the inverse of its
 * Agresti-Caffo variance, against chi-square with (strata - 1) degrees of
 * freedom. A value that cannot be computed (no users) is null.
 */
#include "handlers.h"
#include "segmentd/err.h"
#include "segmentd/experiments.h"
#include "segmentd/snapshot.h"
#include "segmentd/stats_ci.h"
#include "segmentd/timeutil.h"

#include <stdlib.h>
#include <string.h>

#define HET_MIN_USERS 5

/* A number, or null when not finite / not computable. */
static json_t *num(int ok, double v) { return ok ? json_real(v) : json_null(); }

/* Adds users, converted, rate, ci_low, ci_high and open to o. */
static json_t *rate_fields(json_t *o, int64_t users, int64_t conv, int64_t open) {
  double lo = 0, hi = 0;
  int ok = sd_wilson(conv, users, SD_Z95, &lo, &hi) == 0;
  json_object_set_new(o, "users", json_integer(users));
  json_object_set_new(o, "converted", json_integer(conv));
  json_object_set_new(o, "rate", num(ok, ok ? (double)conv / (double)users : 0));
  json_object_set_new(o, "ci_low", num(ok, lo));
  json_object_set_new(o, "ci_high", num(ok, hi));
  json_object_set_new(o, "open", json_integer(open));
  return o;
}

/* ---- results ---- */

/* Per variant totals of one stratum (or of all, pooled). */
typedef struct {
  int has_segment;
  int64_t segment;
  int64_t users[SD_EXP_VARIANTS_MAX], conv[SD_EXP_VARIANTS_MAX],
      open[SD_EXP_VARIANTS_MAX];
} stratum;

/* effect, ci_low, ci_high of variant v against control into o. */
static void effect_fields(json_t *o, const stratum *s, int v) {
  double d = 0, lo = 0, hi = 0;
  int ok = sd_newcombe(s->conv[v], s->users[v], s->conv[0], s->users[0],
                       SD_Z95, &d, &lo, &hi) == 0;
  json_object_set_new(o, "effect", num(ok, d));
  json_object_set_new(o, "ci_low", num(ok, lo));
  json_object_set_new(o, "ci_high", num(ok, hi));
}

/* Adds "variants": [...], "effect", "ci_low", "ci_high", "effects": [...]
 * of one stratum to o (returned); the top-level effect is the first
 * treatment's. */
static json_t *stratum_json(json_t *o, const sd_exp_def *d, const stratum *s) {
  json_t *vars = json_array(), *effs = json_array();
  for (int v = 0; v < d->n_variants; v++) {
    json_array_append_new(vars, rate_fields(json_pack("{s:s}", "variant", d->variants[v]),
                                            s->users[v], s->conv[v], s->open[v]));
    if (v == 0) continue;
    json_t *e = json_pack("{s:s}", "variant", d->variants[v]);
    effect_fields(e, s, v);
    json_array_append_new(effs, e);
  }
  json_object_set_new(o, "variants", vars);
  effect_fields(o, s, 1);
  json_object_set_new(o, "effects", effs);
  return o;
}

/* Groups cells (ordered by segment, variant) into strata; *n strata. */
static stratum *group_cells(const sd_exp_def *d, const sd_exp_cell *c, size_t nc,
                            stratum *pooled, size_t *n) {
  stratum *s = calloc(nc ? nc : 1, sizeof(*s));
  *n = 0;
  memset(pooled, 0, sizeof(*pooled));
  for (size_t i = 0; s && i < nc; i++) {
    int v = c[i].variant;
    if (v < 0 || v >= d->n_variants) continue;
    if (*n == 0 || s[*n - 1].has_segment != c[i].has_segment ||
        s[*n - 1].segment != c[i].segment) {
      s[*n].has_segment = c[i].has_segment;
      s[(*n)++].segment = c[i].segment;
    }
    stratum *t = &s[*n - 1];
    t->users[v] += c[i].users, t->conv[v] += c[i].converted, t->open[v] += c[i].open;
    pooled->users[v] += c[i].users, pooled->conv[v] += c[i].converted;
    pooled->open[v] += c[i].open;
  }
  return s;
}

/* Cochran's Q of the first treatment's effect across the strata. */
static json_t *heterogeneity(const sd_exp_def *d, const stratum *s, size_t n) {
  double *eff = calloc(n ? n : 1, sizeof(double)), *var = calloc(n ? n : 1, sizeof(double));
  int k = 0;
  for (size_t i = 0; eff && var && i < n; i++) {
    const stratum *t = &s[i];
    if (t->users[0] < HET_MIN_USERS || t->users[1] < HET_MIN_USERS) continue;
    eff[k] = (double)t->conv[1] / (double)t->users[1] - (double)t->conv[0] / (double)t->users[0];
    var[k++] = sd_diff_var_ac(t->conv[1], t->users[1], t->conv[0], t->users[0]);
  }
  sd_cochran c;
  int ok = eff && var && sd_cochran_q(eff, var, k, &c) == 0;
  free(eff);
  free(var);
  return json_pack("{s:s,s:s,s:i,s:o,s:o,s:o,s:o}", "method", "cochran_q",
                   "variant", d->variants[1], "strata", k, "statistic", num(ok, ok ? c.q : 0),
                   "df", ok ? json_integer(c.df) : json_null(), "p_value",
                   num(ok, ok ? c.p_value : 0), "i2", num(ok, ok ? c.i2 : 0));
}

int h_experiment_results(sd_req *req, sd_reply *rep) {
  sd_exp_def d;
  int rc = strlen(req->params[0]) > SD_EXP_NAME_MAX ? SD_ENOTFOUND
                                                    : sd_exp_read_def(req->params[0], &d, NULL);
  if (rc < 0)
    return sd_reply_error(rep, rc, rc == SD_ENOTFOUND ? "no such experiment" : NULL, NULL);
  int64_t now = sd_now_ms();
  sd_exp_cell *cells;
  size_t nc, ns;
  if ((rc = sd_exp_read_cells(&d, now, &cells, &nc)) < 0)
    return sd_reply_error(rep, rc, NULL, NULL);
  stratum pooled, *s = group_cells(&d, cells, nc, &pooled, &ns);
  free(cells);
  if (!s) return sd_reply_error(rep, SD_ENOMEM, NULL, NULL);
  json_t *by = json_array();
  for (size_t i = 0; i < ns; i++) {
    json_t *seg = s[i].has_segment ? json_integer(s[i].segment) : json_null();
    json_array_append_new(by, stratum_json(json_pack("{s:o}", "segment", seg), &d, &s[i]));
  }
  json_t *out = json_pack("{s:s,s:s,s:s,s:{s:s,s:i},s:o,s:o,s:o,s:o}", "name", d.name,
                          "status", d.stopped_at ? "stopped" : "running", "control",
                          d.variants[0], "outcome", "event_type", d.event_type,
                          "window_days", d.window_days, "pooled",
                          stratum_json(json_object(), &d, &pooled),
                          "by_segment", by, "heterogeneity", heterogeneity(&d, s, ns),
                          "computed_at", h_time(now));
  free(s);
  return sd_reply_json(rep, 200, out);
}

/* ---- outcomes per segment ---- */

/* Checks event_type and window_days; 0 or the error replied. */
static int outcome_query(sd_req *req, sd_reply *rep, const char **type,
                         long long *days) {
  *type = sd_req_query(req, "event_type");
  size_t n = *type ? strlen(*type) : 0;
  if (n == 0 || n > SD_MAX_ID)
    return sd_reply_error(rep, SD_EINVAL, "event_type is required (1..256 bytes)", NULL);
  if (h_query_int(sd_req_query(req, "window_days"), 1, SD_EXP_WINDOW_MAX, 7, days) < 0)
    return sd_reply_error(rep, SD_EINVAL, "window_days must be an integer of 1..365", NULL);
  int known = sd_exp_read_event_type_known(*type);
  if (known == 0)
    return sd_reply_error(rep, SD_EINVAL, "unknown event_type: no event of this type has been ingested", NULL);
  return known < 0 ? sd_reply_error(rep, known, NULL, NULL) : 0;
}

/* One segment's row: rate fields, label and lift against the population. */
static json_t *segment_row(const sd_exp_cell *c, const sd_snap_space *sp,
                           double pop_rate) {
  int i = sp->has_model ? sd_snap_cluster_index(sp, c->segment) : -1;
  json_t *o = json_pack("{s:I,s:s?}", "segment", (json_int_t)c->segment, "label",
                        i >= 0 ? sp->clusters[i].label : NULL);
  rate_fields(o, c->users, c->converted, c->open);
  int ok = c->users > 0 && pop_rate > 0;
  json_object_set_new(o, "lift", num(ok, ok ? (double)c->converted / (double)c->users / pop_rate : 0));
  return o;
}

int h_outcomes(sd_req *req, sd_reply *rep) {
  const char *type;
  long long days;
  if (outcome_query(req, rep, &type, &days) < 0) return SD_EINVAL;
  int64_t now = sd_now_ms();
  sd_exp_cell *c;
  size_t n;
  int rc = sd_exp_read_outcomes(type, days * 86400000LL, now, &c, &n);
  if (rc < 0) return sd_reply_error(rep, rc, NULL, NULL);
  int64_t users = 0, conv = 0, open = 0, nu = 0, nc = 0, no = 0;
  for (size_t i = 0; i < n; i++) {
    users += c[i].users, conv += c[i].converted, open += c[i].open;
    if (!c[i].has_segment) nu += c[i].users, nc += c[i].converted, no += c[i].open;
  }
  sd_snapshot *snap = sd_snapshot_acquire();
  if (!snap) {
    free(c);
    return sd_reply_error(rep, SD_ENOTREADY, NULL, NULL);
  }
  const sd_snap_space *sp = &snap->spaces[SD_SPACE_SEGMENTS];
  double pop = users ? (double)conv / (double)users : 0;
  json_t *segs = json_array();
  for (size_t i = 0; i < n; i++)
    if (c[i].has_segment) json_array_append_new(segs, segment_row(&c[i], sp, pop));
  json_t *out = json_pack("{s:s,s:I,s:s,s:I,s:o,s:o,s:o,s:o}", "event_type", type,
                          "window_days", (json_int_t)days, "anchor", "first_seen",
                          "model_version", (json_int_t)sp->version, "population",
                          rate_fields(json_object(), users, conv, open), "unsegmented",
                          rate_fields(json_object(), nu, nc, no), "segments", segs,
                          "computed_at", h_time(now));
  sd_snapshot_release(snap);
  free(c);
  return sd_reply_json(rep, 200, out);
}
