/*
 * log.h -- leveled, structured logging to stderr: one line per message.
 *
 * Owns: the level and format of every log line. The default format is one
 * JSON object per line, {"time", "level", "msg", ...fields}, with time in
 * RFC 3339 UTC with milliseconds; "text" gives the same information as
 * "<time> <level> <msg> key=value ...". Lines logged by a thread while it
 * handles a request carry that request's "request_id".
 *
 * Threads: any thread. A line is built in a bounded buffer (long messages
 * are cut, marked with "..." at the end) and written whole, so lines of
 * concurrent threads never interleave. While the writer thread runs
 * (sd_log_async_start), lines are handed to it and written in batches
 * off the caller's thread; otherwise each is written at once.
 *
 * Never log secrets: API keys, webhook secrets, Authorization headers or
 * request bodies.
 */
#ifndef SEGMENTD_LOG_H
#define SEGMENTD_LOG_H

#include <stddef.h>

enum { SD_LOG_ERROR, SD_LOG_WARN, SD_LOG_INFO, SD_LOG_DEBUG };

/* Sets the level from "error" | "warn" | "info" | "debug"; 0 or SD_EINVAL. */
int sd_log_set_level(const char *name);
/* Sets the format from "json" | "text"; 0 or SD_EINVAL. */
int sd_log_set_format(const char *name);
/* 1 when lines of this level are written. */
int sd_log_enabled(int level);

void sd_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define sd_log_error(...) sd_log(SD_LOG_ERROR, __VA_ARGS__)
#define sd_log_warn(...) sd_log(SD_LOG_WARN, __VA_ARGS__)
#define sd_log_info(...) sd_log(SD_LOG_INFO, __VA_ARGS__)
#define sd_log_debug(...) sd_log(SD_LOG_DEBUG, __VA_ARGS__)

/* A field of a structured line: a string (NULL: JSON null), an integer or
 * a number (non-finite: null). Build them with the SD_LF_* macros. */
typedef enum { SD_LF_STRING, SD_LF_INT, SD_LF_NUMBER } sd_log_ftype;
typedef struct {
  const char *key; /* a literal of [a-z0-9_] */
  sd_log_ftype type;
  const char *s;
  long long i;
  double d;
} sd_log_field;

#define SD_LF_STR(k, v) ((sd_log_field){(k), SD_LF_STRING, (v), 0, 0})
#define SD_LF_I64(k, v) ((sd_log_field){(k), SD_LF_INT, NULL, (v), 0})
#define SD_LF_NUM(k, v) ((sd_log_field){(k), SD_LF_NUMBER, NULL, 0, (v)})

/* One line with msg and the n fields after it. */
void sd_log_fields(int level, const char *msg, const sd_log_field *f,
                   size_t n);

/* Starts the thread that writes log lines (0, or SD_ENOMEM: lines stay
 * synchronous). Call it where every thread's signal mask is set. */
int sd_log_async_start(void);
/* Writes every line handed over, stops the thread; later lines are
 * written at once. Idempotent. */
void sd_log_async_stop(void);

/* The request id the calling thread's next lines carry (NULL or "": none).
 * The string is borrowed until it is replaced or cleared. */
void sd_log_set_request_id(const char *id);

#endif
