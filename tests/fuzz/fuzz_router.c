/*
 * fuzz_router.c -- libFuzzer target for sd_route (http.h) and sd_time_parse
 * (timeutil.h).
 *
 * Input: byte 0 picks the method from a small list; the rest, cut at 8 KiB
 * and NUL-terminated, is the request path (an embedded NUL just ends it
 * early, as in a C string from libmicrohttpd). The handler found is never
 * called (it would need a core); the reply is checked and freed. The same
 * bytes (exact length, no terminator) go through sd_time_parse, and a
 * parsed time must survive sd_time_format -> sd_time_parse unchanged.
 */
#include "fuzz_check.h"
#include "segmentd/err.h"
#include "segmentd/http.h"
#include "segmentd/timeutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PATH_CAP 8192
#define MAX_TS_MS 253402300799999LL /* 9999-12-31T23:59:59.999Z */

static const char *const methods[] = {"GET",  "POST",    "PUT",
                                      "DELETE", "PATCH", "HEAD",
                                      "OPTIONS", ""};

static void fuzz_route(const char *method, const uint8_t *p, size_t n) {
  if (n > PATH_CAP) n = PATH_CAP;
  char *path = malloc(n + 1);
  if (!path) return;
  memcpy(path, p, n);
  path[n] = 0;
  sd_req req;
  sd_reply rep;
  memset(&req, 0, sizeof(req));
  memset(&rep, 0, sizeof(rep));
  req.method = method;
  req.path = path;
  sd_handler h = sd_route(&req, &rep);
  if (h) {
    FUZZ_CHECK(rep.body == NULL && rep.status == 0);
    FUZZ_CHECK(req.n_params >= 0 && req.n_params <= SD_MAX_PARAMS);
    for (int i = 0; i < req.n_params; i++) {
      FUZZ_CHECK(req.params[i] != NULL);
      size_t l = strlen(req.params[i]);
      FUZZ_CHECK(l >= 1 && l < n);
      FUZZ_CHECK(strchr(req.params[i], '/') == NULL);
    }
  } else {
    FUZZ_CHECK(rep.status == 404 || rep.status == 405 || rep.status == 500);
    if (rep.status == 405)
      FUZZ_CHECK(rep.allow != NULL && rep.allow[0] != 0 &&
                 strlen(rep.allow) < 64);
    if (rep.status != 500) FUZZ_CHECK(json_is_object(rep.body));
  }
  sd_reply_free(&rep);
  free(path);
}

static void fuzz_time(const uint8_t *p, size_t n) {
  /* an exact-size copy: sd_time_parse must not read past len */
  char *s = malloc(n ? n : 1);
  if (!s) return;
  memcpy(s, p, n);
  int64_t ms = -1;
  int rc = sd_time_parse(s, n, &ms);
  if (rc == 0) {
    FUZZ_CHECK(ms >= 0);
    if (ms <= MAX_TS_MS) {
      char out[48];
      int64_t back = -1;
      sd_time_format(ms, out);
      FUZZ_CHECK(sd_time_parse(out, strlen(out), &back) == 0);
      FUZZ_CHECK(back == ms);
    }
  } else {
    FUZZ_CHECK(rc == SD_EINVAL);
  }
  free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const char *method = methods[data[0] % (sizeof(methods) / sizeof(methods[0]))];
  fuzz_route(method, data + 1, size - 1);
  fuzz_time(data + 1, size - 1);
  return 0;
}
