/*
 * log.h -- leveled logging to stderr, one line per message, with a UTC
 * timestamp. Thread-safe (one fprintf per line). Never log secrets or keys.
 */
#ifndef SEGMENTD_LOG_H
#define SEGMENTD_LOG_H

enum { SD_LOG_ERROR, SD_LOG_WARN, SD_LOG_INFO, SD_LOG_DEBUG };

/* Sets the level from "error" | "warn" | "info" | "debug"; 0 or SD_EINVAL. */
int sd_log_set_level(const char *name);
void sd_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define sd_log_error(...) sd_log(SD_LOG_ERROR, __VA_ARGS__)
#define sd_log_warn(...) sd_log(SD_LOG_WARN, __VA_ARGS__)
#define sd_log_info(...) sd_log(SD_LOG_INFO, __VA_ARGS__)
#define sd_log_debug(...) sd_log(SD_LOG_DEBUG, __VA_ARGS__)

#endif
