/*
 * ratelimit.h -- token buckets, one per client, in bounded memory.
 *
 * Owns: a fixed table of buckets (8-way set associative: a client's id
 * picks a set, the least recently used bucket of a full set is taken
 * over, and a client whose bucket was taken over starts again with a full
 * one), refilling at `rate` tokens a second up to `burst`, and the wait
 * a refused request is told (Retry-After). Memory is fixed at creation:
 * about 24 bytes a bucket, however many clients call.
 *
 * Threads: sd_rate_take may be called from any thread (striped mutexes).
 * Memory: sd_rate_new allocates, sd_rate_free (NULL-safe) releases.
 */
#ifndef SEGMENTD_RATELIMIT_H
#define SEGMENTD_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct sd_rate sd_rate;

/* rate > 0 tokens a second, burst >= 1 tokens, room for at least cap
 * clients (ids spread evenly over the sets: hashes, or small integers).
 * 0, or SD_EINVAL / SD_ENOMEM. */
int sd_rate_new(double rate, double burst, size_t cap, sd_rate **out);
void sd_rate_free(sd_rate *r);

/* Takes a token from the bucket of id at monotonic time now_ns: 0 when
 * the request may go on, else the whole seconds (>= 1) until a token is
 * there. */
int sd_rate_take(sd_rate *r, uint64_t id, int64_t now_ns);

/* Buckets in the table (its fixed capacity). */
size_t sd_rate_capacity(const sd_rate *r);

#endif
