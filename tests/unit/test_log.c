/* Unit tests of log.c: JSON and text lines, escaping, cutting, levels. */
#include "check.h"
#include "segmentd/err.h"
#include "segmentd/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char out[32768];

/* Runs fn with stderr sent to a temporary file; out gets what it wrote. */
static void capture(void (*fn)(void)) {
  char path[] = "/tmp/sd-test-log-XXXXXX";
  int fd = mkstemp(path), saved = dup(STDERR_FILENO);
  CHECK(fd >= 0 && saved >= 0);
  dup2(fd, STDERR_FILENO);
  fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  ssize_t n = pread(fd, out, sizeof(out) - 1, 0);
  out[n > 0 ? n : 0] = 0;
  close(fd);
  unlink(path);
}

static void plain(void) { sd_log_info("loaded %d texts", 42); }

static void fields(void) {
  sd_log_field f[] = {SD_LF_STR("path", "/a\"b\\c\n\x01\xff\xc3\xa9"),
                      SD_LF_I64("status", 404), SD_LF_NUM("ms", 1.5),
                      SD_LF_STR("none", NULL)};
  sd_log_set_request_id("rid-1");
  sd_log_fields(SD_LOG_WARN, "request", f, 4);
  sd_log_set_request_id(NULL);
}

static void debug_line(void) { sd_log_debug("hidden"); }

static void long_line(void) {
  static char big[20000];
  memset(big, 'x', sizeof(big) - 1);
  sd_log_field f[] = {SD_LF_STR("a", big), SD_LF_I64("after", 1)};
  sd_log_fields(SD_LOG_ERROR, big, f, 2);
}

/* Lines from 4 threads through the writer thread: all there, each whole. */
#define ASYNC_THREADS 4
#define ASYNC_LINES 2000

static void *async_lines(void *arg) {
  for (int i = 0; i < ASYNC_LINES; i++)
    sd_log_fields(SD_LOG_INFO, "async",
                  (sd_log_field[]){SD_LF_I64("t", (long)arg), SD_LF_I64("i", i)},
                  2);
  return NULL;
}

static void async_run(void) {
  pthread_t th[ASYNC_THREADS];
  CHECK_INT(sd_log_async_start(), 0);
  for (long t = 0; t < ASYNC_THREADS; t++)
    pthread_create(&th[t], NULL, async_lines, (void *)t);
  for (int t = 0; t < ASYNC_THREADS; t++) pthread_join(th[t], NULL);
  sd_log_async_stop();
  sd_log_async_stop(); /* idempotent */
}

static void check_async(void) {
  static char big[ASYNC_THREADS * ASYNC_LINES * 128];
  char path[] = "/tmp/sd-test-log-XXXXXX";
  int fd = mkstemp(path), saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  async_run();
  dup2(saved, STDERR_FILENO);
  close(saved);
  ssize_t n = pread(fd, big, sizeof(big) - 1, 0);
  big[n > 0 ? n : 0] = 0;
  close(fd);
  unlink(path);
  int lines = 0, bad = 0;
  long long sum = 0;
  for (char *l = strtok(big, "\n"); l; l = strtok(NULL, "\n"), lines++) {
    json_t *j = json_loads(l, 0, NULL);
    bad += !j;
    sum += json_integer_value(json_object_get(j, "i"));
    json_decref(j);
  }
  CHECK_INT(lines, ASYNC_THREADS * ASYNC_LINES);
  CHECK_INT(bad, 0);
  CHECK_INT(sum, (long long)ASYNC_THREADS * ASYNC_LINES * (ASYNC_LINES - 1) / 2);
}

int main(void) {
  CHECK_INT(sd_log_set_format("yaml"), SD_EINVAL);
  CHECK_INT(sd_log_set_level("loud"), SD_EINVAL);
  capture(plain);
  json_t *j = json_loads(out, 0, NULL);
  CHECK(j != NULL);
  CHECK_STR(json_string_value(json_object_get(j, "msg")), "loaded 42 texts");
  CHECK_STR(json_string_value(json_object_get(j, "level")), "info");
  const char *t = json_string_value(json_object_get(j, "time"));
  CHECK(t && strlen(t) == 24 && t[10] == 'T' && t[19] == '.' && t[23] == 'Z');
  json_decref(j);

  capture(fields);
  j = json_loads(out, 0, NULL);
  CHECK(j != NULL);
  CHECK_STR(json_string_value(json_object_get(j, "path")),
            "/a\"b\\c\n\x01\xef\xbf\xbd\xc3\xa9"); /* U+FFFD, é kept */
  CHECK_INT(json_integer_value(json_object_get(j, "status")), 404);
  CHECK_NEAR(json_number_value(json_object_get(j, "ms")), 1.5, 1e-9);
  CHECK(json_is_null(json_object_get(j, "none")));
  CHECK_STR(json_string_value(json_object_get(j, "request_id")), "rid-1");
  CHECK_STR(json_string_value(json_object_get(j, "level")), "warn");
  json_decref(j);

  capture(debug_line);
  CHECK_STR(out, "");
  CHECK_INT(sd_log_set_level("debug"), 0);
  capture(debug_line);
  CHECK(strstr(out, "hidden") != NULL);

  capture(long_line); /* cut, but one whole JSON line */
  CHECK(strlen(out) <= 8192 && strchr(out, '\n') == out + strlen(out) - 1);
  j = json_loads(out, 0, NULL);
  CHECK(j != NULL);
  const char *m = json_string_value(json_object_get(j, "msg"));
  CHECK(m && strlen(m) > 4000 && !strcmp(m + strlen(m) - 3, "..."));
  json_decref(j);

  check_async();

  CHECK_INT(sd_log_set_format("text"), 0);
  capture(fields);
  CHECK(strstr(out, " warn  request request_id=rid-1 path=\"/a\\\"b\\\\c\\n"
                    "\\u0001\\ufffd\xc3\xa9\" status=404 ms=1.500 none=null\n") != NULL);
  capture(plain);
  CHECK(strstr(out, " info  loaded 42 texts\n") != NULL);
  return check_done("test_log");
}
