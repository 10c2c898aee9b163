/*
 * alloc.h -- allocation of a * b elements with the product checked, the
 * cap every matrix size goes through before malloc (an overflowing size is
 * a NULL, never a short buffer). Zero-sized requests return a valid,
 * freeable pointer. Release with free().
 */
#ifndef SEGMENTD_ALLOC_H
#define SEGMENTD_ALLOC_H

#include <stddef.h>

/* malloc(a * b * size); NULL on overflow or out of memory. */
void *sd_malloc_n(size_t a, size_t b, size_t size);
/* calloc(a * b, size); NULL on overflow or out of memory. */
void *sd_calloc_n(size_t a, size_t b, size_t size);

#endif
