/*
 * log.c -- structured stderr logging (see log.h).
 *
 * A line is built in a stack buffer of LOG_LINE_MAX bytes: strings are
 * escaped as they are copied (JSON escapes for quotes, backslashes and
 * control characters; bytes that are not valid UTF-8 become U+FFFD), and a
 * value that does not fit is cut and ends in "...". The tail of the buffer
 * is kept for the closing characters, so every line is complete.
 *
 * Between sd_log_async_start and sd_log_async_stop a finished line is
 * copied under a mutex into the current one of two buffers, and a writer
 * thread, woken by the first line after it went idle, waits LOG_BATCH_NS
 * for more, swaps the buffers and writes the full one with one write(2):
 * requests never wait for the disk, and lines are written in batches. A line that
 * does not fit (the writer is behind by LOG_ASYNC_BUF bytes) is written
 * at once by its own thread instead; nothing is dropped.
 */
#include "segmentd/log.h"
#include "segmentd/err.h"
#include "segmentd/json_out.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192
#define LOG_TAIL 8        /* room for `..."}` and the newline */
#define LOG_FIELD_ROOM 64 /* a key and a number need at most this */

static int log_level = SD_LOG_INFO;
static int log_json = 1;
static _Thread_local const char *tl_request_id;
static const char *const log_names[] = {"error", "warn", "info", "debug"};

int sd_log_set_level(const char *name) {
  for (int i = 0; i < 4; i++)
    if (!strcmp(name, log_names[i])) {
      log_level = i;
      return 0;
    }
  return SD_EINVAL;
}

int sd_log_set_format(const char *name) {
  if (strcmp(name, "json") != 0 && strcmp(name, "text") != 0)
    return SD_EINVAL;
  log_json = !strcmp(name, "json");
  return 0;
}

int sd_log_enabled(int level) { return level <= log_level; }

void sd_log_set_request_id(const char *id) {
  tl_request_id = id && *id ? id : NULL;
}

typedef struct {
  char p[LOG_LINE_MAX];
  size_t len;
} line;

static size_t room(const line *b) {
  return b->len + LOG_TAIL < sizeof(b->p) ? sizeof(b->p) - LOG_TAIL - b->len
                                          : 0;
}

/* Appends s whole, or nothing when it does not fit. */
static void put(line *b, const char *s) {
  size_t n = strlen(s);
  if (n > room(b)) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

/* Copies s escaped (without quotes); cuts it with "..." when full. */
static void put_escaped(line *b, const char *s) {
  const unsigned char *u = (const unsigned char *)s;
  size_t n = strlen(s);
  for (size_t i = 0; i < n;) {
    size_t run = i; /* a run of bytes that need no escaping, copied whole */
    while (run < n && u[run] >= 0x20 && u[run] < 0x7f && u[run] != '"' &&
           u[run] != '\\')
      run++;
    if (run > i && run - i + 3 <= room(b)) {
      memcpy(b->p + b->len, s + i, run - i);
      b->len += run - i;
      i = run;
      continue;
    }
    char esc[8];
    const char *out = esc;
    size_t k = 1, m;
    if (u[i] == '"' || u[i] == '\\') {
      esc[0] = '\\', esc[1] = (char)u[i], m = 2;
    } else if (u[i] == '\n' || u[i] == '\r' || u[i] == '\t') {
      esc[0] = '\\', esc[1] = u[i] == '\n' ? 'n' : u[i] == '\r' ? 'r' : 't';
      m = 2;
    } else if (u[i] < 0x20 || u[i] == 0x7f) {
      m = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", u[i]);
    } else if (u[i] < 0x80) {
      out = s + i, m = 1;
    } else if ((k = sd_utf8_len(u + i, n - i)) > 0) {
      out = s + i, m = k;
    } else {
      out = "\\ufffd", m = 6, k = 1;
    }
    if (m + 3 > room(b)) { /* keep room for "..." */
      memcpy(b->p + b->len, "...", 3);
      b->len += 3;
      return;
    }
    memcpy(b->p + b->len, out, m);
    b->len += m;
    i += k;
  }
}

static void put_quoted(line *b, const char *s) {
  put(b, "\"");
  put_escaped(b, s);
  b->p[b->len++] = '"'; /* the tail always has room */
}

/* A text-format value is quoted only when it must be. */
static void put_text_value(line *b, const char *s) {
  int plain = *s != 0;
  for (const unsigned char *u = (const unsigned char *)s; *u && plain; u++)
    plain = *u > 0x20 && *u != 0x7f && *u != '"' && *u != '=' && *u != '\\';
  if (plain) put_escaped(b, s);
  else put_quoted(b, s);
}

static void put_field(line *b, const sd_log_field *f) {
  char num[LOG_FIELD_ROOM];
  if (room(b) < LOG_FIELD_ROOM) return;
  put(b, log_json ? ",\"" : " ");
  put(b, f->key);
  put(b, log_json ? "\":" : "=");
  if (f->type == SD_LF_STRING && f->s) {
    if (log_json) put_quoted(b, f->s);
    else put_text_value(b, f->s);
    return;
  }
  if (f->type == SD_LF_INT)
    sd_fmt_int(num, f->i);
  else if (f->type == SD_LF_NUMBER)
    sd_fmt_fixed(num, f->d, 3, 0); /* "null" when not finite */
  else
    memcpy(num, "null", 5);
  put(b, num);
}

/* RFC 3339, UTC, milliseconds: 2026-11-27T10:00:00.123Z. The part up to
 * the second is formatted once per second and thread. */
static void put_time(line *b) {
  static _Thread_local time_t tl_sec = -1;
  static _Thread_local char tl_ts[40];
  struct timespec now;
  char out[64];
  clock_gettime(CLOCK_REALTIME, &now);
  if (now.tv_sec != tl_sec) {
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    strftime(tl_ts, sizeof(tl_ts), "%Y-%m-%dT%H:%M:%S", &tm);
    tl_sec = now.tv_sec;
  }
  size_t n = strlen(tl_ts);
  int ms = (int)(now.tv_nsec / 1000000L);
  memcpy(out, tl_ts, n);
  out[n] = '.';
  out[n + 1] = (char)('0' + ms / 100);
  out[n + 2] = (char)('0' + ms / 10 % 10);
  out[n + 3] = (char)('0' + ms % 10);
  memcpy(out + n + 4, "Z", 2);
  put(b, out);
}

static void write_all(const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(STDERR_FILENO, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    n -= (size_t)w;
  }
}

/* ---- the writer thread ---- */

#define LOG_ASYNC_BUF (512 * 1024)
#define LOG_BATCH_NS 1000000L /* lines wait at most about this long */

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char *buf[2];
  size_t len; /* bytes in buf[cur] */
  int cur, running, stopping;
  pthread_t th;
} lq = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {NULL, NULL},
        0, 0, 0, 0, 0};
static atomic_int lq_on;

static void *log_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&lq.mu);
  for (;;) {
    while (!lq.len && !lq.stopping) pthread_cond_wait(&lq.cv, &lq.mu);
    if (!lq.len) break; /* stopping, and everything is written */
    if (!lq.stopping) { /* let a batch gather: one wake-up per LOG_BATCH_NS */
      pthread_mutex_unlock(&lq.mu);
      nanosleep(&(struct timespec){0, LOG_BATCH_NS}, NULL);
      pthread_mutex_lock(&lq.mu);
    }
    char *p = lq.buf[lq.cur];
    size_t n = lq.len;
    lq.cur ^= 1; /* appenders go on in the other buffer meanwhile */
    lq.len = 0;
    pthread_mutex_unlock(&lq.mu);
    write_all(p, n);
    pthread_mutex_lock(&lq.mu);
  }
  pthread_mutex_unlock(&lq.mu);
  return NULL;
}

int sd_log_async_start(void) {
  if (atomic_load(&lq_on)) return 0;
  lq.buf[0] = malloc(LOG_ASYNC_BUF);
  lq.buf[1] = malloc(LOG_ASYNC_BUF);
  lq.len = 0, lq.cur = 0, lq.stopping = 0, lq.running = 1;
  if (!lq.buf[0] || !lq.buf[1] ||
      pthread_create(&lq.th, NULL, log_main, NULL) != 0) {
    free(lq.buf[0]);
    free(lq.buf[1]);
    lq.buf[0] = lq.buf[1] = NULL;
    lq.running = 0;
    return SD_ENOMEM;
  }
  atomic_store(&lq_on, 1);
  return 0;
}

void sd_log_async_stop(void) {
  if (!atomic_load(&lq_on)) return;
  pthread_mutex_lock(&lq.mu);
  lq.running = 0; /* new lines are written directly from here on */
  lq.stopping = 1;
  pthread_cond_signal(&lq.cv);
  pthread_mutex_unlock(&lq.mu);
  pthread_join(lq.th, NULL);
  atomic_store(&lq_on, 0);
  free(lq.buf[0]);
  free(lq.buf[1]);
  lq.buf[0] = lq.buf[1] = NULL;
}

/* Hands a finished line to the writer thread, or writes it now. */
static void out(const char *p, size_t n) {
  if (atomic_load_explicit(&lq_on, memory_order_acquire)) {
    pthread_mutex_lock(&lq.mu);
    if (lq.running && lq.len + n <= LOG_ASYNC_BUF) {
      memcpy(lq.buf[lq.cur] + lq.len, p, n);
      if (!lq.len) pthread_cond_signal(&lq.cv);
      lq.len += n;
      pthread_mutex_unlock(&lq.mu);
      return;
    }
    pthread_mutex_unlock(&lq.mu);
  }
  write_all(p, n);
}

static void emit(int level, const char *msg, const sd_log_field *f,
                 size_t n) {
  line b;
  b.len = 0;
  if (log_json) {
    put(&b, "{\"time\":\"");
    put_time(&b);
    put(&b, "\",\"level\":\"");
    put(&b, log_names[level]);
    put(&b, "\",\"msg\":");
    put_quoted(&b, msg);
  } else {
    put_time(&b);
    char lv[16];
    snprintf(lv, sizeof(lv), " %-5s ", log_names[level]);
    put(&b, lv);
    put_escaped(&b, msg);
  }
  if (tl_request_id)
    put_field(&b, &SD_LF_STR("request_id", tl_request_id));
  for (size_t i = 0; i < n; i++) put_field(&b, &f[i]);
  if (log_json) b.p[b.len++] = '}';
  b.p[b.len++] = '\n';
  out(b.p, b.len);
}

void sd_log_fields(int level, const char *msg, const sd_log_field *f,
                   size_t n) {
  if (level < SD_LOG_ERROR || level > log_level) return;
  emit(level, msg, f, n);
}

void sd_log(int level, const char *fmt, ...) {
  if (level < SD_LOG_ERROR || level > log_level) return;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  emit(level, msg, NULL, 0);
}
