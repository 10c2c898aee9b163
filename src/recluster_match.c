/*
 * recluster_match.c -- stable cluster ids across model versions.
 *
 * The live clusters are carried into the new model's vector space as the
 * mean of their sampled members' new vectors (so matching still works when
 * the encoder's projection was refitted). A Hungarian assignment on the
 * cosine between those and the new centroids pairs clusters; a pair above
 * --match-threshold keeps the old id (and with it the manual label). New
 * clusters without a partner are born with fresh ids; live clusters
 * without one are retired. A live cluster whose members spread over
 * several new clusters (each taking >= 20%) is recorded as a split; a new
 * cluster taking >= 50% of several live ones as a merge.
 */
#include "recluster_int.h"

#include "segmentd/cluster_eval.h"
#include "segmentd/err.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SPLIT_SHARE 0.2
#define MERGE_SHARE 0.5
#define MIN_MEMBERS 5

typedef struct {
  int ko, k;
  float *oldc;   /* ko x dim: live clusters in the new space */
  int64_t *cnt;  /* ko: sampled members of each live cluster */
  int64_t *tab;  /* ko x k: members of live o with new label j */
  double *sim;   /* ko x k cosine */
  int32_t *pair; /* ko: matched new cluster or -1 */
} match_ws;

static void ws_free(match_ws *w) {
  free(w->oldc), free(w->cnt), free(w->tab), free(w->sim), free(w->pair);
}

static int live_index(const sd_live_model *live, int64_t id) {
  for (int i = 0; i < live->k; i++)
    if (live->ids[i] == id) return i;
  return -1;
}

static int ws_build(const sd_live_model *live, const rc_points *p,
                    const rc_fit *f, match_ws *w) {
  int dim = p->dim;
  w->ko = live->k, w->k = f->k;
  size_t ko = (size_t)(w->ko ? w->ko : 1), k = (size_t)f->k;
  w->oldc = calloc(ko * (size_t)dim, sizeof(float));
  w->cnt = calloc(ko, sizeof(int64_t));
  w->tab = calloc(ko * k, sizeof(int64_t));
  w->sim = malloc(sizeof(double) * ko * k);
  w->pair = malloc(sizeof(int32_t) * ko);
  float *s = malloc(sizeof(float) * ko * k);
  if (!w->oldc || !w->cnt || !w->tab || !w->sim || !w->pair || !s) {
    free(s);
    return SD_ENOMEM;
  }
  for (size_t i = 0; i < p->n; i++) {
    int o = p->old_id[i] >= 0 ? live_index(live, p->old_id[i]) : -1;
    if (o < 0) continue;
    w->cnt[o]++;
    cblas_saxpy(dim, 1.0f, p->x + i * (size_t)dim, 1, w->oldc + (size_t)o * dim, 1);
    if (f->labels[i] >= 0) w->tab[(size_t)o * k + f->labels[i]]++;
  }
  for (int o = 0; o < w->ko; o++) {
    float len = cblas_snrm2(dim, w->oldc + (size_t)o * dim, 1);
    if (len > 0) cblas_sscal(dim, 1.0f / len, w->oldc + (size_t)o * dim, 1);
  }
  if (w->ko > 0)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, w->ko, w->k, dim, 1.0f,
                w->oldc, dim, f->centroids, dim, 0.0f, s, w->k);
  for (size_t i = 0; i < (size_t)w->ko * k; i++)
    w->sim[i] = w->cnt[i / k] ? s[i] : -2.0; /* no members: cannot match */
  free(s);
  return 0;
}

static int add_event(sd_proposal *out, const char *kind, json_t *from,
                     json_t *to) {
  sd_lineage_event *e = realloc(out->events, sizeof(*e) * (size_t)(out->n_events + 1));
  if (!e || !from || !to) {
    json_decref(from), json_decref(to);
    if (e) out->events = e;
    return SD_ENOMEM;
  }
  out->events = e;
  e = &out->events[out->n_events++];
  memset(e->kind, 0, sizeof(e->kind));
  strncpy(e->kind, kind, sizeof(e->kind) - 1);
  e->from = from;
  e->to = to;
  return 0;
}

/* Splits and merges read off the live x new contingency table. */
static int split_merge_events(const sd_live_model *live, const match_ws *w,
                              sd_proposal *out) {
  int rc = 0;
  for (int o = 0; o < w->ko && rc == 0; o++) {
    if (w->cnt[o] < MIN_MEMBERS) continue;
    json_t *to = json_array();
    for (int j = 0; j < w->k; j++)
      if (w->tab[(size_t)o * w->k + j] >= SPLIT_SHARE * (double)w->cnt[o])
        json_array_append_new(to, json_integer(out->ids[j]));
    if (json_array_size(to) >= 2)
      rc = add_event(out, "split", json_pack("[I]", (json_int_t)live->ids[o]), to);
    else
      json_decref(to);
  }
  for (int j = 0; j < w->k && rc == 0; j++) {
    json_t *from = json_array();
    for (int o = 0; o < w->ko; o++)
      if (w->cnt[o] >= MIN_MEMBERS &&
          w->tab[(size_t)o * w->k + j] >= MERGE_SHARE * (double)w->cnt[o])
        json_array_append_new(from, json_integer(live->ids[o]));
    if (json_array_size(from) >= 2)
      rc = add_event(out, "merged", from, json_pack("[I]", (json_int_t)out->ids[j]));
    else
      json_decref(from);
  }
  return rc;
}

/* Ids for the new clusters; born and retired events. */
static int assign_ids(const sd_config *cfg, const sd_live_model *live,
                      match_ws *w, sd_proposal *out, int *matched) {
  int rc = 0;
  for (int o = 0; o < w->ko; o++) w->pair[o] = -1;
  if (w->ko > 0)
    rc = sd_hungarian_max(w->sim, w->ko, w->k, w->pair);
  for (int j = 0; j < w->k; j++) out->ids[j] = -1;
  *matched = 0;
  for (int o = 0; o < w->ko && rc == 0; o++) {
    int j = w->pair[o];
    if (j >= 0 && w->sim[(size_t)o * w->k + j] >= cfg->match_threshold) {
      out->ids[j] = live->ids[o];
      (*matched)++;
    } else {
      w->pair[o] = -1;
      rc = add_event(out, "retired", json_pack("[I]", (json_int_t)live->ids[o]),
                     json_array());
    }
  }
  out->next_id = live->next_id;
  for (int j = 0; j < w->k && rc == 0; j++) {
    if (out->ids[j] >= 0) continue;
    out->ids[j] = out->next_id++;
    rc = add_event(out, "born", json_array(),
                   json_pack("[I]", (json_int_t)out->ids[j]));
  }
  return rc;
}

int rc_match(const sd_config *cfg, const sd_live_model *live,
             const rc_points *p, const rc_fit *f, sd_proposal *out) {
  match_ws w = {0};
  int matched = 0;
  out->ids = malloc(sizeof(int32_t) * (size_t)f->k);
  int rc = out->ids ? ws_build(live, p, f, &w) : SD_ENOMEM;
  if (rc == 0) rc = assign_ids(cfg, live, &w, out, &matched);
  if (rc == 0) rc = split_merge_events(live, &w, out);
  if (rc == 0) {
    int64_t had = 0, kept = 0;
    for (size_t i = 0; i < p->n; i++) {
      if (p->old_id[i] < 0 || f->labels[i] < 0) continue;
      had++;
      kept += out->ids[f->labels[i]] == p->old_id[i];
    }
    out->kept_share = had ? (double)kept / (double)had : 0;
    json_object_set_new(out->quality, "ids",
                        json_pack("{s:i,s:i,s:i,s:f}", "matched", matched,
                                  "born", f->k - matched, "retired",
                                  live->k - matched, "kept_share",
                                  out->kept_share));
  }
  ws_free(&w);
  return rc;
}
