/* rng.c -- xoshiro256** seeded by splitmix64 (see rng.h). */
#include "segmentd/rng.h"

uint64_t sd_splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void sd_rng_init(sd_rng *r, uint64_t seed) {
  for (int i = 0; i < 4; i++) r->s[i] = sd_splitmix64(&seed);
}

static uint64_t rotl(uint64_t v, int b) { return (v << b) | (v >> (64 - b)); }

uint64_t sd_rng_next(sd_rng *r) {
  uint64_t *s = r->s;
  uint64_t out = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return out;
}

double sd_rng_unit(sd_rng *r) {
  return (double)(sd_rng_next(r) >> 11) * 0x1.0p-53;
}

size_t sd_rng_below(sd_rng *r, size_t n) {
  size_t i = (size_t)(sd_rng_unit(r) * (double)n);
  return i < n ? i : n - 1;
}
