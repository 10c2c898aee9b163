/* Unit tests of auth.c (key parsing, digests, the bearer check) and
 * ratelimit.c (token buckets, bounded memory). */
#include "check.h"
#include "segmentd/auth.h"
#include "segmentd/err.h"
#include "segmentd/ratelimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define KA "aaaaaaaaaaaaaaaa-key"
#define KB "bbbbbbbbbbbbbbbb/key+=="

static void test_parse(void) {
  sd_auth *a = NULL;
  char msg[256];
  CHECK_INT(sd_auth_new(NULL, NULL, &a, msg, sizeof msg), 0);
  CHECK_INT(sd_auth_count(a), 0);
  sd_auth_free(a);
  CHECK_INT(sd_auth_new(" " KA ":ingest+read , " KB ":admin,", NULL, &a, msg,
                        sizeof msg), 0);
  CHECK_INT(sd_auth_count(a), 2);
  CHECK_INT(sd_auth_count_scope(a, SD_SCOPE_READ), 1);
  int scopes = 0;
  CHECK_INT(sd_auth_check(a, "Bearer " KA, &scopes), 0);
  CHECK_INT(scopes, SD_SCOPE_INGEST | SD_SCOPE_READ);
  CHECK_INT(sd_auth_check(a, "bearer  " KB " ", &scopes), 1);
  CHECK_INT(scopes, SD_SCOPE_ADMIN);
  CHECK_INT(sd_auth_check(a, NULL, &scopes), SD_EUNAUTH);
  CHECK_INT(sd_auth_check(a, "Bearer", &scopes), SD_EUNAUTH);
  CHECK_INT(sd_auth_check(a, "Basic " KA, &scopes), SD_EUNAUTH);
  CHECK_INT(sd_auth_check(a, "Bearer " KA "x", &scopes), SD_EUNAUTH);
  CHECK_INT(sd_auth_check(a, "Bearer " KA " x", &scopes), SD_EUNAUTH);
  CHECK_INT(scopes, 0);
  sd_auth_free(a);
  /* problems name the entry, never the key */
  const char *bad[] = {KA, "short:read", KA ":", KA ":write", KA ":read+",
                       "aaaaaaaaaaaaaaaa key:read", KA ":read," KA ":admin"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    msg[0] = 0;
    CHECK_INT(sd_auth_new(bad[i], NULL, &a, msg, sizeof msg), SD_EINVAL);
    CHECK(a == NULL);
    CHECK(strstr(msg, "SEGMENTD_API_KEYS entry") != NULL);
    CHECK(strstr(msg, "aaaaaaaaaaaaaaaa") == NULL);
  }
}

static void test_file(void) {
  char path[] = "/tmp/sd-keys-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fprintf(f, "# keys\n\n  " KA ":read # a comment\n" KB ":ingest\n");
  fclose(f);
  sd_auth *a = NULL;
  char msg[256];
  CHECK_INT(sd_auth_new("cccccccccccccccc:admin", path, &a, msg, sizeof msg), 0);
  CHECK_INT(sd_auth_count(a), 3);
  int scopes;
  CHECK_INT(sd_auth_check(a, "Bearer " KB, &scopes), 2);
  CHECK_INT(scopes, SD_SCOPE_INGEST);
  /* keys are named by where they were given, never by their value */
  CHECK(!strcmp(sd_auth_key_name(a, 0), "SEGMENTD_API_KEYS entry 1"));
  CHECK(!strcmp(sd_auth_key_name(a, 1), "--api-keys-file line 3"));
  CHECK(!strcmp(sd_auth_key_name(a, 2), "--api-keys-file line 4"));
  CHECK(sd_auth_key_name(a, -1) == NULL);
  CHECK(sd_auth_key_name(a, 3) == NULL);
  sd_auth_free(a);
  CHECK_INT(sd_auth_new(KB ":admin", path, &a, msg, sizeof msg), SD_EINVAL);
  CHECK(strstr(msg, "line 4") != NULL); /* the same key twice */
  unlink(path);
  CHECK_INT(sd_auth_new(NULL, path, &a, msg, sizeof msg), SD_EINVAL);
}

static void test_rate(void) {
  sd_rate *r = NULL;
  CHECK_INT(sd_rate_new(0, 1, 8, &r), SD_EINVAL);
  CHECK_INT(sd_rate_new(2, 3, 100, &r), 0);
  size_t cap = sd_rate_capacity(r);
  CHECK(cap >= 100 && cap <= 256);
  int64_t t = 1000000000LL;
  for (int i = 0; i < 3; i++) CHECK_INT(sd_rate_take(r, 42, t), 0); /* burst */
  int wait = sd_rate_take(r, 42, t);
  CHECK_INT(wait, 1); /* half a second to one token at 2/s: rounded up */
  CHECK_INT(sd_rate_take(r, 43, t), 0); /* another client is not held */
  CHECK_INT(sd_rate_take(r, 42, t + 500000000LL), 0); /* refilled one */
  CHECK(sd_rate_take(r, 42, t + 500000000LL) > 0);
  /* a million clients later: the same memory, the oldest made room */
  for (uint64_t id = 1000; id < 1001000; id++) sd_rate_take(r, id * 0x9e3779b97f4a7c15ULL, t + 1);
  CHECK_INT(sd_rate_capacity(r), cap);
  sd_rate_free(r);
  /* a slow rate says how long to wait */
  CHECK_INT(sd_rate_new(0.1, 1, 8, &r), 0);
  CHECK_INT(sd_rate_take(r, 7, t), 0);
  CHECK_INT(sd_rate_take(r, 7, t), 10);
  sd_rate_free(r);
}

int main(void) {
  test_parse();
  test_file();
  test_rate();
  return check_done("test_auth");
}
