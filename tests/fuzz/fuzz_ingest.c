/*
 * fuzz_ingest.c -- libFuzzer target for sd_batch_parse (ingest.h).
 *
 * Input: byte 0 picks the batch kind by its low bit (1 = events, as in 'e';
 * 0 = texts, as in 't'); the rest is the request body, passed with its
 * length and no NUL terminator (json_loadb), so ASan sees any over-read.
 * Limits are the service defaults (batch 10000, text 16384, props 64,
 * depth 32, dim 8). Checks the contract of ingest.h on every result, then
 * frees everything (LeakSanitizer reports what is not).
 */
#include "fuzz_check.h"
#include "segmentd/err.h"
#include "segmentd/ingest.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static void check_id(const char *s) {
  FUZZ_CHECK(s != NULL);
  size_t n = strlen(s);
  FUZZ_CHECK(n >= 1 && n <= SD_MAX_ID);
}

static void check_ok(const sd_batch *b, sd_batch_kind kind,
                     const sd_limits *lim) {
  FUZZ_CHECK(b->kind == kind && b->root != NULL);
  FUZZ_CHECK(b->n >= 1 && b->n <= lim->max_batch);
  for (size_t i = 0; i < b->n; i++) {
    if (kind == SD_BATCH_EVENTS) {
      const sd_event *e = &b->events[i];
      check_id(e->event_id);
      check_id(e->user_id);
      check_id(e->type);
      FUZZ_CHECK(e->ts >= 0);
      if (e->props)
        FUZZ_CHECK(json_is_object(e->props) &&
                   json_object_size(e->props) <= lim->max_props);
    } else {
      const sd_text *t = &b->texts[i];
      check_id(t->text_id);
      if (t->user_id) check_id(t->user_id);
      FUZZ_CHECK(t->ts >= 0);
      FUZZ_CHECK(t->text != NULL);
      FUZZ_CHECK(t->text_len >= 1 && t->text_len <= lim->max_text);
      volatile unsigned char sink = 0;
      for (size_t j = 0; j < t->text_len; j++) sink ^= (unsigned char)t->text[j];
      (void)sink;
      if (t->embedding)
        for (int j = 0; j < lim->dim; j++)
          FUZZ_CHECK(isfinite(t->embedding[j]));
    }
  }
}

static void check_details(const json_t *d) {
  FUZZ_CHECK(json_is_array(d));
  FUZZ_CHECK(json_array_size(d) >= 1 && json_array_size(d) <= 100);
  for (size_t i = 0; i < json_array_size(d); i++) {
    const json_t *x = json_array_get(d, i);
    FUZZ_CHECK(json_is_object(x));
    FUZZ_CHECK(json_is_string(json_object_get(x, "field")));
    FUZZ_CHECK(json_is_string(json_object_get(x, "problem")));
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  sd_batch_kind kind = (data[0] & 1) ? SD_BATCH_EVENTS : SD_BATCH_TEXTS;
  const sd_limits lim = {.max_batch = 10000, .max_text = 16384,
                         .max_props = 64, .max_depth = 32, .dim = 8};
  sd_batch b;
  json_t *details = (json_t *)1; /* must be overwritten */
  char msg[256];
  msg[0] = 0;
  int rc = sd_batch_parse(kind, (const char *)data + 1, size - 1, &lim,
                          1700000000000LL, &b, &details, msg, sizeof(msg));
  if (rc == 0) {
    FUZZ_CHECK(details == NULL);
    check_ok(&b, kind, &lim);
  } else {
    FUZZ_CHECK(rc < 0);
    if (rc == SD_EINVALID) check_details(details);
    else FUZZ_CHECK(details == NULL);
    if (rc != SD_ENOMEM) FUZZ_CHECK(msg[0] != 0);
  }
  json_decref(details);
  sd_batch_free(&b);
  FUZZ_CHECK(b.root == NULL && b.n == 0);
  return 0;
}
