/*
 * rng.h -- the one pseudo-random generator of segmentd: xoshiro256**
 * (Blackman & Vigna 2018) seeded through splitmix64, so the same seed gives
 * the same stream on every machine. No globals: each user owns its sd_rng,
 * which makes it thread-safe and every fit reproducible from its seed.
 */
#ifndef SEGMENTD_RNG_H
#define SEGMENTD_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint64_t s[4];
} sd_rng;

/* One step of splitmix64: advances *state and returns a mixed value (also
 * usable as a counter-based hash). */
uint64_t sd_splitmix64(uint64_t *state);

void sd_rng_init(sd_rng *r, uint64_t seed);
uint64_t sd_rng_next(sd_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double sd_rng_unit(sd_rng *r);
/* Uniform in [0, n), n >= 1. */
size_t sd_rng_below(sd_rng *r, size_t n);

#endif
