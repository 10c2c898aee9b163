/*
 * notify.h -- webhook delivery through an outbox table.
 *
 * Owns: the outbox table (migrations/0009_outbox.sql), the one notifier
 * thread that POSTs its rows, and the request signature.
 *
 * Streams: "alerts" go to --webhook-url, "segments" to
 * --segments-webhook-url; a stream without a URL is neither stored nor
 * sent. The core writer adds rows with sd_outbox_add() inside the
 * transaction of the change that caused the event, so an event is durable
 * exactly when its cause is committed. The thread reads pending rows with
 * its own read connection and records every outcome through the writer
 * (fn jobs, core.h); it never writes SQLite itself and never blocks ingest
 * (a full writer queue is retried a little later).
 *
 * Order: per stream, rows are delivered one at a time in id order, so a
 * receiver sees a stream's events in order. A row waiting for its retry
 * holds back the later rows of its stream; a given-up row does not.
 *
 * Request: POST <url>, Content-Type: application/json, body
 *   {"id": <outbox id>, "stream": "...", "event": "...",
 *    "created_at": "<RFC 3339>", "data": <the payload>}
 * with the headers X-Segmentd-Delivery: <id>, X-Segmentd-Event: <event>,
 * X-Segmentd-Timestamp: <unix seconds of this attempt> and, when a secret
 * is configured, X-Segmentd-Signature: sha256=<lowercase hex of
 * HMAC-SHA256(secret, "<timestamp>.<body>")>. Redirects are not followed;
 * only http and https URLs are accepted.
 *
 * Outcome: any 2xx is delivered. 429 and 503 wait at least Retry-After
 * (seconds or an HTTP date). Any other failure (timeout, connection error,
 * other status) waits an exponential backoff with jitter: uniform in
 * [d/2, d], d doubling from --webhook-backoff-ms to
 * --webhook-backoff-max-ms. After --webhook-max-attempts failed attempts
 * the row is given up (gave_up_at, a warn line, given_up_total).
 *
 * Restarts and duplicates: rows survive restarts and the thread resumes
 * from the table, honouring next_at. Delivery is at-least-once: a crash or
 * stop after the receiver got a request but before delivered_at was
 * committed sends it again, so receivers dedupe by X-Segmentd-Delivery.
 *
 * Threads: start/stop/free from the main thread; sd_notify_kick and
 * sd_notify_get_stats from any thread; sd_outbox_add and sd_outbox_prune
 * on the writer only. Memory: the caller frees the notifier with
 * sd_notify_free; sd_notify_stop must run before the core stops (it waits
 * for the writer jobs it submitted). The secret is never logged.
 */
#ifndef SEGMENTD_NOTIFY_H
#define SEGMENTD_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "segmentd/config.h"
#include "segmentd/core.h"

struct sd_store;

#define SD_OUTBOX_MAX_PAYLOAD (1u << 20) /* bytes of one event's JSON */
#define SD_OUTBOX_MAX_EVENT 64           /* bytes of an event name */

enum { SD_NOTIFY_ALERTS, SD_NOTIFY_SEGMENTS, SD_NOTIFY_STREAMS };

/* ---- the writer's side ---- */

/*
 * Adds an event to the outbox of stream ("alerts" | "segments") on the
 * writer connection db, inside the caller's open transaction. Nothing is
 * inserted (and 0 returned) when that stream has no URL in cfg. event:
 * 1..SD_OUTBOX_MAX_EVENT bytes of [A-Za-z0-9._-]; payload: valid JSON of
 * at most SD_OUTBOX_MAX_PAYLOAD bytes (copied). 0, SD_EINVAL (unknown
 * stream, bad event or payload) or SD_EDB.
 */
int sd_outbox_add(const sd_config *cfg, struct sd_store *db,
                  const char *stream, const char *event, const char *payload,
                  int64_t now_ms);

/* Deletes delivered and given-up rows finished before before_ms (pending
 * rows are kept), on the writer inside its transaction. *deleted (may be
 * NULL) gets the count. 0 or SD_EDB. */
int sd_outbox_prune(struct sd_store *db, int64_t before_ms, int64_t *deleted);

/* ---- the notifier thread ---- */

typedef struct sd_notify sd_notify;

/* One stream's figures since start (pending: from the table). */
typedef struct {
  const char *stream;            /* "alerts" | "segments" (static) */
  int enabled;                   /* a URL is configured */
  int in_flight;                 /* 0 or 1 request on the wire */
  int64_t delivered_total;       /* 2xx answers recorded */
  int64_t attempts_failed_total; /* failed requests (each retry counts) */
  int64_t given_up_total;        /* rows given up */
  int64_t pending;               /* rows neither delivered nor given up */
  int64_t oldest_pending_at;     /* created_at (epoch ms) of the head row
                                    the thread holds, 0 when none */
} sd_notify_stream_stats;

typedef struct {
  /* totals over the enabled streams */
  int64_t delivered_total, attempts_failed_total, given_up_total;
  int in_flight;
  int64_t outbox_pending;
  double oldest_pending_seconds; /* age of the oldest pending row, 0 none */
  sd_notify_stream_stats streams[SD_NOTIFY_STREAMS];
  char last_error[160];          /* "" when none; never holds the secret */
  int64_t last_error_at;         /* epoch ms */
} sd_notify_stats;

/*
 * Starts the notifier: checks the URLs (http or https), counts the pending
 * rows and, when at least one stream has a URL, starts the thread (no URL:
 * a notifier that does nothing). 0 or a negative sd_err with msg set.
 */
int sd_notify_start(const sd_config *cfg, sd_core *core, sd_notify **out,
                    char *msg, size_t msglen);

/* Rows were committed: look now (any thread; n may be NULL). Without a
 * kick new rows are still found within a second. */
void sd_notify_kick(sd_notify *n);

/* Stops the thread: a request in flight is abandoned (sent again at the
 * next start); waits for the writer jobs it submitted. Idempotent. */
void sd_notify_stop(sd_notify *n);
void sd_notify_free(sd_notify *n); /* stops first; NULL is fine */

/* A copy of the figures (zeros when n is NULL). Any thread. */
void sd_notify_get_stats(sd_notify *n, sd_notify_stats *out);

/* ---- signatures (notify_sign.c) ---- */

/*
 * Writes the lowercase hex of HMAC-SHA256(secret, ts "." body[0..len)) and
 * a NUL into out_hex. 0, or SD_EINTERNAL when libcrypto fails.
 */
int sd_notify_sign(const char *secret, const char *ts, const char *body,
                   size_t len, char out_hex[65]);

/* 1 when header ("sha256=<hex>", the X-Segmentd-Signature value) is the
 * signature of ts and body under secret (compared in constant time),
 * else 0. For receivers written in C, and the tests. */
int sd_notify_verify(const char *secret, const char *ts, const char *body,
                     size_t len, const char *header);

#endif
