/*
 * test_fake_embedder.c -- smoke test of the fake OpenAI embeddings server
 * (tests/fake_embedder) and its harness (harness_fake.h).
 *
 * Owns the checks that the fake speaks the embeddings protocol (reply
 * shape, vectors equal to fake_embedding(), semantic similarity, 400s for
 * bad bodies, bearer auth), that every fault mode behaves as documented
 * (status, Retry-After, drop, data faults, count expiry, rate), that
 * /_stats counts, that requests are served concurrently, and that SIGTERM
 * exits 0. Does not start segmentd.
 */
#include "check.h"
#include "harness.h"
#include "harness_fake.h"

#include <curl/curl.h>
#include <float.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define DIM 64

static const char *const TEXTS[] = {"card payment declined",
                                    "payment declined card twice",
                                    "sunny weather forecast tomorrow"};
#define N_TEXTS 3

/* POSTs body to /v1/embeddings; the parsed reply (NULL if not JSON). */
static json_t *embed(fake_emb *f, const char *body, long *status,
                     char *retry_after) {
  char *r = fake_http(f, "POST", "/v1/embeddings", body, status, retry_after,
                      retry_after ? 32 : 0);
  json_t *j = json_loads(r, 0, NULL);
  free(r);
  return j;
}

static const char *BATCH =
    "{\"model\":\"m1\",\"input\":[\"card payment declined\","
    "\"payment declined card twice\",\"sunny weather forecast tomorrow\"]}";

static double cosine(const float *a, const float *b) {
  double ab = 0, aa = 0, bb = 0;
  for (int i = 0; i < DIM; i++) {
    ab += (double)a[i] * b[i];
    aa += (double)a[i] * a[i];
    bb += (double)b[i] * b[i];
  }
  return ab / sqrt(aa * bb);
}

/* 1 when item's embedding equals fake_embedding(text). */
static int vec_matches(const json_t *item, const char *text) {
  float want[DIM];
  fake_embedding(text, strlen(text), DIM, want);
  const json_t *e = json_object_get(item, "embedding");
  if (json_array_size(e) != DIM)
    return 0;
  for (size_t d = 0; d < DIM; d++)
    if (fabs(json_number_value(json_array_get(e, d)) - want[d]) > 1e-6)
      return 0;
  return 1;
}

static void test_protocol(fake_emb *f) {
  long st = 0;
  json_t *j = embed(f, BATCH, &st, NULL);
  CHECK_INT(st, 200);
  CHECK_STR(json_string_value(json_object_get(j, "object")), "list");
  CHECK_STR(json_string_value(json_object_get(j, "model")), "m1");
  const json_t *data = json_object_get(j, "data");
  CHECK_INT(json_array_size(data), N_TEXTS);
  for (size_t i = 0; i < N_TEXTS && i < json_array_size(data); i++) {
    const json_t *it = json_array_get(data, i);
    CHECK_STR(json_string_value(json_object_get(it, "object")), "embedding");
    CHECK_INT(json_path_int(it, "index", -1), i);
    CHECK(vec_matches(it, TEXTS[i]));
  }
  CHECK_INT(json_path_int(j, "usage.prompt_tokens", -1), 11);
  CHECK_INT(json_path_int(j, "usage.total_tokens", -1), 11);
  json_decref(j);
  j = embed(f, "{\"model\":\"m\",\"input\":\"Card, PAYMENT declined!\","
               "\"encoding_format\":\"float\"}", &st, NULL);
  CHECK_INT(st, 200);
  CHECK(vec_matches(json_path(j, "data") ? json_array_get(json_path(j, "data"),
                                                          0)
                                         : NULL,
                    TEXTS[0]));
  json_decref(j);
  j = embed(f, "{\"model\":\"m\",\"input\":[\"\"],\"encoding_format\":"
               "\"base64\"}", &st, NULL);
  CHECK_INT(st, 200);
  const json_t *b64 = json_object_get(json_array_get(json_object_get(j, "data"),
                                                     0), "embedding");
  CHECK_INT(json_string_length(b64), (DIM * 4 + 2) / 3 * 4);
  json_decref(j);
}

static void test_similarity(void) {
  float v[N_TEXTS][DIM], e[DIM];
  for (int i = 0; i < N_TEXTS; i++)
    fake_embedding(TEXTS[i], strlen(TEXTS[i]), DIM, v[i]);
  double sim = cosine(v[0], v[1]), unrel = cosine(v[0], v[2]);
  fprintf(stderr, "cos(similar) %.3f, cos(unrelated) %.3f\n", sim, unrel);
  CHECK(sim > 0.6);
  CHECK(sim > unrel + 0.3);
  CHECK_NEAR(cosine(v[0], v[0]), 1.0, 1e-6);
  fake_embedding("  ,; ", 5, DIM, e);
  CHECK_NEAR(e[0], 1.0, 0.0);
  CHECK_NEAR(e[1], 0.0, 0.0);
}

/* Expects status `want` and an OpenAI error of type `type` for body. */
static void expect_error(fake_emb *f, const char *body, long want,
                         const char *type) {
  long st = 0;
  json_t *j = embed(f, body, &st, NULL);
  CHECK_INT(st, want);
  CHECK_STR(json_string_value(json_path(j, "error.type")), type);
  CHECK(json_string_length(json_path(j, "error.message")) > 0);
  json_decref(j);
}

static void test_bad_requests(fake_emb *f) {
  const char *ire = "invalid_request_error";
  expect_error(f, "not json", 400, ire);
  expect_error(f, "{\"model\":\"m\"}", 400, ire);
  expect_error(f, "{\"model\":\"m\",\"input\":5}", 400, ire);
  expect_error(f, "{\"model\":\"m\",\"input\":[]}", 400, ire);
  expect_error(f, "{\"model\":\"m\",\"input\":[\"a\",3]}", 400, ire);
  expect_error(f, "{\"input\":[\"a\"]}", 400, ire);
  CHECK(fake_faults(f, "{\"mode\":\"bogus\"}") != 0);
  CHECK(fake_faults(f, "{\"mode\":\"429\",\"rate\":2}") != 0);
}

/* Arms a fault and expects `status` (and Retry-After `ra` when not NULL). */
static json_t *faulted(fake_emb *f, const char *fault, long status,
                       const char *ra) {
  char got_ra[32];
  long st = -1;
  CHECK_INT(fake_faults(f, fault), 0);
  json_t *j = embed(f, BATCH, &st, got_ra);
  CHECK_INT(st, status);
  if (ra)
    CHECK_STR(got_ra, ra);
  return j;
}

static void ok_request(fake_emb *f) {
  long st = 0;
  json_t *j = embed(f, BATCH, &st, NULL);
  CHECK_INT(st, 200);
  CHECK_INT(json_array_size(json_object_get(j, "data")), N_TEXTS);
  json_decref(j);
}

static void test_status_faults(fake_emb *f) {
  json_t *j = faulted(f, "{\"mode\":\"429\",\"count\":1,\"retry_after\":7}",
                      429, "7");
  CHECK_STR(json_string_value(json_path(j, "error.code")),
            "rate_limit_exceeded");
  json_decref(j);
  ok_request(f); /* count expired */
  json_decref(faulted(f, "{\"mode\":\"503\",\"count\":2}", 503, "1"));
  json_decref(embed(f, BATCH, NULL, NULL));
  ok_request(f);
  json_decref(faulted(f, "{\"mode\":\"500\",\"count\":1}", 500, ""));
  json_decref(faulted(f, "{\"mode\":\"bad_request\",\"count\":1}", 400, ""));
  json_decref(faulted(f, "{\"mode\":\"drop\",\"count\":1}", 0, NULL));
  ok_request(f);
  CHECK_INT(fake_faults(f, "{\"mode\":\"poison\"}"), 0);
  long st = 0;
  json_decref(embed(f, "{\"model\":\"m\",\"input\":[\"a\",\"x POISON y\"]}",
                    &st, NULL));
  CHECK_INT(st, 400);
  ok_request(f);
  CHECK_INT(fake_faults(f, "{\"mode\":\"ok\"}"), 0);
  json_decref(embed(f, "{\"model\":\"m\",\"input\":[\"POISON\"]}", &st, NULL));
  CHECK_INT(st, 200);
}

static void test_data_faults(fake_emb *f) {
  long st = 0;
  char *r;
  CHECK_INT(fake_faults(f, "{\"mode\":\"malformed\",\"count\":1}"), 0);
  r = fake_http(f, "POST", "/v1/embeddings", BATCH, &st, NULL, 0);
  CHECK_INT(st, 200);
  json_t *j = json_loads(r, 0, NULL);
  CHECK(j == NULL && strlen(r) > 10);
  json_decref(j);
  free(r);
  j = faulted(f, "{\"mode\":\"wrong_dim\",\"count\":1}", 200, NULL);
  CHECK_INT(json_array_size(json_path(json_array_get(json_path(j, "data"), 0),
                                      "embedding")), DIM - 1);
  CHECK(vec_matches(json_array_get(json_path(j, "data"), 1), TEXTS[1]));
  json_decref(j);
  j = faulted(f, "{\"mode\":\"nan\",\"count\":1}", 200, NULL);
  const json_t *e0 = json_path(json_array_get(json_path(j, "data"), 0),
                               "embedding");
  CHECK(json_number_value(json_array_get(e0, 0)) > FLT_MAX);
  json_decref(j);
  j = faulted(f, "{\"mode\":\"count_mismatch\",\"count\":1}", 200, NULL);
  CHECK_INT(json_array_size(json_path(j, "data")), N_TEXTS - 1);
  json_decref(j);
  ok_request(f);
  double t0 = now_s();
  json_decref(faulted(f, "{\"mode\":\"slow\",\"count\":1,\"delay_ms\":300}",
                      200, NULL));
  CHECK(now_s() - t0 >= 0.29);
}

static void test_rate(fake_emb *f) {
  long st = 0;
  int n500 = 0;
  CHECK_INT(fake_faults(f, "{\"mode\":\"500\",\"rate\":0.5,\"seed\":42}"), 0);
  for (int i = 0; i < 40; i++) {
    json_decref(embed(f, BATCH, &st, NULL));
    n500 += st == 500;
    CHECK(st == 500 || st == 200);
  }
  fprintf(stderr, "rate 0.5: %d of 40 faulted\n", n500);
  CHECK(n500 >= 8 && n500 <= 32);
  CHECK_INT(fake_faults(f, "{\"mode\":\"500\",\"rate\":1}"), 0);
  json_decref(embed(f, BATCH, &st, NULL));
  CHECK_INT(st, 500);
  CHECK_INT(fake_faults(f, "{\"mode\":\"ok\"}"), 0);
}

static void test_stats(fake_emb *f) {
  CHECK_INT(fake_stats_reset(f), 0);
  ok_request(f);
  ok_request(f);
  json_decref(faulted(f, "{\"mode\":\"503\",\"count\":1}", 503, "1"));
  json_decref(embed(f, "not json", NULL, NULL));
  json_t *s = fake_stats(f);
  CHECK_INT(json_path_int(s, "requests", -1), 4);
  CHECK_INT(json_path_int(s, "ok", -1), 2);
  CHECK_INT(json_path_int(s, "faulted", -1), 1);
  CHECK_INT(json_path_int(s, "bad", -1), 1);
  CHECK_INT(json_path_int(s, "texts", -1), 2 * N_TEXTS);
  CHECK_INT(json_path_int(s, "max_inflight", -1), 1);
  for (int i = 0; i < N_TEXTS; i++)
    CHECK_INT(json_integer_value(json_object_get(
                  json_object_get(s, "per_text"), TEXTS[i])), 2);
  json_decref(s);
}

typedef struct {
  fake_emb *f;
  long status;
} slow_job;

static void *slow_worker(void *arg) {
  slow_job *job = arg;
  json_decref(embed(job->f, BATCH, &job->status, NULL));
  return NULL;
}

/* 8 concurrent slow requests finish in about one delay, not eight. */
static void test_concurrency(fake_emb *f) {
  pthread_t th[8];
  slow_job jobs[8];
  CHECK_INT(fake_stats_reset(f), 0);
  CHECK_INT(fake_faults(f, "{\"mode\":\"slow\",\"delay_ms\":400}"), 0);
  double t0 = now_s();
  for (int i = 0; i < 8; i++) {
    jobs[i].f = f;
    jobs[i].status = -1;
    CHECK_INT(pthread_create(&th[i], NULL, slow_worker, &jobs[i]), 0);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(th[i], NULL);
    CHECK_INT(jobs[i].status, 200);
  }
  double dt = now_s() - t0;
  json_t *s = fake_stats(f);
  fprintf(stderr, "8 slow requests in %.2f s, max_inflight %lld\n", dt,
          json_path_int(s, "max_inflight", -1));
  CHECK(dt < 2.0);
  CHECK(json_path_int(s, "max_inflight", -1) >= 4);
  CHECK_INT(json_path_int(s, "faulted", -1), 8);
  CHECK_INT(json_path_int(s, "ok", -1), 8);
  json_decref(s);
  CHECK_INT(fake_faults(f, "{\"mode\":\"ok\"}"), 0);
}

/* A request with an Authorization header; the status. */
static long auth_request(const fake_emb *f, const char *auth) {
  CURL *h = curl_easy_init();
  char url[128];
  long st = 0;
  struct curl_slist *hd = curl_slist_append(NULL, auth);
  snprintf(url, sizeof url, "%s/v1/embeddings", f->url);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, BATCH);
  FILE *devnull = fopen("/dev/null", "w");
  curl_easy_setopt(h, CURLOPT_WRITEDATA, devnull);
  if (curl_easy_perform(h) == CURLE_OK)
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
  fclose(devnull);
  curl_slist_free_all(hd);
  curl_easy_cleanup(h);
  return st;
}

static void test_auth(void) {
  const char *args[] = {"--api-key", "sekrit", NULL};
  fake_emb *f = fake_start(8, args);
  CHECK(f != NULL);
  if (!f)
    return;
  CHECK_INT(auth_request(f, "Authorization: Bearer sekrit"), 200);
  CHECK_INT(auth_request(f, "Authorization: Bearer wrong"), 401);
  CHECK_INT(auth_request(f, "X-None: 1"), 401);
  CHECK_INT(fake_stop(f), 0);
}

int main(void) {
  double t0 = now_s();
  const char *args[] = {"--track", NULL};
  fake_emb *f = fake_start(DIM, args);
  CHECK(f != NULL);
  if (!f)
    return check_done("test_fake_embedder");
  long st = 0;
  free(fake_http(f, "GET", "/healthz", NULL, &st, NULL, 0));
  CHECK_INT(st, 200);
  test_protocol(f);
  test_similarity();
  test_bad_requests(f);
  test_status_faults(f);
  test_data_faults(f);
  test_rate(f);
  test_stats(f);
  test_concurrency(f);
  CHECK_INT(fake_stop(f), 0);
  test_auth();
  fprintf(stderr, "test_fake_embedder: %.2f s\n", now_s() - t0);
  return check_done("test_fake_embedder");
}
