/*
 * fuzz_check.h -- the one helper the fuzz targets share: FUZZ_CHECK(cond)
 * aborts (so libFuzzer saves the input as a crash) when an invariant of the
 * API under test does not hold, naming the target, line and condition.
 */
#ifndef SEGMENTD_FUZZ_CHECK_H
#define SEGMENTD_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
              #cond);                                                      \
      abort();                                                             \
    }                                                                      \
  } while (0)

#endif
