/* json_out.c -- the JSON writer of the hot read paths (json_out.h). */
#include "segmentd/json_out.h"

#include "segmentd/err.h"
#include "segmentd/timeutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t sd_utf8_len(const unsigned char *s, size_t n) {
  size_t k = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
             : s[0] >= 0xe0                ? 3
             : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
  if (!k || k > n) return 0;
  for (size_t i = 1; i < k; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  if ((k == 3 && s[0] == 0xe0 && s[1] < 0xa0) || /* overlong */
      (k == 3 && s[0] == 0xed && s[1] >= 0xa0) || /* surrogate */
      (k == 4 && s[0] == 0xf0 && s[1] < 0x90) ||
      (k == 4 && s[0] == 0xf4 && s[1] >= 0x90))
    return 0;
  return k;
}

/* Room for n more bytes (and a NUL); 0 or -1 after a failure. */
static int reserve(sd_jout *o, size_t n) {
  if (o->err) return -1;
  if (o->len + n + 1 <= o->cap) return 0;
  size_t cap = o->cap ? o->cap : 512;
  while (cap < o->len + n + 1) cap *= 2;
  char *p = realloc(o->p, cap);
  if (!p) {
    o->err = SD_ENOMEM;
    return -1;
  }
  o->p = p;
  o->cap = cap;
  return 0;
}

void sd_jout_raw(sd_jout *o, const char *s, size_t n) {
  if (reserve(o, n) < 0) return;
  memcpy(o->p + o->len, s, n);
  o->len += n;
}

/* The escape of byte run s[0..] that needs one, into esc; its length,
 * and the input bytes it stands for in *used. */
static size_t escape_one(const unsigned char *s, size_t n, char esc[8],
                         size_t *used) {
  *used = 1;
  if (*s == '"' || *s == '\\') {
    esc[0] = '\\', esc[1] = (char)*s;
    return 2;
  }
  if (*s == '\n' || *s == '\r' || *s == '\t') {
    esc[0] = '\\', esc[1] = *s == '\n' ? 'n' : *s == '\r' ? 'r' : 't';
    return 2;
  }
  if (*s < 0x20 || *s == 0x7f)
    return (size_t)snprintf(esc, 8, "\\u%04x", *s);
  size_t k = sd_utf8_len(s, n);
  if (k == 0) {
    memcpy(esc, "\\ufffd", 6);
    return 6;
  }
  memcpy(esc, s, k);
  *used = k;
  return k;
}

void sd_jout_str(sd_jout *o, const char *s) {
  if (!s) {
    sd_jout_lit(o, "null");
    return;
  }
  const unsigned char *u = (const unsigned char *)s;
  size_t n = strlen(s);
  sd_jout_lit(o, "\"");
  for (size_t i = 0; i < n;) {
    size_t run = i; /* bytes that need no escaping, copied whole */
    while (run < n && u[run] >= 0x20 && u[run] < 0x7f && u[run] != '"' &&
           u[run] != '\\')
      run++;
    sd_jout_raw(o, s + i, run - i);
    if ((i = run) >= n) break;
    char esc[8];
    size_t used, m = escape_one(u + i, n - i, esc, &used);
    sd_jout_raw(o, esc, m);
    i += used;
  }
  sd_jout_lit(o, "\"");
}

/* Decimal digits of v into the end of buf; returns the start. */
static char *digits(uint64_t v, char *end) {
  do {
    *--end = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return end;
}

/* Moves the text [p, end) to the front of out; its length. */
static size_t to_front(char *out, const char *p, const char *end) {
  size_t n = (size_t)(end - p);
  memmove(out, p, n);
  out[n] = 0;
  return n;
}

size_t sd_fmt_int(char out[24], int64_t v) {
  char *end = out + 23;
  uint64_t m = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  char *p = digits(m, end);
  if (v < 0) *--p = '-';
  return to_front(out, p, end);
}

static const double POW10[10] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

size_t sd_fmt_fixed(char out[40], double v, int decimals, int trim) {
  if (decimals < 1) decimals = 1;
  if (decimals > 9) decimals = 9;
  if (!isfinite(v)) {
    memcpy(out, "null", 5);
    return 4;
  }
  if (fabs(v) >= 1e12 || fabs(v) * POW10[decimals] >= 9e18) /* no room */
    return (size_t)snprintf(out, 40, "%.*e", decimals, v);
  uint64_t scale = (uint64_t)POW10[decimals];
  uint64_t m = (uint64_t)llround(fabs(v) * POW10[decimals]);
  char *end = out + 39, *p = digits(m % scale, end);
  while (p > end - decimals) *--p = '0'; /* every fraction digit */
  char *q = end;
  while (trim && q > p + 1 && q[-1] == '0') q--; /* one is kept */
  *--p = '.';
  p = digits(m / scale, p);
  if (v < 0 && m) *--p = '-';
  return to_front(out, p, q);
}

void sd_jout_int(sd_jout *o, int64_t v) {
  char buf[24];
  size_t n = sd_fmt_int(buf, v);
  sd_jout_raw(o, buf, n);
}

void sd_jout_real(sd_jout *o, double v) {
  char buf[40];
  size_t n = sd_fmt_fixed(buf, v, 6, 1);
  sd_jout_raw(o, buf, n);
}

void sd_jout_bool(sd_jout *o, int v) {
  if (v) sd_jout_lit(o, "true");
  else sd_jout_lit(o, "false");
}

void sd_jout_time(sd_jout *o, int64_t ms) {
  char buf[48];
  sd_time_format(ms, buf);
  sd_jout_lit(o, "\"");
  sd_jout_raw(o, buf, strlen(buf));
  sd_jout_lit(o, "\"");
}

void sd_jout_key(sd_jout *o, const char *key) {
  sd_jout_str(o, key);
  sd_jout_lit(o, ":");
}

char *sd_jout_take(sd_jout *o, size_t *len) {
  if (reserve(o, 0) < 0) {
    sd_jout_free(o);
    return NULL;
  }
  o->p[o->len] = 0;
  char *p = o->p;
  *len = o->len;
  memset(o, 0, sizeof(*o));
  return p;
}

void sd_jout_free(sd_jout *o) {
  free(o->p);
  memset(o, 0, sizeof(*o));
}
