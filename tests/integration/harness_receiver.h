/*
 * harness_receiver.h -- an in-process webhook receiver for integration
 * tests: libmicrohttpd on 127.0.0.1 (ephemeral port, one thread per
 * connection) that records every request it gets and answers by a script.
 *
 * Script: after rcv_refuse_next(r, n) the next n requests are refused in
 * the cycle 500, 429 with "Retry-After: 1", connection closed without an
 * answer; then every request gets 200. rcv_set_unavailable(r, 1) answers
 * every request 503 with "Retry-After: 1" until rcv_set_unavailable(r, 0)
 * (it takes precedence over the script, whose refusals it does not use).
 * Every answer carries "Connection: close", so the sender opens a fresh
 * connection per request (libcurl silently resends a request whose reused
 * connection is closed without an answer, which would hide the refusal).
 *
 * Records: method, path, every request header, body, the answer (status,
 * 0 for a closed connection) and the receive times; kept in arrival order
 * under a mutex. Readers take deep copies (rcv_copy) so the server threads
 * keep running. Ownership: rcv_start() returns a receiver that rcv_stop()
 * stops and frees (it joins the connection threads); rcv_copy() returns an
 * array that rcv_copy_free() releases.
 *
 * Signatures: rcv_hmac_sha256_hex() is a self-contained HMAC-SHA256 (the
 * harness links no crypto library); rcv_signature_ok() checks segmentd's
 * X-Segmentd-Signature ("sha256=" + hex HMAC(secret, ts "." body)).
 */
#ifndef SD_TEST_HARNESS_RECEIVER_H
#define SD_TEST_HARNESS_RECEIVER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct rcv rcv;

/* One recorded request (a deep copy when it comes from rcv_copy). */
typedef struct {
  long seq;           /* 0, 1, 2, ... in arrival order */
  char method[16];
  char path[128];
  json_t *headers;    /* {"<lowercase name>": "value"} (last one wins) */
  char *body;         /* NUL-terminated (may contain NULs before len) */
  size_t len;
  int status;         /* answer: 200, 500, 429, 503; 0 = closed, no answer */
  double t_mono;      /* now_s() when the request was complete */
  int64_t t_wall_ms;  /* wall clock (epoch ms) at the same moment */
} rcv_req;

/* Figures since the start. */
typedef struct {
  long requests;      /* every request recorded */
  long accepted;      /* answered 200 */
  long refused_500, refused_429, refused_close, refused_503;
} rcv_counts;

/* Starts a receiver on 127.0.0.1:0; NULL on failure (message on stderr). */
rcv *rcv_start(void);

/* Stops the daemon (joining its threads) and frees every record. NULL ok. */
void rcv_stop(rcv *r);

/* The bound port, and "http://127.0.0.1:<port><path>" in out. */
int rcv_port(const rcv *r);
void rcv_url(const rcv *r, const char *path, char *out, size_t cap);

/* The next n requests are refused (500 / 429 Retry-After: 1 / close, in
 * that cycle); replaces what was left of a previous script. */
void rcv_refuse_next(rcv *r, int n);

/* Requests still to be refused by the script. */
int rcv_refusals_left(rcv *r);

/* on: answer every request 503 with Retry-After: 1; off: back to the
 * script (or 200). */
void rcv_set_unavailable(rcv *r, int on);

void rcv_get_counts(rcv *r, rcv_counts *out);

/* Deep copies of the records with seq >= from, in arrival order: *out gets
 * a malloc'd array (NULL when there are none) and the count is returned;
 * -1 on out of memory. Release with rcv_copy_free(). */
long rcv_copy(rcv *r, long from, rcv_req **out);
void rcv_copy_free(rcv_req *reqs, long n);

/* The value of header name (any case) of a record, or NULL. */
const char *rcv_header(const rcv_req *q, const char *name);

/* Lowercase hex of HMAC-SHA256(key, msg[0..len)) and a NUL in out. */
void rcv_hmac_sha256_hex(const char *key, const void *msg, size_t len,
                         char out[65]);

/* 1 when the record's X-Segmentd-Signature is "sha256=" followed by the
 * hex HMAC-SHA256 under secret of "<X-Segmentd-Timestamp>.<body>"; else 0
 * (also when either header is missing). */
int rcv_signature_ok(const rcv_req *q, const char *secret);

#endif
