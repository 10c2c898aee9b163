/* Unit tests of timeutil.c: RFC 3339 parsing and formatting. */
#include "check.h"
#include "segmentd/err.h"
#include "segmentd/timeutil.h"

static int64_t p(const char *s) {
  int64_t ms = -1;
  return sd_time_parse(s, strlen(s), &ms) == 0 ? ms : -1;
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
  return check_done("test_timeutil");
}
