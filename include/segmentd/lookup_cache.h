/*
 * lookup_cache.h -- the in-memory cache of per-user segment answers.
 *
 * Owns: a process-wide hash table from user id to the data of one segment
 * answer (sd_seg_answer: cluster ids, similarities, intents, times), its
 * shards and their locks, and the hit/miss counters. Labels are not cached:
 * readers render them from the snapshot they hold, so a rename shows at
 * once.
 *
 * Validity. An entry is served while (1) the segments and intents model
 * versions it was computed with are the snapshot's, (2) no invalidation
 * touched it: the writer calls sd_lookup_cache_invalidate() for every user
 * an ingest group changed, after its COMMIT, and sd_lookup_cache_clear()
 * after any other change of users or texts (re-assignment, re-embedding,
 * erasure, retention, a model install), and (3) it is younger than the TTL
 * (--lookup-cache-ttl): the behaviour weights (IDF) that similarities use
 * move a little with every ingest, and the TTL bounds that age; every
 * answer says when it was computed (computed_at).
 *
 * Race-free fill: a reader takes a ticket (sd_lookup_cache_ticket) before
 * it reads SQLite and offers its answer with that ticket; the offer is
 * refused when an invalidation of the same shard, or a clear, came in
 * between, so an answer read before a commit is never kept after it.
 *
 * Threads: every function may be called from any thread. Bounded by
 * --lookup-cache entries (0 = off: every call is a cheap no-op); when a
 * shard is full an entry of it is evicted (clock order).
 */
#ifndef SEGMENTD_LOOKUP_CACHE_H
#define SEGMENTD_LOOKUP_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define SD_ANSWER_ALTS 3
#define SD_ANSWER_INTENTS 10

/* The data of one segment answer (API.md), labels aside. */
typedef struct {
  int64_t seg_version, int_version; /* model versions it was computed with */
  int64_t updated_at, computed_at;  /* ms since the epoch */
  int32_t seg_id;                   /* segment cluster id; -1: none */
  float sim, confidence;
  int32_t alt_id[SD_ANSWER_ALTS];
  float alt_sim[SD_ANSWER_ALTS];
  int32_t intent_id[SD_ANSWER_INTENTS];
  float intent_share[SD_ANSWER_INTENTS];
  uint8_t n_alts, n_intents;
  uint8_t views; /* bit v: view v (views.h order) is stored */
} sd_seg_answer;

typedef struct {
  uint64_t hash, epoch, gen;
} sd_lookup_ticket;

typedef struct {
  uint64_t hits, misses, fills, refused, evictions, invalidations, clears;
  size_t entries, capacity;
} sd_lookup_cache_stats;

/* Sizes the cache for `entries` answers kept at most ttl_ms; 0 entries:
 * off. 0 or SD_ENOMEM. Call once before serving; sd_lookup_cache_free()
 * drops it all (at exit). */
int sd_lookup_cache_init(size_t entries, int64_t ttl_ms);
void sd_lookup_cache_free(void);

/* 1 and *out filled when user_id has a valid entry for these model
 * versions at time now_ms; 0 otherwise (counted as a miss). */
int sd_lookup_cache_get(const char *user_id, int64_t seg_version,
                        int64_t int_version, int64_t now_ms,
                        sd_seg_answer *out);

/* Before reading what an answer is computed from. */
sd_lookup_ticket sd_lookup_cache_ticket(const char *user_id);

/* Keeps a copy of *a for user_id unless the ticket is stale. */
void sd_lookup_cache_put(const char *user_id, sd_lookup_ticket t,
                         const sd_seg_answer *a);

/* After a commit that changed user_id's row or texts. */
void sd_lookup_cache_invalidate(const char *user_id);

/* After any change that may touch many users: every entry goes stale. */
void sd_lookup_cache_clear(void);

void sd_lookup_cache_stats_get(sd_lookup_cache_stats *s);

#endif
