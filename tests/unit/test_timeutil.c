/* Unit tests of timeutil.c: RFC 3339 parsing and formatting. */
#include "check.h"
#include "segmentd/err.h"
#include "segmentd/timeutil.h"

#include <stdio.h>
#include <time.h>

static int64_t p(const char *s) {
  int64_t ms = -1;
  return sd_time_parse(s, strlen(s), &ms) == 0 ? ms : -1;
}

/* sd_time_format (its own calendar arithmetic) against gmtime_r and
 * strftime over the whole range, leap days and the ends included. */
static void format_matches_gmtime(void) {
  int64_t edge[] = {0, 951782400000LL /* 2000-02-29 */, 4107542399999LL,
                    SD_TIME_MAX_MS};
  uint64_t x = 88172645463325252ULL;
  for (int i = 0; i < 20000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    int64_t ms = i < 4 ? edge[i] : (int64_t)(x % (uint64_t)SD_TIME_MAX_MS);
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char want[64], got[48];
    gmtime_r(&secs, &tm);
    size_t n = strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(want + n, sizeof(want) - n, ".%03dZ", (int)(ms % 1000));
    sd_time_format(ms, got);
    if (strcmp(got, want)) {
      CHECK_STR(got, want);
      return;
    }
  }
}

int main(void) {
  CHECK_INT(p("1970-01-01T00:00:00Z"), 0);
  CHECK_INT(p("2026-11-27T10:00:00Z"), 1795773600000LL);
  CHECK_INT(p("2026-11-27t10:00:00z"), 1795773600000LL);
  CHECK_INT(p("2026-11-27 10:00:00Z"), 1795773600000LL);
  CHECK_INT(p("2026-11-27T10:00:00.5Z"), 1795773600500LL);
  CHECK_INT(p("2026-11-27T10:00:00.123456789Z"), 1795773600123LL);
  CHECK_INT(p("2026-11-27T11:30:00+01:30"), 1795773600000LL);
  CHECK_INT(p("2026-11-27T08:00:00-02:00"), 1795773600000LL);
  CHECK_INT(p("2024-02-29T00:00:00Z"), 1709164800000LL); /* leap day */
  CHECK_INT(p("9999-12-31T23:59:59.999Z"), SD_TIME_MAX_MS);
  const char *bad[] = {"", "yesterday", "2026-11-27", "2026-11-27T10:00:00",
                       "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z",
                       "2026-11-27T24:00:00Z", "2026-11-27T10:00:00.Z",
                       "2026-11-27T10:00:00Zjunk", "1969-12-31T23:59:59Z",
                       "2026-11-27T10:00:00+1:00", "2026-11-27T10:60:00Z",
                       "9999-12-31T23:59:59-23:59" /* past year 9999 UTC */};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int64_t ms;
    CHECK_INT(sd_time_parse(bad[i], strlen(bad[i]), &ms), SD_EINVAL);
  }
  char out[48];
  sd_time_format(1795773600123LL, out);
  CHECK_STR(out, "2026-11-27T10:00:00.123Z");
  CHECK_INT(p(out), 1795773600123LL); /* round trip */
  format_matches_gmtime();
  return check_done("test_timeutil");
}
