/*
 * metrics_text.c -- the Prometheus text exposition writer (version 0.0.4)
 * and the lock-free histogram of metrics_int.h.
 */
#include "metrics_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mb_printf(mbuf *b, const char *fmt, ...) {
  for (int tries = 0; tries < 2 && !b->oom; tries++) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = 1;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = (b->cap + (size_t)n + 1) * 2;
    char *np = realloc(b->p, cap);
    if (!np) b->oom = 1;
    else b->p = np, b->cap = cap;
  }
}

void mt_family(mbuf *b, const char *name, const char *type, const char *help) {
  mb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A sample value: integers exactly, others with full precision. */
static void value(mbuf *b, double v) {
  if (isnan(v)) mb_printf(b, " NaN\n");
  else if (isinf(v)) mb_printf(b, v > 0 ? " +Inf\n" : " -Inf\n");
  else if (v == floor(v) && fabs(v) < 9e15) mb_printf(b, " %.0f\n", v);
  else mb_printf(b, " %.17g\n", v);
}

void mt_sample(mbuf *b, const char *name, const char *labels, double v) {
  mb_printf(b, labels[0] ? "%s{%s}" : "%s", name, labels);
  value(b, v);
}

void mt_metric(mbuf *b, const char *name, const char *type, const char *help,
               double v) {
  mt_family(b, name, type, help);
  mt_sample(b, name, "", v);
}

void mt_labels(char *out, size_t cap, const char *const *keys,
               const char *const *values, int n) {
  size_t len = 0;
  out[0] = 0;
  for (int i = 0; i < n; i++) {
    int w = snprintf(out + len, cap - len, "%s%s=\"", i ? "," : "", keys[i]);
    if (w < 0 || (size_t)w >= cap - len) break;
    len += (size_t)w;
    for (const char *v = values[i]; *v && len + 4 < cap; v++) {
      if (*v == '\\' || *v == '"') out[len++] = '\\', out[len++] = *v;
      else if (*v == '\n') out[len++] = '\\', out[len++] = 'n';
      else out[len++] = *v;
    }
    if (len + 2 > cap) break;
    out[len++] = '"';
    out[len] = 0;
  }
}

void mh_observe(mhist *h, const mhist_spec *s, double v) {
  int i = 0;
  while (i < s->nb && v > s->le[i]) i++;
  atomic_fetch_add_explicit(&h->n[i], 1, memory_order_relaxed);
  double scaled = v * s->scale;
  uint64_t add = scaled > 0 && scaled < 1.8e19 ? (uint64_t)llround(scaled) : 0;
  atomic_fetch_add_explicit(&h->sum, add, memory_order_relaxed);
}

uint64_t mh_count(const mhist *h, const mhist_spec *s) {
  uint64_t n = 0;
  for (int i = 0; i <= s->nb; i++)
    n += atomic_load_explicit(&h->n[i], memory_order_relaxed);
  return n;
}

void mh_render(mbuf *b, const char *name, const char *labels, const mhist *h,
               const mhist_spec *s) {
  uint64_t cum = 0;
  const char *sep = labels[0] ? "," : "";
  for (int i = 0; i <= s->nb; i++) {
    cum += atomic_load_explicit(&h->n[i], memory_order_relaxed);
    if (i < s->nb)
      mb_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
                s->le[i], (unsigned long long)cum);
    else
      mb_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                (unsigned long long)cum);
  }
  char sum[256], cnt[256];
  snprintf(sum, sizeof(sum), "%s_sum", name);
  snprintf(cnt, sizeof(cnt), "%s_count", name);
  mt_sample(b, sum, labels,
            (double)atomic_load_explicit(&h->sum, memory_order_relaxed) /
                s->scale);
  mt_sample(b, cnt, labels, (double)cum);
}
