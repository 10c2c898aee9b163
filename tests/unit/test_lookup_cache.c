/* Unit tests of lookup_cache.c: hits, the validity rules (model versions,
 * TTL, invalidation, clear), stale fills refused, eviction at capacity,
 * and concurrent readers against an invalidating writer. */
#include "check.h"
#include "segmentd/lookup_cache.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static sd_seg_answer answer(int32_t seg, int64_t at) {
  sd_seg_answer a;
  memset(&a, 0, sizeof(a));
  a.seg_version = 2;
  a.int_version = 1;
  a.computed_at = at;
  a.seg_id = seg;
  a.n_alts = 1;
  a.alt_id[0] = seg + 1;
  return a;
}

static void fill(const char *id, int32_t seg, int64_t at) {
  sd_seg_answer a = answer(seg, at);
  sd_lookup_cache_put(id, sd_lookup_cache_ticket(id), &a);
}

static void validity(void) {
  sd_seg_answer a;
  CHECK(!sd_lookup_cache_get("u1", 2, 1, 1000, &a)); /* empty */
  fill("u1", 7, 1000);
  CHECK(sd_lookup_cache_get("u1", 2, 1, 1500, &a));
  CHECK_INT(a.seg_id, 7);
  CHECK_INT(a.alt_id[0], 8);
  CHECK(!sd_lookup_cache_get("u1", 3, 1, 1500, &a)); /* new segments model */
  CHECK(!sd_lookup_cache_get("u1", 2, 2, 1500, &a)); /* new intents model */
  CHECK(!sd_lookup_cache_get("u1", 2, 1, 1000 + 60000, &a)); /* TTL */
  CHECK(!sd_lookup_cache_get("u10", 2, 1, 1500, &a)); /* other id */
  sd_lookup_cache_invalidate("u1");
  CHECK(!sd_lookup_cache_get("u1", 2, 1, 1500, &a));
  fill("u1", 9, 1000);
  fill("u2", 4, 1000);
  sd_lookup_cache_clear();
  CHECK(!sd_lookup_cache_get("u1", 2, 1, 1500, &a));
  CHECK(!sd_lookup_cache_get("u2", 2, 1, 1500, &a));
  fill("u2", 5, 1000); /* after a clear, new fills count again */
  CHECK(sd_lookup_cache_get("u2", 2, 1, 1500, &a) && a.seg_id == 5);
}

/* A fill whose data was read before a commit must not survive it. */
static void stale_fills_refused(void) {
  sd_seg_answer a = answer(1, 1000), got;
  sd_lookup_ticket t = sd_lookup_cache_ticket("s1");
  sd_lookup_cache_invalidate("s1"); /* the writer committed meanwhile */
  sd_lookup_cache_put("s1", t, &a);
  CHECK(!sd_lookup_cache_get("s1", 2, 1, 1500, &got));
  t = sd_lookup_cache_ticket("s1");
  sd_lookup_cache_clear();
  sd_lookup_cache_put("s1", t, &a);
  CHECK(!sd_lookup_cache_get("s1", 2, 1, 1500, &got));
  sd_lookup_cache_stats st;
  sd_lookup_cache_stats_get(&st);
  CHECK(st.refused == 2);
}

static void bounded(void) {
  char id[32];
  for (int i = 0; i < 20000; i++) {
    snprintf(id, sizeof(id), "user-%d", i);
    fill(id, i % 50, 1000);
  }
  sd_lookup_cache_stats st;
  sd_lookup_cache_stats_get(&st);
  CHECK(st.entries <= st.capacity);
  CHECK(st.capacity < 20000 && st.evictions > 0);
  int kept = 0; /* whatever is kept is right */
  for (int i = 0; i < 20000; i++) {
    sd_seg_answer a;
    snprintf(id, sizeof(id), "user-%d", i);
    if (sd_lookup_cache_get(id, 2, 1, 1500, &a)) {
      kept++;
      CHECK_INT(a.seg_id, i % 50);
    }
  }
  CHECK_INT(kept, (long long)st.entries);
}

/* Readers fill "version" v of ids while a writer bumps versions and
 * invalidates: once the writer has invalidated after a commit (as ingest
 * does before it acknowledges), no reader sees an older version. */
static volatile int published[64], acked[64];
static volatile int stop_flag;

static void *reader(void *arg) {
  (void)arg;
  char id[16];
  int bad = 0;
  for (int n = 0; !stop_flag; n++) {
    int k = n % 64;
    snprintf(id, sizeof(id), "c%d", k);
    sd_seg_answer a;
    int before = __atomic_load_n(&acked[k], __ATOMIC_SEQ_CST);
    if (sd_lookup_cache_get(id, 2, 1, 1500, &a)) {
      if (a.seg_id < before) bad++;
      continue;
    }
    sd_lookup_ticket t = sd_lookup_cache_ticket(id);
    int v = __atomic_load_n(&published[k], __ATOMIC_SEQ_CST); /* "read" */
    sd_seg_answer f = answer(v, 1000);
    sd_lookup_cache_put(id, t, &f);
  }
  return (void *)(long)bad;
}

static void concurrent(void) {
  pthread_t th[2];
  for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, reader, NULL);
  char id[16];
  for (int round = 1; round <= 20000; round++) {
    int k = round % 64;
    snprintf(id, sizeof(id), "c%d", k);
    __atomic_store_n(&published[k], round, __ATOMIC_SEQ_CST); /* commit */
    sd_lookup_cache_invalidate(id);                           /* then this */
    __atomic_store_n(&acked[k], round, __ATOMIC_SEQ_CST);     /* then ack */
  }
  stop_flag = 1;
  long bad = 0;
  for (int i = 0; i < 2; i++) {
    void *r;
    pthread_join(th[i], &r);
    bad += (long)r;
  }
  CHECK_INT(bad, 0);
}

int main(void) {
  sd_seg_answer a;
  CHECK(!sd_lookup_cache_get("u1", 2, 1, 0, &a)); /* off: never a hit */
  CHECK_INT(sd_lookup_cache_init(5000, 60000), 0);
  validity();
  stale_fills_refused();
  bounded();
  concurrent();
  sd_lookup_cache_free();
  return check_done("test_lookup_cache");
}
