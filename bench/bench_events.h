/*
 * bench_events.h -- the synthetic event rows of the benchmark suite, shared
 * by ceiling_sqlite.c (inserted with the naive loop) and loadgen.c (posted
 * to segmentd), so both store exactly the same rows.
 *
 * Row r of stream `seed`: a random UUID-v4-shaped event_id (random text key),
 * a user "u<k>" with k uniform in [0, users), one of 12 event types, a
 * timestamp within the last 30 days before `now_ms`, and a properties object
 * of three short string properties (device, country, plan). Deterministic:
 * the same (seed, r) always gives the same row.
 */
#ifndef BENCH_EVENTS_H
#define BENCH_EVENTS_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
  char event_id[40];
  char user_id[24];
  const char *type;
  int64_t ts;
  char props[96];
} bench_event;

static inline uint64_t bench_mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static inline void bench_event_make(uint64_t seed, uint64_t r, uint64_t users,
                                    int64_t now_ms, bench_event *e) {
  static const char *types[] = {"view",     "search", "add_to_cart",
                                "checkout", "refund", "login",
                                "share",    "review", "wishlist",
                                "support",  "signup", "logout"};
  static const char *devices[] = {"ios", "android", "web"};
  static const char *countries[] = {"DE", "FR", "US", "GB", "ES", "IT"};
  static const char *plans[] = {"free", "pro", "team"};
  uint64_t a = bench_mix(seed * 0x100000001b3ULL + r);
  uint64_t b = bench_mix(a);
  uint64_t c = bench_mix(b);
  snprintf(e->event_id, sizeof e->event_id,
           "%08" PRIx32 "-%04" PRIx32 "-4%03" PRIx32 "-%04" PRIx32
           "-%012" PRIx64,
           (uint32_t)(a >> 32), (uint32_t)(a >> 16) & 0xffffu,
           (uint32_t)a & 0xfffu, (uint32_t)(0x8000u | ((b >> 48) & 0x3fffu)),
           (uint64_t)(b & 0xffffffffffffULL));
  uint64_t u = users ? (c >> 11) % users : 0;
  snprintf(e->user_id, sizeof e->user_id, "u%" PRIu64, u);
  e->type = types[(c & 0xff) % 12];
  e->ts = now_ms - (int64_t)((c >> 20) % (30ULL * 86400000ULL));
  snprintf(e->props, sizeof e->props,
           "{\"device\":\"%s\",\"country\":\"%s\",\"plan\":\"%s\"}",
           devices[(b >> 8) % 3], countries[(b >> 16) % 6], plans[(b >> 24) % 3]);
}

#endif
