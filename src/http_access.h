/*
 * http_access.h -- what the HTTP front records about each request: its
 * request id, timing, status and bytes sent, turned at the end into one
 * access log line (info) and the request metrics (metrics.h).
 *
 * Request ids: a client's X-Request-Id is kept when it is 1 to
 * SD_REQUEST_ID_MAX characters of [A-Za-z0-9._:-]; otherwise (absent or
 * not so) segmentd makes one: 32 hex digits, unique within the process
 * (a bijection of a counter) and random across processes. The id goes
 * back in the X-Request-Id header of every reply segmentd builds.
 *
 * Threads: an http_access belongs to its request (one thread at a time).
 * Memory: http_access_begin allocates the path copy, http_access_end
 * frees it; a wrapped stream is freed by the reply's stream_free.
 */
#ifndef SEGMENTD_HTTP_ACCESS_H
#define SEGMENTD_HTTP_ACCESS_H

#include <stdint.h>

#include "segmentd/http.h"

#define SD_REQUEST_ID_MAX 128
#define SD_ACCESS_PATH_MAX 2048 /* longer paths are cut in the log */

typedef struct {
  int64_t start_ns;
  char id[SD_REQUEST_ID_MAX + 1];
  char method[16]; /* cut; the label of metrics is normalised */
  char *path;      /* owned copy, at most SD_ACCESS_PATH_MAX bytes */
  int route;       /* the router's index, or -1 */
  int status;      /* the status queued, or 0 */
  uint64_t bytes;  /* body bytes sent */
} http_access;

/* Seeds the request id generator (once, before serving). */
void http_access_init(void);

/* Starts a request's record. client_id is the X-Request-Id header or
 * NULL. Never fails: without memory the path is just not logged. */
void http_access_begin(http_access *a, const char *method, const char *url,
                       const char *client_id);

/* 1 when id is an acceptable client request id. */
int http_request_id_valid(const char *id);

/* Notes the reply about to be queued: its status and, for a buffered
 * body, its size; a streamed body is wrapped so that its bytes count. */
void http_access_reply(http_access *a, sd_reply *rep, uint64_t body_len);

/* Ends the record: request metrics, then the access line (aborted: the
 * connection ended before the reply was sent). Frees the path copy. */
void http_access_end(http_access *a, int aborted);

#endif
