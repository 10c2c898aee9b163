/*
 * cli_import_progress.c -- the resume point (progress file) and the
 * progress display of `segmentd import` (cli_import_int.h).
 */
#include "cli_import_int.h"
#include "segmentd/cli.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAR_WIDTH 24
#define TTY_EVERY_S 0.2

uint64_t imp_fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

static long long get_ll(json_t *o, const char *k, int *ok) {
  json_t *v = json_object_get(o, k);
  if (!json_is_integer(v) || json_integer_value(v) < 0) *ok = 0;
  return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

int imp_progress_load(const char *path, imp_progress *p, char *msg,
                      size_t cap) {
  FILE *f = fopen(path, "r");
  if (!f) return 1;
  json_error_t je;
  json_t *o = json_loadf(f, 0, &je);
  fclose(f);
  int ok = json_is_object(o);
  const char *h = json_string_value(json_object_get(o, "prefix_fnv1a64"));
  const char *url = json_string_value(json_object_get(o, "url"));
  snprintf(p->url, sizeof(p->url), "%s", url ? url : "");
  p->offset = get_ll(o, "offset", &ok);
  p->line = get_ll(o, "line", &ok);
  p->accepted = get_ll(o, "accepted", &ok);
  p->duplicates = get_ll(o, "duplicates", &ok);
  p->bad = get_ll(o, "bad", &ok);
  char *end = NULL;
  p->hash = h ? strtoull(h, &end, 16) : 0;
  if (!h || !*h || *end || !url) ok = 0;
  json_decref(o);
  if (!ok) {
    snprintf(msg, cap, "%s is not a segmentd import progress file (remove "
             "it, or pass --restart)", path);
    return -1;
  }
  return 0;
}

int imp_progress_save(const char *path, const char *file,
                      const imp_progress *p, char *msg, size_t cap) {
  char tmp[4200], hash[17];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  snprintf(hash, sizeof(hash), "%016" PRIx64, p->hash);
  json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:s,s:I,s:I,s:I}", "file", file,
                        "url", p->url, "offset", (json_int_t)p->offset, "line",
                        (json_int_t)p->line, "prefix_fnv1a64", hash,
                        "accepted", (json_int_t)p->accepted, "duplicates",
                        (json_int_t)p->duplicates, "bad", (json_int_t)p->bad);
  FILE *f = o ? fopen(tmp, "w") : NULL;
  int rc = f && json_dumpf(o, f, JSON_COMPACT) == 0 && fputc('\n', f) != EOF
               ? 0 : -1;
  if (f && fclose(f) != 0) rc = -1;
  json_decref(o);
  if (rc == 0 && rename(tmp, path) != 0) rc = -1;
  if (rc < 0) snprintf(msg, cap, "cannot write the progress file %s", path);
  return rc;
}

/* "1:02:03" or "2:03" */
static void fmt_secs(double s, char *out, size_t cap) {
  long t = (long)(s + 0.5);
  if (t >= 3600)
    snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf(out, cap, "%ld:%02ld", t / 60, t % 60);
}

void imp_progress_show(imp_progress *p, int final) {
  double now = sd_cli_now(), el = now - p->started;
  if (p->quiet || (!p->tty && !p->interval_s)) return;
  if (!final && now - p->shown < (p->tty ? TTY_EVERY_S : p->interval_s))
    return;
  p->shown = now;
  long long lines = p->read_line - p->start_line;
  long long bytes = p->read_offset - p->start_offset;
  double rate = el > 0 ? lines / el : 0, brate = el > 0 ? bytes / el : 0;
  double frac = p->total > 0 ? (double)p->read_offset / p->total : -1;
  char eta[32] = "?";
  if (frac >= 0 && brate > 0)
    fmt_secs((p->total - p->read_offset) / brate, eta, sizeof(eta));
  if (p->tty) {
    char bar[BAR_WIDTH + 1];
    int fill = frac >= 0 ? (int)(frac * BAR_WIDTH + 0.5) : 0;
    for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[BAR_WIDTH] = 0;
    fprintf(stderr, "\r\033[K[%s] %5.1f%%  line %lld  %.0f lines/s  ETA %s%s",
            bar, frac >= 0 ? 100 * frac : 0.0, p->read_line, rate, eta,
            final ? "\r\033[K" : "");
  } else if (!final) {
    char where[96] = "";
    if (frac >= 0)
      snprintf(where, sizeof(where), ", %.1f%% of the file, ETA %s",
               100 * frac, eta);
    fprintf(stderr, "segmentd import: line %lld%s, %.0f lines/s; %lld "
            "accepted, %lld duplicates, %lld bad\n", p->read_line, where,
            rate, p->accepted, p->duplicates, p->bad);
  }
  fflush(stderr);
}
