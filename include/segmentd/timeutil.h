/*
 * timeutil.h -- wall-clock time, RFC 3339 parsing and formatting, in epoch
 * milliseconds (UTC). Pure functions, thread-safe.
 */
#ifndef SEGMENTD_TIMEUTIL_H
#define SEGMENTD_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

int64_t sd_now_ms(void);

/* Monotonic clock in nanoseconds, for durations. */
int64_t sd_mono_ns(void);

/* The latest time segmentd accepts: 9999-12-31T23:59:59.999Z. */
#define SD_TIME_MAX_MS 253402300799999LL

/* Parses "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" (a 't' or ' ' may
 * stand for 'T', 'z' for 'Z'); the instant must lie in 1970..9999 UTC.
 * 0 or SD_EINVAL. */
int sd_time_parse(const char *s, size_t len, int64_t *ms);

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 chars + NUL) into out[48]. */
void sd_time_format(int64_t ms, char out[48]);

#endif
