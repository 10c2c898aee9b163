/*
 * json_out.h -- a small JSON writer for the hot read paths.
 *
 * Owns: sd_jout, a growable byte buffer that JSON text is appended to
 * without building a tree (the segment answers are written this way: no
 * allocation per value, numbers without printf). The caller owns the
 * buffer: take it with sd_jout_take() (then free() it) or drop it with
 * sd_jout_free(). On allocation failure the writer stops appending and
 * sets err; check it once at the end.
 *
 * Also owns the UTF-8 check that every JSON text writer of segmentd
 * shares (sd_utf8_len): strings are written as valid UTF-8, an invalid
 * byte becoming U+FFFD.
 */
#ifndef SEGMENTD_JSON_OUT_H
#define SEGMENTD_JSON_OUT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  char *p;
  size_t len, cap;
  int err; /* SD_ENOMEM once an append failed */
} sd_jout;

/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
size_t sd_utf8_len(const unsigned char *s, size_t n);

/* Number text without printf, NUL-terminated, returning its length:
 * an integer; a fixed-point number with `decimals` (1..9) fraction
 * digits, trailing zeros cut when trim (one is kept: "1.0"), "null" when
 * not finite, exponent notation from 1e12 on (or
 * where the digits would pass 9e18). */
size_t sd_fmt_int(char out[24], int64_t v);
size_t sd_fmt_fixed(char out[40], double v, int decimals, int trim);

void sd_jout_raw(sd_jout *o, const char *s, size_t n);
#define sd_jout_lit(o, s) sd_jout_raw((o), (s), sizeof(s) - 1)
void sd_jout_str(sd_jout *o, const char *s); /* quoted, escaped; NULL: null */
void sd_jout_int(sd_jout *o, int64_t v);
/* v with 6 decimals at most, always with a decimal point ("1.0");
 * not finite: null. */
void sd_jout_real(sd_jout *o, double v);
void sd_jout_bool(sd_jout *o, int v);
void sd_jout_time(sd_jout *o, int64_t ms); /* "2026-11-27T10:00:00.000Z" */
/* `"key":` */
void sd_jout_key(sd_jout *o, const char *key);

/* The text, NUL-terminated (length in *len), now the caller's to free();
 * NULL (and the buffer freed) after an allocation failure. */
char *sd_jout_take(sd_jout *o, size_t *len);
void sd_jout_free(sd_jout *o);

#endif
