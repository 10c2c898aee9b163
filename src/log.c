/* log.c -- leveled stderr logging (see log.h). */
#include "segmentd/log.h"
#include "segmentd/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int log_level = SD_LOG_INFO;
static const char *const log_names[] = {"error", "warn", "info", "debug"};

int sd_log_set_level(const char *name) {
  for (int i = 0; i < 4; i++)
    if (!strcmp(name, log_names[i])) {
      log_level = i;
      return 0;
    }
  return SD_EINVAL;
}

void sd_log(int level, const char *fmt, ...) {
  if (level > log_level) return;
  char msg[1024], ts[32];
  struct timespec now;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &tm);
  strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s.%03ldZ %-5s %s\n", ts, now.tv_nsec / 1000000L,
          log_names[level], msg);
}
