/* handlers_common.c -- helpers shared by the handlers (see handlers.h). */
#include "handlers.h"
#include "segmentd/err.h"
#include "segmentd/ingest.h"
#include "segmentd/snapshot.h"
#include "segmentd/timeutil.h"

#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

json_t *h_body_object(sd_req *req, sd_reply *rep) {
  json_error_t jerr;
  char msg[256];
  json_t *v = json_loadb(req->body, req->body_len,
                         JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
  if (!v) {
    snprintf(msg, sizeof(msg), "malformed JSON at line %d column %d: %s",
             jerr.line, jerr.column, jerr.text);
    sd_reply_error(rep, SD_EJSON, msg, NULL);
    return NULL;
  }
  size_t lim = (size_t)req->cfg->max_depth;
  if (sd_json_depth(v, lim + 1) > lim) {
    json_decref(v);
    sd_reply_error(rep, SD_EINVAL, "JSON nested too deeply", NULL);
    return NULL;
  }
  if (!json_is_object(v)) {
    json_decref(v);
    sd_reply_error(rep, SD_EINVALID, "the body must be a JSON object", NULL);
    return NULL;
  }
  return v;
}

int h_reply_jout(sd_reply *rep, sd_jout *o) {
  sd_jout_lit(o, "\n");
  size_t len = 0;
  char *text = sd_jout_take(o, &len);
  if (!text) return sd_reply_error(rep, SD_ENOMEM, NULL, NULL);
  return sd_reply_text(rep, 200, NULL, text, len);
}

json_t *h_time(int64_t ms) {
  char buf[48];
  sd_time_format(ms, buf);
  return json_string(buf);
}

const sd_snap_space *h_space(sd_req *req, sd_reply *rep, sd_snapshot **snap) {
  *snap = sd_snapshot_acquire();
  const sd_snap_space *sp =
      *snap ? sd_snapshot_space(*snap, req->params[0]) : NULL;
  if (!sp) {
    sd_snapshot_release(*snap);
    *snap = NULL;
    sd_reply_error(rep, SD_ENOTFOUND, "no such space (intents | segments)",
                   NULL);
  }
  return sp;
}

void h_rank(const sd_snap_space *sp, const float *x, float *sims, int *best,
            int n) {
  cblas_sgemv(CblasRowMajor, CblasNoTrans, sp->k, sp->dim, 1.0f, sp->centroids,
              sp->dim, x, 1, 0.0f, sims, 1);
  for (int j = 0; j < n; j++) best[j] = -1;
  for (int i = 0; i < sp->k; i++) {
    int j = n;
    while (j > 0 && (best[j - 1] < 0 || sims[i] > sims[best[j - 1]])) j--;
    if (j == n) continue;
    memmove(best + j + 1, best + j, sizeof(int) * (size_t)(n - 1 - j));
    best[j] = i;
  }
}

json_t *h_cluster_ref(const sd_snap_space *sp, int i, float sim) {
  return json_pack("{s:I,s:s,s:f}", "id", (json_int_t)sp->clusters[i].id,
                   "label", sp->clusters[i].label, "similarity", (double)sim);
}

/* Parses an optional query value of decimal digits in [lo, hi] (dflt when
 * absent). 0, or -1 when present but not such a number. */
int h_query_int(const char *s, long long lo, long long hi,
                     long long dflt, long long *out) {
  if (!s) {
    *out = dflt;
    return 0;
  }
  size_t n = strlen(s);
  if (n == 0 || n > 19 || strspn(s, "0123456789") != n) return -1;
  errno = 0;
  long long v = strtoll(s, NULL, 10);
  if (errno || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

static int writer_start(sd_async *a) {
  h_writer *w = a->arg;
  w->a = a;
  w->job.ud = w;
  return sd_core_submit(w->core, &w->job);
}

void h_writer_async(h_writer *w, sd_req *req, sd_reply *rep,
                    void (*free_fn)(void *)) {
  w->core = req->core;
  rep->async = writer_start;
  rep->async_arg = w;
  rep->async_free = free_fn;
}

int h_field_error(sd_reply *rep, const char *field, const char *problem) {
  return sd_reply_error(rep, SD_EINVALID, problem,
                        json_pack("[{s:s,s:s}]", "field", field, "problem",
                                  problem));
}
