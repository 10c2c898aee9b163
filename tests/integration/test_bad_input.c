/*
 * test_bad_input.c -- every bad input gets its documented 4xx and stores
 * nothing (docs/API.md, Conventions and Ingest).
 *
 * A data-driven table of requests: malformed JSON, bodies that are not
 * objects, wrong types, missing fields, empty and mixed batches, limits
 * (text 16 KiB, ids 256 bytes, 64 properties, depth 32, body and batch
 * size with --max-body / --max-batch; text, properties, depth and ids
 * with --max-text, --max-props, --max-depth, --max-id), invalid UTF-8, overflowing numbers,
 * wrong embedding dimension, bad timestamps, media type, unknown routes and
 * spaces, wrong methods and malformed queries. Each case checks the status,
 * the error body shape and code, the bad item's index and field, and that
 * its user is still unknown afterwards; the spaces' point counts must not
 * move. A few boundary cases that must be accepted sit in a second table.
 */
#include "check.h"
#include "harness.h"

#include <stdlib.h>
#include <string.h>

enum { GEN_NONE, GEN_FILL, GEN_VEC, GEN_PROPS, GEN_DEEP };

typedef struct {
  const char *name;
  const char *method, *path, *ctype;
  const char *body;      /* template; "@X@" is replaced by the generated part */
  int gen, gen_n;        /* generator of the "@X@" part and its size */
  long status;           /* expected status ... */
  const char *code;      /* ... and error code */
  long alt_status;       /* an accepted alternative (0: none) */
  const char *alt_code;  /* codes may list alternatives: "a|b" */
  int d_check;           /* check that a detail names the bad item: */
  long long d_index;     /* its index (-1: any) ... */
  const char *d_field;   /* ... and field (NULL: any) */
  const char *uid;       /* a user that must be unknown (or known on 200) */
  const char *allow_has; /* a method the Allow header must list */
} io_case;

#define JSON_CT "application/json"
#define P_EV .method = "POST", .path = "/v1/events", .ctype = JSON_CT
#define P_TX .method = "POST", .path = "/v1/texts", .ctype = JSON_CT
#define EV(items) "{\"events\":[" items "]}"
#define TX(items) "{\"texts\":[" items "]}"
#define E422(idx, fld)                                                         \
  .status = 422, .code = "invalid_field", .d_check = 1, .d_index = (idx),      \
  .d_field = (fld)
#define E400J .status = 400, .code = "malformed_json"
#define OR422 .alt_status = 422, .alt_code = "invalid_field"
#define OR400BR .alt_status = 400, .alt_code = "bad_request|malformed_json"
#define E413 .status = 413, .code = "too_large"
#define OK200 .status = 200

static const io_case BAD[] = {
    /* malformed JSON */
    {"truncated", P_EV, EV("{\"event_id\":\"b1\",\"user_id\":\"bad-1\""), E400J,
     .uid = "bad-1"},
    {"trailing comma", P_EV,
     EV("{\"event_id\":\"b2\",\"user_id\":\"bad-2\",\"type\":\"v\",}"), E400J,
     .uid = "bad-2"},
    {"empty body", P_EV, "", E400J},
    {"not json at all", P_TX, "hello world", E400J},
    /* bodies that are not the expected object */
    {"body array", P_EV,
     "[{\"event_id\":\"b3\",\"user_id\":\"bad-3\",\"type\":\"v\"}]",
     .status = 422, .code = "invalid_field", OR400BR, .uid = "bad-3"},
    {"body string", P_EV, "\"events\"", .status = 422, .code = "invalid_field",
     OR400BR},
    {"body null", P_TX, "null", .status = 422, .code = "invalid_field",
     OR400BR},
    {"no events key", P_EV, "{}", E422(-1, "events")},
    {"events not array", P_EV,
     "{\"events\":{\"event_id\":\"b4\",\"user_id\":\"bad-4\",\"type\":\"v\"}}",
     E422(-1, "events"), .uid = "bad-4"},
    {"texts not array", P_TX, "{\"texts\":\"t\"}", E422(-1, "texts")},
    {"item not object", P_EV, EV("5"), E422(0, NULL)},
    /* empty batches */
    {"empty events", P_EV, EV(""), .status = 422, .code = "invalid_field"},
    {"empty texts", P_TX, TX(""), .status = 422, .code = "invalid_field"},
    /* wrong types */
    {"user_id number", P_EV,
     EV("{\"event_id\":\"b5\",\"user_id\":5,\"type\":\"v\"}"),
     E422(0, "user_id")},
    {"event_id number", P_EV,
     EV("{\"event_id\":6,\"user_id\":\"bad-6\",\"type\":\"v\"}"),
     E422(0, "event_id"), .uid = "bad-6"},
    {"type array", P_EV,
     EV("{\"event_id\":\"b7\",\"user_id\":\"bad-7\",\"type\":[]}"),
     E422(0, "type"), .uid = "bad-7"},
    {"ts bool", P_EV,
     EV("{\"event_id\":\"b8\",\"user_id\":\"bad-8\",\"type\":\"v\","
        "\"ts\":true}"),
     E422(0, "ts"), .uid = "bad-8"},
    {"properties string", P_EV,
     EV("{\"event_id\":\"b9\",\"user_id\":\"bad-9\",\"type\":\"v\","
        "\"properties\":\"ios\"}"),
     E422(0, "properties"), .uid = "bad-9"},
    {"text number", P_TX,
     TX("{\"text_id\":\"b10\",\"user_id\":\"bad-10\",\"text\":10}"),
     E422(0, "text"), .uid = "bad-10"},
    {"text_id null", P_TX,
     TX("{\"text_id\":null,\"user_id\":\"bad-11\",\"text\":\"hi\"}"),
     E422(0, "text_id"), .uid = "bad-11"},
    {"text user_id number", P_TX,
     TX("{\"text_id\":\"b12\",\"user_id\":12,\"text\":\"hi\"}"),
     E422(0, "user_id")},
    {"embedding string", P_TX,
     TX("{\"text_id\":\"b13\",\"user_id\":\"bad-13\",\"text\":\"hi\","
        "\"embedding\":\"x\"}"),
     E422(0, "embedding"), .uid = "bad-13"},
    /* missing required fields */
    {"no event_id", P_EV, EV("{\"user_id\":\"bad-14\",\"type\":\"v\"}"),
     E422(0, "event_id"), .uid = "bad-14"},
    {"no user_id", P_EV, EV("{\"event_id\":\"b15\",\"type\":\"v\"}"),
     E422(0, "user_id")},
    {"no type", P_EV, EV("{\"event_id\":\"b16\",\"user_id\":\"bad-16\"}"),
     E422(0, "type"), .uid = "bad-16"},
    {"no text_id", P_TX, TX("{\"user_id\":\"bad-17\",\"text\":\"hi\"}"),
     E422(0, "text_id"), .uid = "bad-17"},
    {"no text", P_TX, TX("{\"text_id\":\"b18\",\"user_id\":\"bad-18\"}"),
     E422(0, "text"), .uid = "bad-18"},
    {"empty event_id", P_EV,
     EV("{\"event_id\":\"\",\"user_id\":\"bad-19\",\"type\":\"v\"}"),
     E422(0, "event_id"), .uid = "bad-19"},
    {"empty user_id", P_EV,
     EV("{\"event_id\":\"b20\",\"user_id\":\"\","
        "\"type\":\"v\"}"),
     E422(0, "user_id")},
    /* a batch mixing valid and invalid items stores nothing */
    {"mixed batch", P_EV,
     EV("{\"event_id\":\"m1\",\"user_id\":\"mix-u0\",\"type\":\"v\"},"
        "{\"event_id\":\"m2\",\"user_id\":\"mix-u0\",\"type\":\"v\"},"
        "{\"event_id\":\"m3\",\"type\":\"v\"}"),
     E422(2, "user_id"), .uid = "mix-u0"},
    {"mixed texts", P_TX,
     TX("{\"text_id\":\"m4\",\"user_id\":\"mix-u1\",\"text\":\"hi\"},"
        "{\"text_id\":\"m5\",\"user_id\":\"mix-u1\",\"text\":7}"),
     E422(1, "text"), .uid = "mix-u1"},
    /* limits */
    {"text 16 KiB + 1", P_TX,
     TX("{\"text_id\":\"b21\",\"user_id\":\"bad-21\",\"text\":\"@X@\"}"),
     GEN_FILL, 16385, E422(0, "text"), .uid = "bad-21"},
    {"event_id 257 bytes", P_EV,
     EV("{\"event_id\":\"@X@\",\"user_id\":\"bad-22\",\"type\":\"v\"}"),
     GEN_FILL, 257, E422(0, "event_id"), .uid = "bad-22"},
    {"user_id 257 bytes", P_EV,
     EV("{\"event_id\":\"b23\",\"user_id\":\"@X@\",\"type\":\"v\"}"), GEN_FILL,
     257, E422(0, "user_id")},
    {"text_id 257 bytes", P_TX,
     TX("{\"text_id\":\"@X@\",\"user_id\":\"bad-24\",\"text\":\"hi\"}"),
     GEN_FILL, 257, E422(0, "text_id"), .uid = "bad-24"},
    {"65 properties", P_EV,
     EV("{\"event_id\":\"b25\",\"user_id\":\"bad-25\",\"type\":\"v\","
        "\"properties\":{@X@}}"),
     GEN_PROPS, 65, E422(0, "properties"), .uid = "bad-25"},
    {"depth 40", P_EV,
     EV("{\"event_id\":\"b26\",\"user_id\":\"bad-26\",\"type\":\"v\","
        "\"properties\":{\"p\":@X@}}"),
     GEN_DEEP, 40, .status = 422, .code = "invalid_field", .alt_status = 400,
     .alt_code = "bad_request|malformed_json", .uid = "bad-26"},
    {"body over 16 MiB", P_TX,
     TX("{\"text_id\":\"b27\",\"user_id\":\"bad-27\",\"text\":\"@X@\"}"),
     GEN_FILL, (17 << 20), E413, .uid = "bad-27"},
    /* text encoding */
    {"invalid UTF-8", P_TX,
     TX("{\"text_id\":\"b28\",\"user_id\":\"bad-28\",\"text\":\"caf\xC3\x28"
        "\"}"),
     E400J, OR422, .uid = "bad-28"},
    {"NUL escape", P_TX,
     TX("{\"text_id\":\"b29\",\"user_id\":\"bad-29\",\"text\":\"a\\u0000b\"}"),
     E400J, OR422, .uid = "bad-29"},
    {"lone surrogate", P_TX,
     TX("{\"text_id\":\"b30\",\"user_id\":\"bad-30\",\"text\":\"a\\ud800\"}"),
     E400J, OR422, .uid = "bad-30"},
    /* numbers and embeddings */
    {"embedding 1e999", P_TX,
     TX("{\"text_id\":\"b31\",\"user_id\":\"bad-31\",\"text\":\"hi\","
        "\"embedding\":[@X@,1e999]}"),
     GEN_VEC, 255, E400J, OR422, .uid = "bad-31"},
    {"property 1e999", P_EV,
     EV("{\"event_id\":\"b32\",\"user_id\":\"bad-32\",\"type\":\"v\","
        "\"properties\":{\"price\":1e999}}"),
     E400J, OR422, .uid = "bad-32"},
    {"embedding dim 3", P_TX,
     TX("{\"text_id\":\"b33\",\"user_id\":\"bad-33\",\"text\":\"hi\","
        "\"embedding\":[0.1,0.2,0.3]}"),
     E422(0, "embedding"), .uid = "bad-33"},
    {"embedding dim 257", P_TX,
     TX("{\"text_id\":\"b34\",\"user_id\":\"bad-34\",\"text\":\"hi\","
        "\"embedding\":[@X@,0.5,0.5]}"),
     GEN_VEC, 255, E422(0, "embedding"), .uid = "bad-34"},
    {"embedding element string", P_TX,
     TX("{\"text_id\":\"b35\",\"user_id\":\"bad-35\",\"text\":\"hi\","
        "\"embedding\":[@X@,\"x\"]}"),
     GEN_VEC, 255, E422(0, "embedding"), .uid = "bad-35"},
    /* timestamps */
    {"ts yesterday", P_EV,
     EV("{\"event_id\":\"b36\",\"user_id\":\"bad-36\",\"type\":\"v\","
        "\"ts\":\"yesterday\"}"),
     E422(0, "ts"), .uid = "bad-36"},
    {"ts month 13", P_TX,
     TX("{\"text_id\":\"b37\",\"user_id\":\"bad-37\",\"text\":\"hi\","
        "\"ts\":\"2026-13-01T00:00:00Z\"}"),
     E422(0, "ts"), .uid = "bad-37"},
    /* media type */
    {"text/plain", .method = "POST", .path = "/v1/events",
     .ctype = "text/plain",
     .body = EV("{\"event_id\":\"b38\",\"user_id\":\"bad-38\",\"type\":\"v\"}"),
     .status = 415, .code = "unsupported_media_type", .uid = "bad-38"},
    {"form", .method = "POST", .path = "/v1/texts",
     .ctype = "application/x-www-form-urlencoded",
     .body = TX("{\"text_id\":\"b39\",\"user_id\":\"bad-39\",\"text\":\"hi\"}"),
     .status = 415, .code = "unsupported_media_type", .uid = "bad-39"},
    /* routes, methods, spaces, queries */
    {"unknown route", .method = "GET", .path = "/v1/nope", .status = 404,
     .code = "not_found"},
    {"unknown top route", .method = "GET", .path = "/nope/at/all",
     .status = 404, .code = "not_found"},
    {"DELETE events", .method = "DELETE", .path = "/v1/events", .status = 405,
     .code = "method_not_allowed", .allow_has = "POST"},
    {"PUT texts", .method = "PUT", .path = "/v1/texts", .ctype = JSON_CT,
     .body = TX("{\"text_id\":\"b40\",\"user_id\":\"bad-40\",\"text\":\"hi\"}"),
     .status = 405, .code = "method_not_allowed", .allow_has = "POST",
     .uid = "bad-40"},
    {"GET assign", .method = "GET", .path = "/v1/assign", .status = 405,
     .code = "method_not_allowed", .allow_has = "POST"},
    {"unknown space clusters", .method = "GET",
     .path = "/v1/spaces/nope/clusters", .status = 404, .code = "not_found"},
    {"unknown space assignments", .method = "GET",
     .path = "/v1/spaces/nope/assignments", .status = 404, .code = "not_found"},
    {"explain maybe", .method = "GET",
     .path = "/v1/users/base-u/segment?explain=maybe", .status = 400,
     .code = "bad_request"},
    /* Query validation of /v1/alerts and /v1/spaces/{space}/map (400 for
       limit=abc) joins this table with those routes (drift, map issues). */
};

/* Boundary cases that must be accepted (the user then exists). */
static const io_case GOOD[] = {
    {"text exactly 16 KiB", P_TX,
     TX("{\"text_id\":\"g1\",\"user_id\":\"good-1\",\"text\":\"@X@\"}"),
     GEN_FILL, 16384, OK200, .uid = "good-1"},
    {"event_id 256 bytes", P_EV,
     EV("{\"event_id\":\"@X@\",\"user_id\":\"good-2\",\"type\":\"v\"}"),
     GEN_FILL, 256, OK200, .uid = "good-2"},
    {"64 properties", P_EV,
     EV("{\"event_id\":\"g3\",\"user_id\":\"good-3\",\"type\":\"v\","
        "\"properties\":{@X@}}"),
     GEN_PROPS, 64, OK200, .uid = "good-3"},
    {"embedding dim 256", P_TX,
     TX("{\"text_id\":\"g4\",\"user_id\":\"good-4\",\"text\":\"hi\","
        "\"embedding\":[@X@,0.5]}"),
     GEN_VEC, 255, OK200, .uid = "good-4"},
    {"json charset", .method = "POST", .path = "/v1/events",
     .ctype = "application/json; charset=utf-8",
     .body = EV("{\"event_id\":\"g5\",\"user_id\":\"good-5\",\"type\":\"v\","
                "\"ts\":1764237600000}"),
     OK200, .uid = "good-5"},
    {"text without user", P_TX, TX("{\"text_id\":\"g6\",\"text\":\"hello\"}"),
     OK200},
    {"utf-8 text", P_TX,
     TX("{\"text_id\":\"g7\",\"user_id\":\"good-7\",\"text\":\"caf\xC3\xA9 "
        "\\u00e9t\\u00e9 \xF0\x9F\x98\x80\"}"),
     OK200, .uid = "good-7"},
};

/* Limits of the second server (--max-body 4096 --max-batch 5). */
static const io_case LIMITS[] = {
    {"body 5000 > max-body", P_TX,
     TX("{\"text_id\":\"l1\",\"user_id\":\"lim-1\",\"text\":\"@X@\"}"),
     GEN_FILL, 5000, E413, .uid = "lim-1"},
    {"6 items > max-batch", P_EV,
     EV("{\"event_id\":\"l2a\",\"user_id\":\"lim-2\",\"type\":\"v\"},"
        "{\"event_id\":\"l2b\",\"user_id\":\"lim-2\",\"type\":\"v\"},"
        "{\"event_id\":\"l2c\",\"user_id\":\"lim-2\",\"type\":\"v\"},"
        "{\"event_id\":\"l2d\",\"user_id\":\"lim-2\",\"type\":\"v\"},"
        "{\"event_id\":\"l2e\",\"user_id\":\"lim-2\",\"type\":\"v\"},"
        "{\"event_id\":\"l2f\",\"user_id\":\"lim-2\",\"type\":\"v\"}"),
     E413, .uid = "lim-2"},
};

static const io_case LIMITS_OK[] = {
    {"body 4000 <= max-body", P_TX,
     TX("{\"text_id\":\"l3\",\"user_id\":\"lim-3\",\"text\":\"@X@\"}"),
     GEN_FILL, 3900, OK200, .uid = "lim-3"},
    {"5 items = max-batch", P_EV,
     EV("{\"event_id\":\"l4a\",\"user_id\":\"lim-4\",\"type\":\"v\"},"
        "{\"event_id\":\"l4b\",\"user_id\":\"lim-4\",\"type\":\"v\"},"
        "{\"event_id\":\"l4c\",\"user_id\":\"lim-4\",\"type\":\"v\"},"
        "{\"event_id\":\"l4d\",\"user_id\":\"lim-4\",\"type\":\"v\"},"
        "{\"event_id\":\"l4e\",\"user_id\":\"lim-4\",\"type\":\"v\"}"),
     OK200, .uid = "lim-4"},
};

/* Limits of the third server (--max-text 100 --max-props 3 --max-depth 10
 * --max-id 16): each flag moves its limit. */
static const io_case FLAG_LIMITS[] = {
    {"text 101 > max-text", P_TX,
     TX("{\"text_id\":\"f1\",\"user_id\":\"flim-1\",\"text\":\"@X@\"}"),
     GEN_FILL, 101, E422(0, "text"), .uid = "flim-1"},
    {"4 properties > max-props", P_EV,
     EV("{\"event_id\":\"f2\",\"user_id\":\"flim-2\",\"type\":\"v\","
        "\"properties\":{@X@}}"),
     GEN_PROPS, 4, E422(0, "properties"), .uid = "flim-2"},
    {"depth 12 > max-depth", P_EV,
     EV("{\"event_id\":\"f3\",\"user_id\":\"flim-3\",\"type\":\"v\","
        "\"properties\":{\"p\":@X@}}"),
     GEN_DEEP, 7, .status = 422, .code = "invalid_field", .alt_status = 400,
     .alt_code = "bad_request|malformed_json", .uid = "flim-3"},
    {"event_id 17 > max-id", P_EV,
     EV("{\"event_id\":\"@X@\",\"user_id\":\"flim-4\",\"type\":\"v\"}"),
     GEN_FILL, 17, E422(0, "event_id"), .uid = "flim-4"},
    {"user_id 17 > max-id", P_TX,
     TX("{\"text_id\":\"f5\",\"user_id\":\"@X@\",\"text\":\"hi\"}"),
     GEN_FILL, 17, E422(0, "user_id")},
    {"lookup id 17 > max-id", .method = "POST", .path = "/v1/segments/lookup",
     .ctype = JSON_CT, .body = "{\"user_ids\":[\"@X@\"]}", GEN_FILL, 17,
     .status = 422, .code = "invalid_field"},
};

static const io_case FLAG_LIMITS_OK[] = {
    {"text 100 = max-text", P_TX,
     TX("{\"text_id\":\"f6\",\"user_id\":\"flim-6\",\"text\":\"@X@\"}"),
     GEN_FILL, 100, OK200, .uid = "flim-6"},
    {"3 properties, depth 8", P_EV,
     EV("{\"event_id\":\"f7\",\"user_id\":\"flim-7\",\"type\":\"v\","
        "\"properties\":{\"p\":{\"a\":{\"b\":{\"c\":1}}},\"q\":1,\"r\":2}}"),
     OK200, .uid = "flim-7"},
    {"text_id 16 = max-id", P_TX,
     TX("{\"text_id\":\"@X@\",\"user_id\":\"flim-8\",\"text\":\"hi\"}"),
     GEN_FILL, 16, OK200, .uid = "flim-8"},
};

/* A growable string; on allocation failure the test aborts. */
typedef struct {
  char *p;
  size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
      abort();
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* Appends the generated part of case c (see GEN_*). */
static void gen_part(const io_case *c, sbuf *b) {
  char item[64];
  for (int i = 0; i < c->gen_n; i++) {
    switch (c->gen) {
    case GEN_FILL:
      sb_add(b, "a", 1);
      break;
    case GEN_VEC:
      sb_str(b, i ? ",0.0625" : "0.0625");
      break;
    case GEN_PROPS:
      snprintf(item, sizeof item, "%s\"p%d\":1", i ? "," : "", i);
      sb_str(b, item);
      break;
    case GEN_DEEP:
      sb_str(b, "{\"a\":");
      break;
    default:
      break;
    }
  }
  if (c->gen != GEN_DEEP)
    return;
  sb_str(b, "1");
  for (int i = 0; i < c->gen_n; i++)
    sb_str(b, "}");
}

/* The body of case c: its template with "@X@" replaced. Caller frees. */
static char *build_body(const io_case *c, size_t *len) {
  sbuf b = {NULL, 0, 0};
  const char *mark = c->gen != GEN_NONE ? strstr(c->body, "@X@") : NULL;
  if (!mark) {
    sb_str(&b, c->body);
  } else {
    sb_add(&b, c->body, (size_t)(mark - c->body));
    gen_part(c, &b);
    sb_str(&b, mark + 3);
  }
  if (!b.p)
    sb_add(&b, "", 0);
  *len = b.len;
  return b.p;
}

/* Status of GET /v1/users/<uid>. */
static long user_status(sd_server *srv, const char *uid) {
  char path[512];
  snprintf(path, sizeof path, "/v1/users/%s", uid);
  http_resp r = http_req(srv, "GET", path, NULL, NULL, 0);
  long st = r.status;
  http_resp_free(&r);
  return st;
}

/* The error code of body when it is one of "a|b|..." (else the first). */
static const char *pick_code(const json_t *body, const char *codes, char *buf,
                             size_t cap) {
  const char *got = json_string_value(json_path(body, "error.code"));
  size_t n = strcspn(codes, "|");
  snprintf(buf, cap, "%.*s", (int)n, codes);
  for (const char *p = codes; got && *p; p += n + (p[n] == '|')) {
    n = strcspn(p, "|");
    if (strlen(got) == n && strncmp(got, p, n) == 0) {
      snprintf(buf, cap, "%s", got);
      break;
    }
  }
  return buf;
}

static void check_error_response(const http_resp *r, const io_case *c,
                                 const char *codes) {
  char code[64];
  CHECK(strstr(r->content_type, "application/json") != NULL);
  json_t *j = json_loadb(r->body, r->len, 0, NULL);
  CHECK(check_error_body(j, pick_code(j, codes, code, sizeof code)));
  if (c->d_check && r->status == c->status)
    CHECK(error_has_detail(j, c->d_index, c->d_field));
  json_decref(j);
}

static void run_case(sd_server *srv, const io_case *c) {
  int before = check_failures;
  size_t len = 0;
  char *body = c->body ? build_body(c, &len) : NULL;
  http_resp r = http_req(srv, c->method, c->path, c->ctype, body, len);
  free(body);
  int alt = c->alt_status && r.status == c->alt_status;
  long want = alt ? c->alt_status : c->status;
  CHECK_INT(r.status, want);
  if (want >= 400)
    check_error_response(&r, c, alt ? c->alt_code : c->code);
  if (c->allow_has)
    CHECK(strstr(r.allow, c->allow_has) != NULL);
  if (c->uid)
    CHECK_INT(user_status(srv, c->uid), want == 200 ? 200 : 404);
  if (check_failures > before)
    fprintf(stderr,
            "  ^ case \"%s\": status %ld, Allow \"%s\", body %.300s%s\n",
            c->name, r.status, r.allow, r.body, r.errbuf);
  http_resp_free(&r);
}

static void run_table(sd_server *srv, const io_case *cases, size_t n) {
  for (size_t i = 0; i < n; i++)
    run_case(srv, &cases[i]);
}

#define RUN_TABLE(srv, t) run_table((srv), (t), sizeof(t) / sizeof((t)[0]))

/* Every bad item of a batch is reported, with its index and field. */
static void test_all_bad_items(sd_server *srv) {
  const char *body =
      EV("{\"event_id\":\"a0\",\"user_id\":\"all-u\"},"
         "{\"event_id\":\"a1\",\"user_id\":\"all-u\",\"type\":\"v\"},"
         "{\"event_id\":\"a2\",\"user_id\":2,\"type\":\"v\"},"
         "{\"event_id\":\"a3\",\"user_id\":\"all-u\",\"type\":\"v\"},"
         "{\"event_id\":\"a4\",\"user_id\":\"all-u\",\"type\":\"v\","
         "\"ts\":\"soon\"}");
  long st = 0;
  json_t *j = http_json(srv, "POST", "/v1/events", body, &st);
  CHECK_INT(st, 422);
  CHECK(check_error_body(j, "invalid_field"));
  CHECK(error_has_detail(j, 0, "type"));
  CHECK(error_has_detail(j, 2, "user_id"));
  CHECK(error_has_detail(j, 4, "ts"));
  CHECK(!error_has_detail(j, 1, NULL));
  CHECK(!error_has_detail(j, 3, NULL));
  json_decref(j);
  CHECK_INT(user_status(srv, "all-u"), 404);
}

/* One valid event and text so that the counts have something to keep. */
static void seed(sd_server *srv) {
  long st = 0;
  json_t *j = http_json(srv, "POST", "/v1/events",
                        EV("{\"event_id\":\"s1\",\"user_id\":\"base-u\","
                           "\"type\":\"v\"}"),
                        &st);
  CHECK_INT(st, 200);
  json_decref(j);
  j = http_json(srv, "POST", "/v1/texts",
                TX("{\"text_id\":\"s2\",\"user_id\":\"base-u\","
                   "\"text\":\"hello there\"}"),
                &st);
  CHECK_INT(st, 200);
  json_decref(j);
}

/* Runs a table of bad cases and checks that no space point count moved
 * and base-u's counts are unchanged. */
static void run_bad(sd_server *srv, const io_case *cases, size_t n) {
  long long pi = space_points(srv, "intents");
  long long ps = space_points(srv, "segments");
  long long e0 = -1, t0 = -1, e1 = -1, t1 = -1;
  CHECK_INT(get_user_counts(srv, "base-u", &e0, &t0), 0);
  run_table(srv, cases, n);
  CHECK(pi >= 0 && ps >= 0);
  CHECK_INT(space_points(srv, "intents"), pi);
  CHECK_INT(space_points(srv, "segments"), ps);
  CHECK_INT(get_user_counts(srv, "base-u", &e1, &t1), 0);
  CHECK_INT(e1, e0);
  CHECK_INT(t1, t0);
}

#define RUN_BAD(srv, t) run_bad((srv), (t), sizeof(t) / sizeof((t)[0]))

static void test_default_server(void) {
  sd_server *srv = srv_start(NULL);
  CHECK(srv != NULL);
  if (!srv)
    return;
  seed(srv);
  RUN_BAD(srv, BAD);
  test_all_bad_items(srv);
  RUN_TABLE(srv, GOOD);
  http_resp r = http_req(srv, "GET", "/healthz", NULL, NULL, 0);
  CHECK_INT(r.status, 200); /* still serving */
  http_resp_free(&r);
  CHECK_INT(srv_stop(srv), 0);
  if (check_failures)
    srv_dump_log(srv);
  srv_free(srv);
}

static void test_limits_server(void) {
  const char *const args[] = {"--max-body", "4096", "--max-batch", "5", NULL};
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (!srv)
    return;
  seed(srv);
  RUN_BAD(srv, LIMITS);
  RUN_TABLE(srv, LIMITS_OK);
  CHECK_INT(srv_stop(srv), 0);
  if (check_failures)
    srv_dump_log(srv);
  srv_free(srv);
}

static void test_flag_limits_server(void) {
  const char *const args[] = {"--max-text", "100", "--max-props", "3",
                              "--max-depth", "10", "--max-id", "16", NULL};
  sd_server *srv = srv_start(args);
  CHECK(srv != NULL);
  if (!srv)
    return;
  seed(srv);
  RUN_BAD(srv, FLAG_LIMITS);
  RUN_TABLE(srv, FLAG_LIMITS_OK);
  CHECK_INT(srv_stop(srv), 0);
  if (check_failures)
    srv_dump_log(srv);
  srv_free(srv);
}

int main(void) {
  test_default_server();
  test_limits_server();
  test_flag_limits_server();
  http_thread_done();
  return check_done("test_bad_input");
}
