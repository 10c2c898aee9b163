/*
 * metrics_int.h -- internals shared by metrics.c (the live gauges),
 * metrics_record.c (counters and histograms fed by the hot paths) and
 * metrics_text.c (the text exposition writer and the histogram type).
 */
#ifndef SEGMENTD_METRICS_INT_H
#define SEGMENTD_METRICS_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* A growing text buffer; oom is set once an allocation failed (the text
 * is then incomplete and must be discarded). */
typedef struct {
  char *p;
  size_t len, cap;
  int oom;
} mbuf;

void mb_printf(mbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* # HELP and # TYPE lines of one metric family. */
void mt_family(mbuf *b, const char *name, const char *type, const char *help);
/* A family of one unlabelled sample. */
void mt_metric(mbuf *b, const char *name, const char *type, const char *help,
               double v);
/* One sample: name{labels} v. labels is a rendered label list without
 * braces (mt_labels), "" for none. */
void mt_sample(mbuf *b, const char *name, const char *labels, double v);

/* Renders n label pairs (keys[i]="escaped values[i]") without braces into
 * out; label values are escaped (backslash, double quote, newline). */
void mt_labels(char *out, size_t cap, const char *const *keys,
               const char *const *values, int n);

/* A histogram with fixed upper bounds (at most MH_MAX, ascending; +Inf is
 * implied): per-bucket counts and the sum of the observations, in units
 * of 1/scale, as relaxed atomics. Cumulated when rendered. */
#define MH_MAX 18
typedef struct {
  _Atomic uint64_t n[MH_MAX + 1];
  _Atomic uint64_t sum;
} mhist;

typedef struct {
  const double *le;
  int nb;
  double scale; /* sum unit: 1e9 for seconds (ns), 1 for counts */
} mhist_spec;

void mh_observe(mhist *h, const mhist_spec *s, double v);
/* Observations so far (the +Inf bucket). */
uint64_t mh_count(const mhist *h, const mhist_spec *s);
/* The _bucket, _sum and _count samples of h under labels. */
void mh_render(mbuf *b, const char *name, const char *labels, const mhist *h,
               const mhist_spec *s);

/* metrics_record.c: the families of the recorded counters. */
void metrics_render_recorded(mbuf *b);

#endif
