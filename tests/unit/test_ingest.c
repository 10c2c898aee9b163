/* Unit tests of ingest.c: batch validation, limits, details. */
#include "check.h"
#include "segmentd/err.h"
#include "segmentd/ingest.h"

static const sd_limits lim = {5, 32, 2, 6, 3, 0};

static int parse(sd_batch_kind k, const char *body, json_t **details) {
  sd_batch b;
  char msg[256];
  int rc = sd_batch_parse(k, body, strlen(body), &lim, 1000, &b, details, msg,
                          sizeof(msg));
  sd_batch_free(&b);
  return rc;
}

/* The problem reported for item index/field, or NULL. */
static const char *problem_of(json_t *details, long index, const char *field) {
  size_t i;
  json_t *d;
  json_array_foreach(details, i, d) {
    json_t *ix = json_object_get(d, "index");
    if ((index < 0 ? !ix : json_integer_value(ix) == index) &&
        !strcmp(json_string_value(json_object_get(d, "field")), field))
      return json_string_value(json_object_get(d, "problem"));
  }
  return NULL;
}

static void test_valid(void) {
  sd_batch b;
  json_t *det;
  char msg[256];
  const char *body =
      "{\"events\":[{\"event_id\":\"e1\",\"user_id\":\"u\",\"type\":\"buy\","
      "\"ts\":\"2026-11-27T10:00:00Z\",\"properties\":{\"device\":\"ios\"}},"
      "{\"event_id\":\"e2\",\"user_id\":\"u\",\"type\":\"view\",\"ts\":5}]}";
  CHECK_INT(sd_batch_parse(SD_BATCH_EVENTS, body, strlen(body), &lim, 1000, &b,
                           &det, msg, sizeof(msg)), 0);
  CHECK_INT(b.n, 2);
  CHECK_STR(b.events[0].event_id, "e1");
  CHECK_INT(b.events[0].ts, 1795773600000LL);
  CHECK_INT(b.events[1].ts, 5);
  sd_batch_free(&b);
  body = "{\"texts\":[{\"text_id\":\"t\",\"text\":\"hi\",\"embedding\":[1,2.5,-3]}]}";
  CHECK_INT(sd_batch_parse(SD_BATCH_TEXTS, body, strlen(body), &lim, 1000, &b,
                           &det, msg, sizeof(msg)), 0);
  CHECK(b.texts[0].user_id == NULL);
  CHECK_INT(b.texts[0].ts, 1000); /* default: time received */
  CHECK_NEAR(b.texts[0].embedding[1], 2.5, 0);
  sd_batch_free(&b);
}

static void test_invalid(void) {
  json_t *d = NULL;
  CHECK_INT(parse(SD_BATCH_EVENTS, "{\"events\":[", &d), SD_EJSON);
  CHECK_INT(parse(SD_BATCH_EVENTS, "{\"events\":[]}", &d), SD_EINVALID);
  CHECK(problem_of(d, -1, "events") != NULL);
  json_decref(d);
  CHECK_INT(parse(SD_BATCH_EVENTS, "[1]", &d), SD_EINVALID);
  json_decref(d);
  CHECK_INT(parse(SD_BATCH_EVENTS, "{\"events\":[1,2,3,4,5,6]}", &d),
            SD_ETOOLARGE);
  CHECK_INT(parse(SD_BATCH_EVENTS, "{\"events\":[[[[[[[1]]]]]]]}", &d), SD_EINVAL);
  CHECK_INT(parse(SD_BATCH_EVENTS,
                  "{\"events\":[{\"event_id\":\"e1\",\"user_id\":\"u\",\"type\":\"t\"},"
                  "{\"event_id\":7,\"type\":\"\",\"ts\":\"yesterday\","
                  "\"properties\":{\"a\":1,\"b\":2,\"c\":3}}]}", &d),
            SD_EINVALID);
  CHECK_STR(problem_of(d, 1, "event_id"), "must be a string");
  CHECK_STR(problem_of(d, 1, "user_id"), "missing");
  CHECK_STR(problem_of(d, 1, "type"), "must not be empty");
  CHECK(problem_of(d, 1, "ts") != NULL);
  CHECK_STR(problem_of(d, 1, "properties"), "too many properties");
  CHECK(problem_of(d, 0, "event_id") == NULL);
  json_decref(d);
  CHECK_INT(parse(SD_BATCH_TEXTS,
                  "{\"texts\":[{\"text_id\":\"t\",\"text\":\"   \"},"
                  "{\"text_id\":\"u\",\"text\":\"0123456789012345678901234567890123\"},"
                  "{\"text_id\":\"v\",\"text\":\"ok\",\"embedding\":[1,2]},"
                  "{\"text_id\":\"w\",\"text\":\"ok\",\"embedding\":[1,1e39,2]},"
                  "{\"text_id\":\"x\",\"text\":\"ok\",\"ts\":1.5}]}", &d),
            SD_EINVALID);
  CHECK_STR(problem_of(d, 0, "text"), "must not be empty or blank");
  CHECK_STR(problem_of(d, 1, "text"), "longer than the text limit");
  CHECK_STR(problem_of(d, 2, "embedding"), "wrong dimension");
  CHECK(problem_of(d, 3, "embedding") != NULL);
  CHECK(problem_of(d, 4, "ts") != NULL);
  json_decref(d);
  char big[400];
  memset(big, 'a', 300);
  big[300] = 0;
  char body[600];
  snprintf(body, sizeof(body), "{\"texts\":[{\"text_id\":\"%s\",\"text\":\"x\"}]}", big);
  CHECK_INT(parse(SD_BATCH_TEXTS, body, &d), SD_EINVALID);
  CHECK_STR(problem_of(d, 0, "text_id"), "longer than 256 bytes");
  json_decref(d);
  /* invalid UTF-8 is malformed JSON */
  CHECK_INT(parse(SD_BATCH_TEXTS, "{\"texts\":[{\"text_id\":\"t\",\"text\":\"\xc3\x28\"}]}", &d),
            SD_EJSON);
}

static void test_ts(void) {
  json_t *v = json_string("2026-11-27T10:00:00.250+01:00");
  int64_t ms;
  CHECK_INT(sd_parse_ts(v, &ms), 0);
  CHECK_INT(ms, 1795773600000LL - 3600000 + 250);
  json_decref(v);
  v = json_integer(-1);
  CHECK_INT(sd_parse_ts(v, &ms), SD_EINVALID);
  json_decref(v);
  v = json_true();
  CHECK_INT(sd_parse_ts(v, &ms), SD_EINVALID);
}

int main(void) {
  test_valid();
  test_invalid();
  test_ts();
  return check_done("test_ingest");
}
