/* timeutil.c -- RFC 3339 in and out, clocks (see timeutil.h). */
#include "segmentd/timeutil.h"
#include "segmentd/err.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t sd_now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int64_t sd_mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int digits(const char *s, size_t at, size_t n, size_t len, int *out) {
  int v = 0;
  if (at + n > len) return -1;
  for (size_t i = 0; i < n; i++) {
    char c = s[at + i];
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return 0;
}

static int month_days(int y, int m) {
  static const int md[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return md[m - 1] + (m == 2 && leap);
}

/* Parses the zone at s[i..]: Z or +HH:MM / -HH:MM; offset in minutes. */
static int parse_zone(const char *s, size_t i, size_t len, int *off_min) {
  if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
    *off_min = 0;
    return i + 1 == len ? 0 : -1;
  }
  int hh, mm;
  if (i >= len || (s[i] != '+' && s[i] != '-') || i + 6 != len ||
      digits(s, i + 1, 2, len, &hh) || s[i + 3] != ':' ||
      digits(s, i + 4, 2, len, &mm) || hh > 23 || mm > 59)
    return -1;
  *off_min = (s[i] == '-' ? -1 : 1) * (hh * 60 + mm);
  return 0;
}

int sd_time_parse(const char *s, size_t len, int64_t *ms) {
  int y, mo, d, h, mi, se, frac = 0, off;
  if (digits(s, 0, 4, len, &y) || len < 20 || s[4] != '-' ||
      digits(s, 5, 2, len, &mo) || s[7] != '-' || digits(s, 8, 2, len, &d) ||
      (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      digits(s, 11, 2, len, &h) || s[13] != ':' ||
      digits(s, 14, 2, len, &mi) || s[16] != ':' ||
      digits(s, 17, 2, len, &se))
    return SD_EINVAL;
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) ||
      h > 23 || mi > 59 || se > 60)
    return SD_EINVAL;
  size_t i = 19;
  if (i < len && s[i] == '.') {
    size_t st = ++i;
    int scale = 100;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
      frac += (s[i] - '0') * scale;
      scale /= 10;
      i++;
    }
    if (i == st || i - st > 9) return SD_EINVAL;
  }
  if (parse_zone(s, i, len, &off)) return SD_EINVAL;
  if (se == 60) se = 59; /* a leap second maps onto the second before */
  int64_t days = days_from_civil(y, mo, d);
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - (int64_t)off * 60;
  if (secs < 0 || secs * 1000 + frac > SD_TIME_MAX_MS) return SD_EINVAL;
  *ms = secs * 1000 + frac;
  return 0;
}

/* The proleptic Gregorian date of a day count since 1970-01-01
 * (Hinnant's algorithm, the inverse of days_from_civil). */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

/* n decimal digits of v, zero-padded, at p. */
static void put_digits(char *p, int64_t v, int n) {
  while (n-- > 0) {
    p[n] = (char)('0' + v % 10);
    v /= 10;
  }
}

/* Without gmtime_r and printf: this runs for every answer on the lookup
 * path (gmtime_r takes the time zone lock). */
void sd_time_format(int64_t ms, char out[48]) {
  if (ms < 0) ms = 0;
  if (ms > SD_TIME_MAX_MS) ms = SD_TIME_MAX_MS; /* four-digit years */
  int64_t secs = ms / 1000, days = secs / 86400, sod = secs % 86400, y;
  int mo, d;
  civil_from_days(days, &y, &mo, &d);
  memcpy(out, "0000-00-00T00:00:00.000Z", 25);
  put_digits(out, y, 4);
  put_digits(out + 5, mo, 2);
  put_digits(out + 8, d, 2);
  put_digits(out + 11, sod / 3600, 2);
  put_digits(out + 14, sod / 60 % 60, 2);
  put_digits(out + 17, sod % 60, 2);
  put_digits(out + 20, ms % 1000, 3);
}
