/*
 * embed_queue.h -- embedding the texts that were stored without a vector.
 *
 * Owns: one thread that reads the embed_queue table in order and embeds
 * its texts in batches of --embed-batch: with a remote OpenAI-compatible
 * embedder through one libcurl multi handle (up to --embed-inflight
 * requests at once), or, for a re-embed onto the built-in encoder, by
 * handing the texts to the core writer, which encodes them. Vectors go to
 * the writer as SD_BATCH_EMBED jobs, stored and assigned there exactly
 * once (core_ingest.c).
 *
 * Failures never lose a text: a failed batch stays queued and is retried
 * with exponential backoff and jitter (at least the server's Retry-After);
 * --embed-breaker-failures consecutive failures open a circuit breaker
 * that sends nothing for --embed-breaker-cooldown-ms, then one probe.
 * A batch the embedder rejects (HTTP 400, 413, 422) is split in halves
 * until the text it rejects is alone; that text is marked failed after
 * --embed-retries attempts and stays stored (a re-embed retries it).
 * Replies of the wrong shape (count, dimension, non-finite values) are
 * failures and are never stored.
 *
 * Threads: start/stop/free from the main thread; sd_embedq_json and
 * sd_embedq_embed_one from any thread. Memory: the queue owns its batches;
 * the caller frees the queue with sd_embedq_free after sd_embedq_stop,
 * which must run before the core stops (it waits for its writer jobs).
 */
#ifndef SEGMENTD_EMBED_QUEUE_H
#define SEGMENTD_EMBED_QUEUE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "segmentd/config.h"
#include "segmentd/core.h"

typedef struct sd_embedq sd_embedq;

enum { SD_BREAKER_CLOSED, SD_BREAKER_OPEN, SD_BREAKER_HALF_OPEN };

/* The queue thread's counters since start. */
typedef struct {
  int64_t requests, requests_failed, retries, splits;
  int64_t timeouts, busy, http_errors, bad_replies, transport; /* failures */
  int64_t texts_embedded, texts_failed, duplicates, breaker_opens;
  int breaker, in_flight;
  int64_t breaker_retry_at, pause_until;
  char last_error[160];
  int64_t last_error_at;
} sd_embedq_stats;

/* A copy of the counters (zeros when q is NULL). */
void sd_embedq_get_stats(sd_embedq *q, sd_embedq_stats *out);
/* Seconds the oldest queued text has waited (0 when none), read with the
 * calling thread's read connection; -1 on a read error. */
double sd_embedq_oldest_pending(void);

/* Starts the thread (and registers with the core for new texts). 0 or a
 * negative sd_err with msg set. */
int sd_embedq_start(const sd_config *cfg, sd_core *core, sd_embedq **out,
                    char *msg, size_t msglen);
/* Stops the thread: requests in flight are abandoned (their texts stay
 * queued for the next start); waits for the writer jobs it submitted. */
void sd_embedq_stop(sd_embedq *q);
void sd_embedq_free(sd_embedq *q);

/* The queue's figures for /v1/info and /metrics: a new object. q may be
 * NULL (no queue thread). Reads the oldest pending text with the calling
 * thread's read connection. */
json_t *sd_embedq_json(sd_embedq *q, const sd_core *core);

/* Embeds one text with the remote embedder, now (for POST /v1/assign).
 * SD_ENOTREADY at once while the circuit breaker is open; otherwise as
 * sd_remote_embed(). out: dim floats. */
int sd_embedq_embed_one(sd_embedq *q, const char *text, size_t len,
                        float *out, char *err, size_t errlen);

#endif
