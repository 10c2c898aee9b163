/*
 * http.h -- the HTTP front: libmicrohttpd server, request/reply types,
 * routing table and the JSON error body.
 *
 * Owns: listening, reading bodies under the size limit, Content-Type
 * checks, dispatching to handlers by route, turning an sd_reply into an
 * HTTP response, and suspending a connection while its ingest job waits
 * for the writer (the thread pool never blocks on a commit).
 *
 * Handlers only fill an sd_reply from an sd_req; they never touch the
 * connection (the Redis habit). A reply's body is a JSON value the reply
 * owns (sd_reply_free releases it) or a stream whose callbacks the server
 * runs and frees.
 */
#ifndef SEGMENTD_HTTP_H
#define SEGMENTD_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "segmentd/core.h"
#include "segmentd/services.h"

typedef struct sd_http sd_http;

#define SD_MAX_PARAMS 4
#define SD_MAX_REPLY_HEADERS 8

typedef struct sd_req {
  const char *method, *path;
  const char *body;
  size_t body_len;
  const char *params[SD_MAX_PARAMS]; /* path parameters, in order */
  int n_params;
  int route;       /* index of the route that took it (sd_route), or -1 */
  sd_core *core;
  struct sd_maint *maint;
  struct sd_embedq *embedq;
  struct sd_watch *watch;
  struct sd_notify *notify;
  const sd_config *cfg;
  const struct sd_auth *auth; /* the API keys (never NULL once serving) */
  int access;                 /* what the route needs (auth.h sd_access),
                                 set by sd_route */
  const char *key_name;       /* the API key's entry (sd_auth_key_name),
                                 NULL without keys */
  void *conn; /* opaque: for sd_req_query only */
} sd_req;

typedef ssize_t (*sd_stream_fn)(void *cls, uint64_t pos, char *buf,
                                size_t max);

struct sd_reply;
/* A reply finished later, on another thread: fill *rep, then call
 * sd_async_resume(a) exactly once. */
typedef struct sd_async {
  struct sd_reply *rep;
  void *arg;  /* the handler's async_arg */
  void *conn; /* opaque */
} sd_async;

void sd_async_resume(sd_async *a);

typedef struct sd_reply {
  int status;
  json_t *body;          /* owned; NULL for an empty or streamed body */
  const char *allow;     /* Allow header (405) */
  const char *www_auth;  /* WWW-Authenticate header (401, 403), static */
  int retry_after;       /* seconds, for 429/503; 0 = none */
  const char *content_type;
  char *text;            /* owned plain body (content_type says what) */
  size_t text_len;
  sd_stream_fn stream;   /* streamed body (returns -1 at the end) */
  void *stream_cls;
  void (*stream_free)(void *cls);
  sd_job *job;           /* ingest: submit this job, answer when done */
  int (*async)(sd_async *a); /* set: suspend, call it, answer on resume;
                                a negative return answers that error now */
  void *async_arg;
  void (*async_free)(void *arg); /* frees async_arg when the request ends */
  const char *headers[2 * SD_MAX_REPLY_HEADERS]; /* extra name, value pairs
                                                    (not owned) */
  int n_headers;
} sd_reply;

typedef int (*sd_handler)(sd_req *req, sd_reply *rep);

/* A query parameter of the request, or NULL. */
const char *sd_req_query(const sd_req *req, const char *key);
/* A request header (name case-insensitive), or NULL. */
const char *sd_req_header(const sd_req *req, const char *name);

/* Fills rep with the JSON error of err (API.md shape). message may be
 * NULL (the default message); details is stolen (may be NULL). */
int sd_reply_error(sd_reply *rep, int err, const char *message,
                   json_t *details);
/* Fills rep with status and a JSON body (stolen). Returns 0, or an
 * SD_ENOMEM error reply when body is NULL. */
int sd_reply_json(sd_reply *rep, int status, json_t *body);
/* Fills rep with a non-JSON body (text, len bytes; stolen, malloc'd). */
int sd_reply_text(sd_reply *rep, int status, const char *content_type,
                  char *text, size_t len);
/* Adds a response header; name and value are not copied and must outlive
 * the reply (string constants). SD_EINTERNAL when the table is full. */
int sd_reply_header(sd_reply *rep, const char *name, const char *value);
void sd_reply_free(sd_reply *rep);

/* Routing: finds the handler of method+path, filling req->params and
 * req->access; on a miss fills rep with 404 or 405 (+ Allow), sets
 * req->access to what telling that needs, and returns NULL. */
sd_handler sd_route(sd_req *req, sd_reply *rep);
/* The route table, for `segmentd routes`, metric labels, logs and the
 * tests: its size; row i's method, pattern ("{}" = one path segment; static
 * strings) and access (0 or SD_EINVAL past the end); or just its method
 * ("" past the end) or pattern ("unmatched" past the end). */
int sd_route_count(void);
int sd_route_get(size_t i, const char **method, const char **pattern,
                 int *access);
const char *sd_route_method(int i);
const char *sd_route_pattern(int i);

/* Starts serving cfg->listen; writes cfg->port_file if set. Until
 * sd_http_set_ready(1), only /healthz and /readyz answer (others: 503);
 * core may be NULL until then and is set with sd_http_set_core. */
int sd_http_start(const sd_config *cfg, sd_core *core, sd_http **out,
                  char *msg, size_t msglen);
/* Stops taking requests: from now on every request but /healthz, on a new
 * connection or a kept-alive one, is answered 503 shutting_down with
 * Retry-After and Connection: close; requests in flight continue. */
void sd_http_quiesce(sd_http *h);
void sd_http_stop(sd_http *h);
int sd_http_port(const sd_http *h);
void sd_http_set_services(sd_http *h, const sd_services *svc);

/* Set once the service is ready (readyz). */
void sd_http_set_ready(int ready);
int sd_http_ready(void);

#endif
