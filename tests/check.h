/*
 * check.h -- the tiny assertion kit of segmentd's test programs.
 *
 * CHECK(cond) records a failure with file:line and goes on; the test's main
 * returns check_done(), which prints a summary and is non-zero on any failure.
 */
#ifndef SD_TEST_CHECK_H
#define SD_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                      \
  do {                                                                   \
    check_count++;                                                       \
    if (!(cond)) {                                                       \
      check_failures++;                                                  \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,   \
              #cond);                                                    \
    }                                                                    \
  } while (0)

#define CHECK_INT(a, b)                                                  \
  do {                                                                   \
    long long check_a_ = (long long)(a), check_b_ = (long long)(b);      \
    check_count++;                                                       \
    if (check_a_ != check_b_) {                                          \
      check_failures++;                                                  \
      fprintf(stderr, "%s:%d: CHECK_INT failed: %s == %s (%lld vs %lld)\n", \
              __FILE__, __LINE__, #a, #b, check_a_, check_b_);           \
    }                                                                    \
  } while (0)

#define CHECK_NEAR(a, b, eps)                                            \
  do {                                                                   \
    double check_a_ = (double)(a), check_b_ = (double)(b);               \
    check_count++;                                                       \
    if (!(fabs(check_a_ - check_b_) <= (eps))) {                         \
      check_failures++;                                                  \
      fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s ~ %s (%g vs %g)\n",  \
              __FILE__, __LINE__, #a, #b, check_a_, check_b_);           \
    }                                                                    \
  } while (0)

#define CHECK_STR(a, b)                                                  \
  do {                                                                   \
    const char *check_a_ = (a), *check_b_ = (b);                         \
    check_count++;                                                       \
    if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {     \
      check_failures++;                                                  \
      fprintf(stderr, "%s:%d: CHECK_STR failed: %s == %s (\"%s\" vs \"%s\")\n", \
              __FILE__, __LINE__, #a, #b, check_a_ ? check_a_ : "(null)", \
              check_b_ ? check_b_ : "(null)");                           \
    }                                                                    \
  } while (0)

static inline int check_done(const char *name) {
  fprintf(stderr, "%s: %d checks, %d failed\n", name, check_count,
          check_failures);
  return check_failures ? 1 : 0;
}

#endif
