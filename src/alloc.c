/* alloc.c -- size-checked array allocation (see alloc.h). */
#include "segmentd/alloc.h"

#include <stdint.h>
#include <stdlib.h>

void *sd_malloc_n(size_t a, size_t b, size_t size) {
  if (a == 0 || b == 0 || size == 0) return malloc(1);
  if (b > SIZE_MAX / a || size > SIZE_MAX / (a * b)) return NULL;
  return malloc(a * b * size);
}

void *sd_calloc_n(size_t a, size_t b, size_t size) {
  if (a == 0 || b == 0 || size == 0) return calloc(1, 1);
  if (b > SIZE_MAX / a) return NULL;
  return calloc(a * b, size);
}
