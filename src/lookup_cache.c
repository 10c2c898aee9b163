/*
 * lookup_cache.c -- the per-user segment answer cache (lookup_cache.h).
 *
 * 64 shards, each a chained hash table under its own mutex with a fixed
 * share of the capacity; the shard is picked by the top bits of the id's
 * hash, the bucket by the low bits. A global epoch makes every entry stale
 * at once (clear); a per-shard generation, bumped by every invalidation,
 * lets a fill detect that its data may predate a commit.
 */
#include "segmentd/lookup_cache.h"

#include "segmentd/err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SHARD_BITS 6
#define SHARDS (1u << SHARD_BITS)

typedef struct lc_entry {
  struct lc_entry *next;
  uint64_t hash, epoch;
  sd_seg_answer a;
  char id[];
} lc_entry;

typedef struct {
  pthread_mutex_t mu;
  _Atomic uint64_t gen;
  lc_entry **buckets;
  size_t mask, count, cap, hand;
} lc_shard;

static struct {
  int on;
  int64_t ttl_ms;
  lc_shard shards[SHARDS];
  _Atomic uint64_t epoch;
  _Atomic uint64_t hits, misses, fills, refused, evictions, invalidations,
      clears;
} C;

static uint64_t id_hash(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a, then a final mix */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  return h ^ (h >> 33);
}

static lc_shard *shard_of(uint64_t h) { return &C.shards[h >> (64 - SHARD_BITS)]; }

static void count(_Atomic uint64_t *c) {
  atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

int sd_lookup_cache_init(size_t entries, int64_t ttl_ms) {
  if (entries == 0) return 0;
  size_t per = entries / SHARDS + 1, nb = 16;
  while (nb < per) nb <<= 1;
  for (unsigned i = 0; i < SHARDS; i++) {
    lc_shard *s = &C.shards[i];
    s->buckets = calloc(nb, sizeof(*s->buckets));
    if (!s->buckets) {
      sd_lookup_cache_free();
      return SD_ENOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->mask = nb - 1;
    s->cap = per;
  }
  C.ttl_ms = ttl_ms;
  C.on = 1;
  return 0;
}

void sd_lookup_cache_free(void) {
  for (unsigned i = 0; i < SHARDS; i++) {
    lc_shard *s = &C.shards[i];
    if (!s->buckets) continue;
    for (size_t b = 0; b <= s->mask; b++)
      for (lc_entry *e = s->buckets[b], *n; e; e = n) {
        n = e->next;
        free(e);
      }
    free(s->buckets);
    pthread_mutex_destroy(&s->mu);
    memset(s, 0, sizeof(*s));
  }
  C.on = 0;
}

/* The link pointing at user_id's entry in its bucket (*link NULL: none). */
static lc_entry **find(lc_shard *s, uint64_t h, const char *user_id) {
  lc_entry **link = &s->buckets[h & s->mask];
  while (*link && ((*link)->hash != h || strcmp((*link)->id, user_id)))
    link = &(*link)->next;
  return link;
}

int sd_lookup_cache_get(const char *user_id, int64_t seg_version,
                        int64_t int_version, int64_t now_ms,
                        sd_seg_answer *out) {
  if (!C.on) return 0;
  uint64_t h = id_hash(user_id);
  uint64_t epoch = atomic_load_explicit(&C.epoch, memory_order_acquire);
  lc_shard *s = shard_of(h);
  pthread_mutex_lock(&s->mu);
  lc_entry *e = *find(s, h, user_id);
  int ok = e && e->epoch == epoch && e->a.seg_version == seg_version &&
           e->a.int_version == int_version &&
           now_ms - e->a.computed_at < C.ttl_ms;
  if (ok) *out = e->a;
  pthread_mutex_unlock(&s->mu);
  count(ok ? &C.hits : &C.misses);
  return ok;
}

sd_lookup_ticket sd_lookup_cache_ticket(const char *user_id) {
  sd_lookup_ticket t = {0, 0, 0};
  if (!C.on) return t;
  t.hash = id_hash(user_id);
  t.epoch = atomic_load_explicit(&C.epoch, memory_order_acquire);
  t.gen = atomic_load_explicit(&shard_of(t.hash)->gen, memory_order_acquire);
  return t;
}

/* Drops one entry of a full shard: the first found from the clock hand. */
static void evict_one(lc_shard *s) {
  for (size_t tries = 0; tries <= s->mask; tries++) {
    lc_entry **b = &s->buckets[s->hand];
    s->hand = (s->hand + 1) & s->mask;
    if (*b) {
      lc_entry *e = *b;
      *b = e->next;
      free(e);
      s->count--;
      count(&C.evictions);
      return;
    }
  }
}

void sd_lookup_cache_put(const char *user_id, sd_lookup_ticket t,
                         const sd_seg_answer *a) {
  if (!C.on) return;
  lc_shard *s = shard_of(t.hash);
  pthread_mutex_lock(&s->mu);
  if (atomic_load(&s->gen) != t.gen || atomic_load(&C.epoch) != t.epoch) {
    pthread_mutex_unlock(&s->mu);
    count(&C.refused);
    return;
  }
  lc_entry **link = find(s, t.hash, user_id), *e = *link;
  if (!e) {
    if (s->count >= s->cap) {
      evict_one(s);
      link = find(s, t.hash, user_id); /* the chain may have changed */
    }
    size_t n = strlen(user_id) + 1;
    e = malloc(sizeof(*e) + n);
    if (e) {
      memcpy(e->id, user_id, n);
      e->hash = t.hash;
      e->next = NULL;
      *link = e;
      s->count++;
    }
  }
  if (e) {
    e->epoch = t.epoch;
    e->a = *a;
    count(&C.fills);
  }
  pthread_mutex_unlock(&s->mu);
}

void sd_lookup_cache_invalidate(const char *user_id) {
  if (!C.on) return;
  uint64_t h = id_hash(user_id);
  lc_shard *s = shard_of(h);
  pthread_mutex_lock(&s->mu);
  atomic_fetch_add(&s->gen, 1);
  lc_entry **link = find(s, h, user_id), *e = *link;
  if (e) {
    *link = e->next;
    free(e);
    s->count--;
  }
  pthread_mutex_unlock(&s->mu);
  count(&C.invalidations);
}

void sd_lookup_cache_clear(void) {
  if (!C.on) return;
  atomic_fetch_add_explicit(&C.epoch, 1, memory_order_acq_rel);
  count(&C.clears);
}

void sd_lookup_cache_stats_get(sd_lookup_cache_stats *st) {
  memset(st, 0, sizeof(*st));
  st->hits = atomic_load(&C.hits);
  st->misses = atomic_load(&C.misses);
  st->fills = atomic_load(&C.fills);
  st->refused = atomic_load(&C.refused);
  st->evictions = atomic_load(&C.evictions);
  st->invalidations = atomic_load(&C.invalidations);
  st->clears = atomic_load(&C.clears);
  for (unsigned i = 0; C.on && i < SHARDS; i++) {
    pthread_mutex_lock(&C.shards[i].mu);
    st->entries += C.shards[i].count;
    st->capacity += C.shards[i].cap;
    pthread_mutex_unlock(&C.shards[i].mu);
  }
}
