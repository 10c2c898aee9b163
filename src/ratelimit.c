/*
 * ratelimit.c -- token buckets in a fixed table (ratelimit.h).
 *
 * The table has a power-of-two number of sets of WAYS buckets; id picks
 * the set by its low bits, so small integer ids (API key indexes) never
 * share a set when there are at least as many sets as keys, and hashed ids
 * (client addresses) spread evenly. A set is guarded by one of STRIPES
 * mutexes. A bucket holds its id, its tokens and when it was last filled.
 */
#include "segmentd/ratelimit.h"
#include "segmentd/err.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#define WAYS 8
#define STRIPES 64

typedef struct {
  uint64_t id; /* 0 = free */
  double tokens;
  int64_t t_ns; /* last refill */
} bucket;

struct sd_rate {
  double rate, burst;
  size_t nsets;
  bucket *b; /* nsets * WAYS */
  pthread_mutex_t mu[STRIPES];
};

int sd_rate_new(double rate, double burst, size_t cap, sd_rate **out) {
  *out = NULL;
  if (!(rate > 0) || !(burst >= 1) || cap == 0) return SD_EINVAL;
  sd_rate *r = calloc(1, sizeof(*r));
  size_t nsets = 1;
  while (nsets * WAYS < cap) nsets *= 2;
  if (r) r->b = calloc(nsets * WAYS, sizeof(bucket));
  if (!r || !r->b) {
    free(r);
    return SD_ENOMEM;
  }
  r->rate = rate, r->burst = burst, r->nsets = nsets;
  for (int i = 0; i < STRIPES; i++) pthread_mutex_init(&r->mu[i], NULL);
  *out = r;
  return 0;
}

void sd_rate_free(sd_rate *r) {
  if (!r) return;
  for (int i = 0; i < STRIPES; i++) pthread_mutex_destroy(&r->mu[i]);
  free(r->b);
  free(r);
}

size_t sd_rate_capacity(const sd_rate *r) { return r->nsets * WAYS; }

/* The bucket of id in set s: its own, else a free one, else the least
 * recently filled (taken over, full again). */
static bucket *set_find(sd_rate *r, bucket *s, uint64_t id, int64_t now) {
  bucket *lru = &s[0];
  for (int w = 0; w < WAYS; w++) {
    if (s[w].id == id) return &s[w];
    if (s[w].id == 0 || (lru->id != 0 && s[w].t_ns < lru->t_ns)) lru = &s[w];
  }
  *lru = (bucket){id, r->burst, now};
  return lru;
}

int sd_rate_take(sd_rate *r, uint64_t id, int64_t now_ns) {
  if (id == 0) id = 1; /* 0 marks a free bucket */
  size_t set = (size_t)(id & (r->nsets - 1));
  pthread_mutex_t *mu = &r->mu[set % STRIPES];
  pthread_mutex_lock(mu);
  bucket *b = set_find(r, &r->b[set * WAYS], id, now_ns);
  if (now_ns > b->t_ns) {
    b->tokens += (double)(now_ns - b->t_ns) * 1e-9 * r->rate;
    if (b->tokens > r->burst) b->tokens = r->burst;
  }
  b->t_ns = now_ns > b->t_ns ? now_ns : b->t_ns;
  int wait = 0;
  if (b->tokens >= 1.0)
    b->tokens -= 1.0;
  else
    wait = (int)ceil((1.0 - b->tokens) / r->rate);
  pthread_mutex_unlock(mu);
  return wait > 0 ? wait : 0;
}
